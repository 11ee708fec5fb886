"""What the benchmarks share: a fresh database beside a service's (dropped afterwards),
CPU accounting, waiting on a condition, and the error that says a benchmark could not
measure."""

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg
import psutil
from sqlalchemy.engine import make_url

from shared.migrations import connect_maintenance
from xerosync.devstack.stack import Stack


class BenchFailed(RuntimeError):
    """The benchmark could not measure; the message says why."""


def fresh_database_url(stack: Stack, service: str, name: str) -> str:
    """The URL of database `name` on the server holding `service`'s database."""
    base = stack.database_url(service)
    return make_url(base).set(database=name).render_as_string(hide_password=False)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its reaped children and its live descendants."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


async def drop_database(url: str) -> None:
    """Best effort: the benchmark's databases do not pile up on a shared server."""
    name = make_url(url).database or ""
    try:
        connection = await connect_maintenance(url)
    except (OSError, asyncpg.PostgresError):
        return
    try:
        quoted = '"' + name.replace('"', '""') + '"'
        await connection.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    except asyncpg.PostgresError:
        pass
    finally:
        await connection.close()


async def until(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> None:
    """Poll `check` until it holds; BenchFailed after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise BenchFailed(f"waited {within:g}s for {what}")
        await asyncio.sleep(0.2)
