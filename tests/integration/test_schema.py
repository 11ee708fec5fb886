"""Each service's migrations build exactly the tables its code declares."""

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.connector.adapters.orm import connector_registry
from services.scheduler.adapters.orm import scheduler_registry
from services.syncer.adapters.orm import syncer_registry
from tests.conftest import Env

REGISTRIES = {
    "connector": connector_registry,
    "scheduler": scheduler_registry,
    "syncer": syncer_registry,
}


@pytest.mark.parametrize("service", sorted(REGISTRIES))
async def test_migrations_match_the_models(env: Env, service: str) -> None:
    metadata = REGISTRIES[service].metadata

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff: list[Any] = compare_metadata(context, metadata)
        # alembic_version is Alembic's own bookkeeping, not a model.
        return [d for d in diff if not (d[0] == "remove_table" and d[1].name == "alembic_version")]

    engine = create_async_engine(env.database_url(service))
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()
