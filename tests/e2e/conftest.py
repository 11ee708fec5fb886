from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Env
from xerosync.devstack.processes import free_port
from xerosync.devstack.stack import Stack, StackConfig
from xerosync.services import SERVICES


@pytest.fixture
def stack(env: Env, tmp_path: Path) -> Iterator[Stack]:
    """Services of this test as real processes, on the session's broker and its databases."""
    config = StackConfig(
        work_dir=tmp_path,
        topic_prefix=env.topics.prefix,
        kafka_bootstrap_servers=env.kafka.bootstrap_servers,
        database_urls={name: env.database_url(name) for name in SERVICES},
        http_ports={name: free_port() for name in SERVICES},
        extra_env={"KAFKA_SESSION_TIMEOUT_MS": str(env.kafka.session_timeout_ms)},
    )
    running = Stack(config)
    try:
        yield running
    finally:
        running.stop()
