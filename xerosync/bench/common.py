"""What the benchmarks share: a fresh database beside a service's, and CPU accounting."""

import psutil
from sqlalchemy.engine import make_url

from xerosync.devstack.stack import Stack


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
