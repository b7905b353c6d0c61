"""The live change stream: status and price changes, kept in a bounded backlog so a client that
reconnects with its last event id misses nothing (Server-Sent Events, `Last-Event-ID`).

Event ids are `<epoch>-<seq>`: `epoch` is when this process's stream began, `seq` counts up from
1. An id from another epoch (a restart, another process) or older than the backlog cannot be
resumed; the client then gets a `reset` event telling it to fetch the snapshot again.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

KEEPALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 3000


@dataclass(frozen=True, slots=True)
class Change:
    """One published change: its number in this stream, its kind (`status`, `price`) and data."""

    seq: int
    kind: str
    data: bytes  # JSON

    def frame(self, epoch: int) -> bytes:
        return b"id: %d-%d\nevent: %s\ndata: %s\n\n" % (epoch, self.seq, self.kind.encode(), self.data)


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a reconnecting client continues: after `seq`, or from now with a reset first."""

    after: int
    reset_reason: str | None


class ChangeStream:
    """Fan-out of changes to any number of SSE clients; readers never block the publisher."""

    def __init__(self, backlog: int, *, epoch: int | None = None) -> None:
        self.epoch = epoch if epoch is not None else int(time.time() * 1000)
        self._backlog: deque[Change] = deque(maxlen=backlog)
        self._seq = 0
        self._tick = asyncio.Event()
        self._closed = False

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, kind: str, data: dict[str, Any]) -> Change:
        self._seq += 1
        change = Change(self._seq, kind, orjson.dumps(data))
        self._backlog.append(change)
        self._wake()
        return change

    def close(self) -> None:
        """Every open stream ends (process shutdown)."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def resume_point(self, last_event_id: str | None) -> Resume:
        """Where a client that last saw `last_event_id` continues."""
        if not last_event_id:
            return Resume(self._seq, None)
        epoch_text, _, seq_text = last_event_id.strip().partition("-")
        if not (epoch_text.isdigit() and seq_text.isdigit()) or len(last_event_id) > 40:
            return Resume(self._seq, "the last event id is not one of ours")
        if int(epoch_text) != self.epoch:
            return Resume(self._seq, "the stream restarted since that event")
        seq = int(seq_text)
        if seq > self._seq:
            return Resume(self._seq, "that event id was never sent")
        oldest = self._backlog[0].seq if self._backlog else self._seq + 1
        if seq < oldest - 1:
            return Resume(self._seq, "that event is older than the backlog kept")
        return Resume(seq, None)

    def since(self, seq: int) -> list[Change]:
        if not self._backlog or seq >= self._seq:
            return []
        start = self._backlog[0].seq
        return list(self._backlog)[max(0, seq + 1 - start) :]

    async def frames(
        self, resume: Resume, kinds: frozenset[str], *, keepalive: float = KEEPALIVE_SECONDS
    ) -> AsyncIterator[bytes]:
        """The SSE byte stream for one client, until the client leaves or the stream closes."""
        yield b"retry: %d\n\n" % RETRY_MILLISECONDS
        if resume.reset_reason is not None:
            body = orjson.dumps({"reason": resume.reset_reason, "snapshot": "/opendata/ocpi/locations"})
            yield b"id: %d-%d\nevent: reset\ndata: %s\n\n" % (self.epoch, resume.after, body)
        seen = resume.after
        while not self._closed:
            pending = self.since(seen)
            if pending and pending[0].seq != seen + 1:
                # the client read slower than the backlog turns over: it missed changes
                body = orjson.dumps(
                    {"reason": "the client fell behind", "snapshot": "/opendata/ocpi/locations"}
                )
                yield b"event: reset\ndata: %s\n\n" % body
            for change in pending:
                if change.kind in kinds:
                    yield change.frame(self.epoch)
                seen = change.seq
            tick = self._tick
            if self._closed:
                return
            if self.since(seen):
                continue
            try:
                await asyncio.wait_for(tick.wait(), keepalive)
            except TimeoutError:
                yield b": keepalive\n\n"
