"""`xerosync_consumer_lag_records` of the services' real apps, on the real broker and
PostgreSQL: positive while records wait for the consumer, 0 once they were consumed."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.connector.config import CONSUMER_GROUP as CONNECTOR_GROUP
from services.scheduler.bootstrap import create_app as create_scheduler
from services.scheduler.config import CONSUMER_GROUP as SCHEDULER_GROUP
from services.syncer.config import CONSUMER_GROUP as SYNCER_GROUP
from shared.contracts.topics import (
    BANK_ACCOUNTS,
    BANK_TRANSACTIONS,
    XERO_CONNECTIONS,
    XERO_SYNC_DUE,
    XERO_SYNC_REQUESTS,
    XERO_SYNC_RESULTS,
    TopicSpec,
)
from tests.conftest import Env
from tests.helpers import booked, eventually
from tests.integration.conftest import InProcessService, RunSyncer, in_process
from tests.integration.connector_harness import running_connector
from tests.integration.scheduler_harness import scheduler_settings
from tests.sandbox.contract import ContractCheck, specs_if_present
from xero_sandbox.state import Sandbox
from xerosync.producer import EventWriter

LAG = "xerosync_consumer_lag_records"
INGESTED = "xerosync_transactions_ingested_total"
RECORDS = 30
BATCH = 5


async def _lags(service: InProcessService, group: str) -> dict[str, float]:
    """The gauge's series by topic label (absent until the consumer fetched the topic)."""
    lags = {}
    for (name, labels), value in (await service.metrics()).items():
        if name == LAG:
            by_name = dict(labels)
            assert by_name["group"] == group, labels  # no TOPIC_PREFIX
            lags[by_name["topic"]] = value
    return lags


@asynccontextmanager
async def _scheduler(env: Env) -> AsyncIterator[InProcessService]:
    async with in_process(create_scheduler(scheduler_settings(env))) as service:
        yield service


async def _once_fetched(
    service: InProcessService, group: str, topics: tuple[TopicSpec, ...]
) -> dict[str, float]:
    """The gauge's series once the group's consumer has fetched every topic it reads."""
    lags: dict[str, float] = await eventually(
        lambda: _lags(service, group),
        until=lambda lags: len(lags) == len(topics),
        what=f"{group} fetched its topics",
    )
    return lags


async def test_the_lag_counts_waiting_records_and_returns_to_zero_once_consumed(
    env: Env, run_syncer: RunSyncer, syncer_db: AsyncEngine
) -> None:
    transactions = BANK_TRANSACTIONS.name
    async with run_syncer(ingest_batch_size=BATCH) as syncer:
        # Once the consumer has its partitions and fetched them, every topic it reads shows,
        # by its name without the test's TOPIC_PREFIX, at 0.
        reads = (XERO_CONNECTIONS, BANK_TRANSACTIONS, XERO_SYNC_DUE)
        idle = await _once_fetched(syncer, SYNCER_GROUP, reads)
        assert idle == {spec.name: 0 for spec in reads}

        # The first batch's insert waits for the table; the records after it wait for
        # the consumer, which takes the next batch only once the first one is stored.
        async with syncer_db.begin() as locked:
            await locked.execute(text("LOCK TABLE bank_transactions IN ACCESS EXCLUSIVE MODE"))
            async with EventWriter(env.kafka, env.topics) as writer:
                await writer.write(BANK_TRANSACTIONS, [booked(n) for n in range(RECORDS)])
            waiting = await eventually(
                lambda: _lags(syncer, SYNCER_GROUP),
                until=lambda lags: lags.get(transactions, 0) > 0,
                what="records waiting for the consumer counted",
            )
            assert await syncer.metric(INGESTED, result="new") == 0

        await eventually(
            lambda: syncer.metric(INGESTED, result="new"),
            until=lambda new: new == RECORDS,
            what="every record stored",
        )
        consumed = await eventually(
            lambda: _lags(syncer, SYNCER_GROUP),
            until=lambda lags: lags.get(transactions) == 0,
            what="lag back to 0",
        )

    # At most every record but the batch being stored was waiting (fewer while the consumer
    # had not fetched them all yet: the high watermark is the last fetch's).
    assert 0 < waiting[transactions] <= RECORDS - BATCH
    assert consumed == idle


async def test_the_scheduler_and_the_connector_show_the_lag_of_what_they_read(env: Env) -> None:
    async with (
        running_connector(env, Sandbox(), ContractCheck(specs_if_present())) as connector,
        _scheduler(env) as scheduler,
    ):
        scheduler_reads = (XERO_CONNECTIONS, XERO_SYNC_REQUESTS, XERO_SYNC_RESULTS)
        connector_reads = (BANK_ACCOUNTS, XERO_SYNC_RESULTS)
        scheduler_lags = await _once_fetched(scheduler, SCHEDULER_GROUP, scheduler_reads)
        connector_lags = await _once_fetched(
            InProcessService(connector.app, connector.http), CONNECTOR_GROUP, connector_reads
        )

    assert scheduler_lags == {spec.name: 0 for spec in scheduler_reads}
    assert connector_lags == {spec.name: 0 for spec in connector_reads}
