"""Async SQLModel engine and sessions on asyncpg, and translation of database errors."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from pydantic import SecretStr
from sqlalchemy import MetaData, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import registry
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.errors import DatabaseRejected, DatabaseUnavailable

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_table_registry() -> registry:
    """A SQLModel/SQLAlchemy registry of one service's tables, with stable constraint names."""
    return registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))


# SQLSTATE classes a retry can fix: connection exceptions, serialization failures and
# deadlocks, insufficient resources, operator intervention (failover, shutdown).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "40", "53", "57")


def make_engine(
    url: SecretStr, *, application_name: str, pool_size: int = 5, echo: bool = False
) -> AsyncEngine:
    return create_async_engine(
        url.get_secret_value(),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        echo=echo,
        connect_args={
            "server_settings": {"application_name": application_name},
            "timeout": 10,
            "command_timeout": 60,
        },
    )


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Raise `DatabaseUnavailable` unless the database answers `SELECT 1`.

    Whatever the cause (down, refusing connections, dropped), the database cannot be used
    now; the message names only the kind of error, never a host, URL or user.
    """
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (TimeoutError, OSError, sa_exc.SQLAlchemyError, asyncpg.PostgresError) as error:
        kind = type(getattr(error, "orig", None) or error).__name__
        raise DatabaseUnavailable(f"database unavailable ({kind})") from error


def is_transient(error: BaseException) -> bool:
    if isinstance(error, (TimeoutError, OSError)):  # OSError covers ConnectionError
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
        if isinstance(sqlstate, str):
            return sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
    if isinstance(error, asyncpg.PostgresError):
        sqlstate = getattr(error, "sqlstate", "") or ""
        return sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
    return isinstance(error, asyncpg.InterfaceError)


def translate_db_error(error: BaseException) -> DatabaseUnavailable | DatabaseRejected:
    """Our error for a database failure; the message never carries the URL or password."""
    kind = type(getattr(error, "orig", None) or error).__name__
    if is_transient(error):
        return DatabaseUnavailable(f"database unavailable ({kind})")
    detail = str(getattr(error, "orig", error)).splitlines()[0][:300]
    return DatabaseRejected(f"database refused the statement ({kind}): {detail}")


@asynccontextmanager
async def translated_db_errors() -> AsyncIterator[None]:
    try:
        yield
    except (TimeoutError, OSError, sa_exc.SQLAlchemyError, asyncpg.PostgresError) as error:
        raise translate_db_error(error) from error


def asyncpg_params(url: URL) -> dict[str, Any]:
    """asyncpg's connect() arguments for a SQLAlchemy URL."""
    params: dict[str, Any] = {
        "user": url.username,
        "password": url.password,
        "database": url.database,
        "host": url.query.get("host") or url.host,
        "port": url.port,
    }
    return {key: value for key, value in params.items() if value is not None}


async def connect_dedicated(url: SecretStr, *, application_name: str) -> asyncpg.Connection:
    """A plain asyncpg connection outside the pool, for what lives as long as a session:
    a session-level advisory lock, LISTEN."""
    return await asyncpg.connect(
        **asyncpg_params(make_url(url.get_secret_value())),
        server_settings={"application_name": application_name},
        timeout=10,
    )
