from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.syncer.bootstrap import create_app
from services.syncer.config import SyncerSettings
from tests.conftest import Env
from tests.helpers import scrape


@dataclass
class InProcessService:
    app: FastAPI
    http: httpx.AsyncClient

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return scrape((await self.http.get("/metrics")).text)

    async def metric(self, name: str, **labels: str) -> float:
        return (await self.metrics()).get((name, tuple(sorted(labels.items()))), 0.0)


RunSyncer = Callable[..., AbstractAsyncContextManager[InProcessService]]


@asynccontextmanager
async def in_process(app: FastAPI) -> AsyncIterator[InProcessService]:
    """A service's real app started (its lifespan) in the test's loop, with a client."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http,
    ):
        yield InProcessService(app, http)


def syncer_settings(env: Env, **overrides: Any) -> SyncerSettings:
    return SyncerSettings(
        database_url=SecretStr(env.database_url("syncer")),
        topic_prefix=env.topics.prefix,
        kafka=env.kafka,
        **overrides,
    )


@pytest.fixture
def run_syncer(env: Env) -> RunSyncer:
    """Start the syncer's real app (real broker, real database) inside the test's loop."""

    @asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[InProcessService]:
        async with in_process(create_app(syncer_settings(env, **overrides))) as service:
            yield service

    return running


@pytest.fixture
async def syncer_db(env: Env) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(env.database_url("syncer"))
    yield engine
    await engine.dispose()
