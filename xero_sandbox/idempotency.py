"""`Idempotency-Key` on PUT, POST and PATCH, as Xero honours it.

The same key with the same request, within the window, returns the stored answer without
doing the work again; while the first is still being worked on, the second waits for its
answer. The same key with a different request is refused. Keys are scoped to the app and the
organisation. Answers that did no work (5xx, 429) are not stored, so a retry does the work.
"""

import asyncio
import hashlib
from dataclasses import dataclass, field

from xero_sandbox.clock import Clock

MAX_KEY_LENGTH = 128


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class _Entry:
    fingerprint: str
    created: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    response: StoredResponse | None = None


class IdempotencyKeyReused(Exception):
    """The key was used before for a different request."""


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.lower().encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyStore:
    def __init__(self, clock: Clock, window_seconds: float = 24 * 3600) -> None:
        self._clock = clock
        self.window_seconds = window_seconds
        self._entries: dict[tuple[str, str, str], _Entry] = {}

    async def begin(self, scope: tuple[str, str, str], request: str) -> StoredResponse | None:
        """The stored answer for a repeat, or None when the caller must do the work.

        After None, the caller must call `finish` with its answer (or None to store nothing).
        """
        while True:
            entry = self._entries.get(scope)
            now = self._clock.monotonic()
            if (
                entry is not None
                and entry.done.is_set()
                and now - entry.created > self.window_seconds
            ):
                del self._entries[scope]
                entry = None
            if entry is None:
                self._entries[scope] = _Entry(fingerprint=request, created=now)
                return None
            if entry.fingerprint != request:
                raise IdempotencyKeyReused
            if not entry.done.is_set():
                await entry.done.wait()
                continue
            return entry.response

    def finish(self, scope: tuple[str, str, str], response: StoredResponse | None) -> None:
        entry = self._entries.get(scope)
        if entry is None:
            return
        if response is None:
            del self._entries[scope]
        else:
            entry.response = response
        entry.done.set()
