"""Per-service schema migrations with Alembic, and creating a service's database.

Each service keeps its migrations in `services/<name>/migrations/` and its own
`alembic_version` table in its own database. `upgrade()` holds a PostgreSQL advisory lock
for the duration, so replicas starting together migrate once.
"""

from pathlib import Path

import asyncpg
from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from pydantic import SecretStr
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.db import asyncpg_params, translated_db_errors
from shared.errors import PermanentError

_MIGRATION_LOCK = 0x78_65_72_6F_73_79_6E_63  # "xerosync" in ASCII


class SchemaOutOfDate(PermanentError):
    """The database's schema does not match what this version of the code expects."""


def _config(script_location: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    return config


async def upgrade(script_location: Path, url: SecretStr, *, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`."""
    engine = create_async_engine(url.get_secret_value(), poolclass=NullPool)
    try:
        async with translated_db_errors(), engine.begin() as connection:
            await connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            await connection.run_sync(_run, _config(script_location), "upgrade", revision)
    finally:
        await engine.dispose()


async def current(url: SecretStr) -> str | None:
    """The revision the database is at, or None before the first migration."""
    engine = create_async_engine(url.get_secret_value(), poolclass=NullPool)
    try:
        async with translated_db_errors(), engine.connect() as connection:
            exists = await connection.scalar(text("SELECT to_regclass('alembic_version')"))
            if exists is None:
                return None
            version: str | None = await connection.scalar(
                text("SELECT version_num FROM alembic_version")
            )
            return version
    finally:
        await engine.dispose()


def head(script_location: Path) -> str | None:
    """The newest revision in the service's migrations (None when it has none yet)."""
    heads = ScriptDirectory.from_config(_config(script_location)).get_heads()
    return heads[0] if heads else None


async def require_current(script_location: Path, url: SecretStr, *, service: str) -> None:
    """Refuse to run against a database whose schema is behind (or ahead of) the code."""
    want, have = head(script_location), await current(url)
    if want != have:
        raise SchemaOutOfDate(
            f"the {service} database is at revision {have or 'none'}, the code needs "
            f"{want}; run `xerosync migrate` first"
        )


def _run(connection: Connection, config: Config, action: str, revision: str) -> None:
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's `migrations/env.py`: run on the connection `upgrade()` lends.

    Autogenerate (`alembic revision --autogenerate`) runs through `xerosync migrate
    --autogenerate`, which lends a connection the same way.
    """
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `xerosync migrate`, which supplies the database")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def create_database(url: SecretStr) -> bool:
    """Create the database `url` names if it does not exist; True when it was created.

    Connects to the server's `postgres` maintenance database with the same credentials.
    """
    target = make_url(url.get_secret_value())
    name = target.database
    if not name:
        raise ValueError("the database URL names no database")
    connection = await connect_maintenance(url)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        # Identifiers cannot be bound as parameters; quote_ident-equivalent quoting here.
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await connection.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False  # created concurrently by another process
        return True
    finally:
        await connection.close()


async def connect_maintenance(url: SecretStr | str) -> asyncpg.Connection:
    """A plain asyncpg connection to the server's `postgres` database, for DDL such as
    CREATE DATABASE, which cannot run inside the pooled, transactional engine."""
    raw = url.get_secret_value() if isinstance(url, SecretStr) else url
    return await asyncpg.connect(**asyncpg_params(make_url(raw).set(database="postgres")))
