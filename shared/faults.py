"""Failpoints: named places where a test or `xerosync chaos` can make a process fail.

`XEROSYNC_FAILPOINTS="ingest.after_store=kill"` makes the process SIGKILL itself the
first time it reaches `failpoint("ingest.after_store")`: the way to prove what a crash
at that exact point does, without racing a timer. Unset (always, in production), every
failpoint is a dictionary lookup that finds nothing.
"""

import os
import signal

ENV = "XEROSYNC_FAILPOINTS"
_ACTIONS = {"kill"}


def _parse(spec: str) -> dict[str, str]:
    points = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, action = item.partition("=")
        if action not in _ACTIONS:
            raise ValueError(f"{ENV}: unknown action {action!r} for {name!r}; known: kill")
        points[name] = action
    return points


_POINTS = _parse(os.environ.get(ENV, ""))


def failpoint(name: str) -> None:
    if _POINTS.get(name) == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
