"""Transaction messages a station must not lose: kept in the order they happened and delivered one at a
time while the station is connected, so that a CSMS sees every event of a transaction in order even after
the station was offline for a while."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ocpp.exceptions import OCPPError

__all__ = ["Outbox", "QueuedMessage"]

logger = logging.getLogger("stekker.sim")


@dataclass
class QueuedMessage:
    """A request waiting for delivery, with the outlet (EVSE) it is about and how often it was tried."""

    payload: Any
    outlet_id: int
    attempts: int = 0


class Outbox:
    """Messages in the order they were added; :meth:`deliver` sends them oldest first.

    ``send`` sends one request and returns the answer, raising the ``offline`` exception type when the
    connection is gone (the message then stays first in line for the next connection). A message the peer
    does not answer (timeout, CALLERROR) is retried after ``retry_policy()[1] x attempts`` seconds, up to
    ``retry_policy()[0]`` attempts, then dropped. ``on_answer`` sees every answer."""

    def __init__(
        self,
        send: Callable[[Any], Awaitable[Any]],
        on_answer: Callable[[QueuedMessage, Any], None],
        retry_policy: Callable[[], tuple[int, int]],
        offline: type[Exception],
        name: str,
    ) -> None:
        self._send = send
        self._on_answer = on_answer
        self._retry_policy = retry_policy
        self._offline = offline
        self._name = name
        self._queue: deque[QueuedMessage] = deque()
        self._added = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self._queue)

    def __iter__(self) -> Iterator[QueuedMessage]:
        return iter(list(self._queue))

    def add(self, payload: Any, outlet_id: int) -> QueuedMessage:
        message = QueuedMessage(payload, outlet_id)
        self._queue.append(message)
        self._empty.clear()
        self._added.set()
        return message

    async def wait_empty(self, timeout: float | None = None) -> None:
        """Wait until every message added so far has been delivered (or given up on)."""
        await asyncio.wait_for(self._empty.wait(), timeout)

    async def deliver(self) -> None:
        """Deliver messages as they come, for as long as the connection lasts (returns when it is gone)."""
        while True:
            if not self._queue:
                self._empty.set()
                self._added.clear()
                await self._added.wait()
                continue
            message = self._queue[0]
            try:
                answer = await self._send(message.payload)
            except self._offline:
                return
            except (OCPPError, TimeoutError) as exc:
                message.attempts += 1
                attempts, interval = self._retry_policy()
                logger.warning(
                    "%s: %s (attempt %s of %s) failed: %r",
                    self._name,
                    type(message.payload).__name__,
                    message.attempts,
                    attempts,
                    exc,
                )
                if message.attempts < attempts:
                    await asyncio.sleep(interval * message.attempts)
                    continue
                answer = None
            self._queue.popleft()
            if answer is not None:
                self._on_answer(message, answer)
