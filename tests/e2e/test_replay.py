"""`xerosync replay` as operators run it: a process reading TOPIC_PREFIX and KAFKA_* from
its environment, on the session's broker. Dry run by default, `--apply` to act, `--json`
ending with one JSON line, exit 1 on a refusal and 2 on wrong options."""

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

from aiokafka import AIOKafkaConsumer

from services.syncer.config import CONSUMER_GROUP
from shared.contracts.topics import BANK_TRANSACTIONS
from shared.kafka import client_options, consumer_options
from tests.conftest import Env
from tests.helpers import booked, read_topic
from xerosync.producer import EventWriter

TOPIC = BANK_TRANSACTIONS.name


async def xerosync_replay(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": env.kafka.bootstrap_servers,
        "KAFKA_SESSION_TIMEOUT_MS": str(env.kafka.session_timeout_ms),
        "TOPIC_PREFIX": env.topics.prefix,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "xerosync", "replay", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def last_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout.splitlines()[-1])


async def test_replay_plans_by_default_acts_with_apply_and_refuses_a_live_group(
    env: Env,
) -> None:
    events = [booked(n, account="acc-1") for n in range(10)]  # one partition (0)
    async with EventWriter(env.kafka, env.topics) as writer:
        await writer.write(BANK_TRANSACTIONS, events)
        await writer.send_record(
            env.topics.dlq(BANK_TRANSACTIONS),
            b'{"type": "TransactionBooked"}',
            key=b"acc-1",
            headers=[
                ("x-dlq-error", b"amount: Field required"),
                ("x-dlq-error-class", b"validation"),
                ("x-dlq-attempt", b"1"),
                ("x-dlq-origin-topic", env.topics.name(BANK_TRANSACTIONS).encode()),
                ("x-dlq-origin-partition", b"0"),
                ("x-dlq-origin-offset", b"3"),
            ],
        )

    dry = await xerosync_replay(env, "topic", TOPIC, "--republish", "--json")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: nothing was published" in dry.stdout
    assert (last_json(dry)["records"], last_json(dry)["applied"]) == (10, False)

    done = await xerosync_replay(
        env, "topic", TOPIC, "--republish", "--from-offset", "0:2", "--to-offset", "0:5",
        "--apply", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert last_json(done)["republished"] == 3
    copies = await read_topic(env.kafka, env.topics.name(BANK_TRANSACTIONS), count=13)
    assert [r.value for r in copies[10:]] == [r.value for r in copies[2:5]]

    dlq = await xerosync_replay(env, "dlq", TOPIC, "--error-class", "validation", "--json")
    assert dlq.returncode == 0, dlq.stderr
    assert "amount: Field required" in dlq.stdout
    assert last_json(dlq)["by_error_class"] == {"validation": 1}

    wrong = await xerosync_replay(env, "topic", TOPIC)
    assert wrong.returncode == 2
    assert "choose one: --republish, or --move-offsets" in wrong.stderr

    # A consumer in the syncer's group, alive for the duration: moving offsets is refused.
    member = AIOKafkaConsumer(
        group_id=env.topics.group(CONSUMER_GROUP),
        enable_auto_commit=False,
        **client_options(env.kafka),
        **consumer_options(env.kafka),
    )
    await member.start()
    try:
        member.subscribe([env.topics.name(BANK_TRANSACTIONS)])
        while not member.assignment():
            await member.getmany(timeout_ms=100, max_records=1)
        refused = await xerosync_replay(
            env, "topic", TOPIC, "--move-offsets", "--group", "syncer", "--apply", "--json"
        )
    finally:
        await member.stop()
    assert refused.returncode == 1
    assert f"refused: consumer group {env.topics.group(CONSUMER_GROUP)} has 1 member" in (
        refused.stderr
    )
    assert last_json(refused)["exit_code"] == 1
