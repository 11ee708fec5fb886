"""Production logs: one JSON object per line, correlation ids attached, secrets scrubbed."""

import json
import logging

import pytest

from shared.logging import bind_context, configure_logging, get_logger
from shared.settings import CommonSettings, Environment


def test_production_logs_are_json_lines_without_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(CommonSettings(environment=Environment.PRODUCTION), service="syncer")
    try:
        with bind_context(batch="0-41"):
            get_logger("test").info(
                "token refreshed",
                refresh_token="rt-secret",
                tenant="t-1",
            )
        logging.getLogger("aiokafka.test").warning("library line %s", "here")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        logging.getLogger().handlers.clear()

    ours, theirs = lines
    assert ours["event"] == "token refreshed"
    assert ours["service"] == "syncer"
    assert ours["batch"] == "0-41"
    assert ours["level"] == "info"
    assert ours["refresh_token"] == "***"
    assert "rt-secret" not in json.dumps(lines)
    assert theirs["event"] == "library line here"  # standard-library logs, same shape
    assert theirs["logger"] == "aiokafka.test"
