"""Live job events (status changes, progress, equity samples) from the supervisor threads to
the WebSocket handlers on the event loop.

Threads publish with :meth:`EventHub.publish` (thread-safe, never blocks); each subscriber has
a bounded queue, and when a slow client falls behind, the oldest progress, equity-sample and
trial events are the ones dropped: a status change is never lost (the record, and
``GET /optimizations/{id}`` for trials, stay the truth).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

QUEUE_SIZE = 256
#: Events a slow client may miss: the record or a later event carries the same news.
_DROPPABLE = ("progress", "equity_sample", "trial")


class EventHub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subs: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed() or job_id not in self._subs:
            return
        # RuntimeError: the loop closed between the check and the call.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._deliver, job_id, {"job_id": job_id, **event})

    def _deliver(self, job_id: str, event: dict[str, Any]) -> None:
        for q in self._subs.get(job_id, ()):
            if q.full():
                _drop_one_progress(q)
            if not q.full():
                q.put_nowait(event)

    @contextmanager
    def subscribe(self, job_id: str) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subs.setdefault(job_id, set()).add(q)
        try:
            yield q
        finally:
            subs = self._subs.get(job_id)
            if subs is not None:
                subs.discard(q)
                if not subs:
                    del self._subs[job_id]


def _drop_one_progress(q: asyncio.Queue[dict[str, Any]]) -> None:
    kept = []
    dropped = False
    while not q.empty():
        ev = q.get_nowait()
        if not dropped and ev.get("type") in _DROPPABLE:
            dropped = True
            continue
        kept.append(ev)
    if not dropped and kept:
        kept.pop(0)  # nothing but status events queued: the oldest is the least useful
    for ev in kept:
        q.put_nowait(ev)


__all__ = ["EventHub"]
