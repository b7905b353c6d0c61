"""Sessions and CDRs pushed to the eMSP whose driver charges (OCPI 2.2.1 sessions and cdrs,
CPO side), through the persistent outbox (`stekker.services.ocpi_outbox`).

- `session.started` → PUT the Session to the partner's "sessions:RECEIVER" endpoint +
  `/{our country}/{our party}/{session id}`;
- `session.meter` → PATCH {kwh, total_cost, last_updated}, at most every `meter_interval`
  per session (a station reporting every 10 s must not become a push every 10 s);
- `session.stopped` → PATCH {status, end_date_time, kwh, total_cost, last_updated};
- `cdr.created` (credit CDRs too) → POST the CDR to the partner's "cdrs:RECEIVER" endpoint.

Only to the partner the driver's token belongs to (`session_objects.audience`). Every push of
one session, its CDRs included, has the outbox key "session:{id}", so the partner receives
them in order: never a PATCH before the PUT, never the CDR before the session's end. A PATCH
is only queued after a PUT of that session to that partner; otherwise (a process that
restarted mid-session, a partner registered meanwhile) the full Session is PUT instead, which
OCPI allows at any time.

The bodies are OCPI objects built by the OCPI edge (`stekker.ocpi.session_objects`,
`stekker.ocpi.cdrs`): this module only decides when and to whom.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingSession, Token
from stekker.db.models_ocpi import OcpiOutboxItem
from stekker.db.models_tariffs import Cdr
from stekker.ocpi.cdrs import cdr_object
from stekker.ocpi.session_objects import audience, session_objects
from stekker.services import ocpi_outbox
from stekker.services.context import ServiceContext

log = logging.getLogger(__name__)

#: The shortest time between two meter PATCHes of one session.
METER_PUSH_INTERVAL = timedelta(seconds=60)
SESSIONS_ENDPOINT = "sessions:RECEIVER"
CDRS_ENDPOINT = "cdrs:RECEIVER"
_TOPICS = ("session.started", "session.meter", "session.stopped", "cdr.created")


def _key(session_id: int) -> str:
    return f"session:{session_id}"


async def _was_put(db: AsyncSession, partner_id: int, key: str) -> bool:
    found = await db.execute(
        select(OcpiOutboxItem.id)
        .where(
            OcpiOutboxItem.partner_id == partner_id,
            OcpiOutboxItem.key == key,
            OcpiOutboxItem.kind == "sessions",
            OcpiOutboxItem.method == "PUT",
        )
        .limit(1)
    )
    return found.first() is not None


class RoamingPushes:
    """Subscribes on `ctx.bus` and queues the session and CDR pushes (see the module docstring)."""

    def __init__(self, ctx: ServiceContext, meter_interval: timedelta = METER_PUSH_INTERVAL) -> None:
        self.ctx = ctx
        self.meter_interval = meter_interval
        self._unsubscribe: list[Callable[[], None]] = []
        self._locks: dict[int, asyncio.Lock] = {}
        self._last_meter: dict[int, datetime] = {}

    async def start(self) -> None:
        if not self._unsubscribe:
            self._unsubscribe = [self.ctx.bus.subscribe(topic, self._on_event) for topic in _TOPICS]

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            with contextlib.suppress(ValueError):
                unsubscribe()
        self._unsubscribe = []

    async def _on_event(self, event: Event) -> None:
        session_id = event.data.get("session_id")
        if not isinstance(session_id, int) or not self._unsubscribe:
            return
        # one session's events are handled one at a time, in the order they were published
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        try:
            async with lock:
                await self._handle(event, session_id)
        except Exception:  # a push that cannot be queued must not take the bus down
            log.exception("could not queue the OCPI push for %s of session %s", event.topic, session_id)
        finally:
            if event.topic == "session.stopped":
                self._last_meter.pop(session_id, None)
            if event.topic == "cdr.created" and not lock.locked():
                self._locks.pop(session_id, None)

    async def _handle(self, event: Event, session_id: int) -> None:
        if event.topic == "session.meter":
            now = self.ctx.now()
            last = self._last_meter.get(session_id)
            if last is not None and now - last < self.meter_interval:
                return
            self._last_meter[session_id] = now
            await self._session_push(session_id, ("kwh", "total_cost", "last_updated"))
        elif event.topic == "session.started":
            self._last_meter[session_id] = self.ctx.now()
            await self._session_push(session_id, None)
        elif event.topic == "session.stopped":
            await self._session_push(
                session_id, ("status", "end_date_time", "kwh", "total_cost", "last_updated")
            )
        elif event.topic == "cdr.created":
            uid = event.data.get("cdr_uid")
            if isinstance(uid, str):
                await self._cdr_push(session_id, uid)

    async def _session_push(self, session_id: int, fields: tuple[str, ...] | None) -> None:
        """PUT the whole Session (`fields` None) or PATCH those fields of it. The object is
        built (and priced) before the write, so the writer that stations share only sees
        the inserts."""
        ours = self.ctx.settings.party
        async with self.ctx.db() as db:
            session = await db.get(ChargingSession, session_id)
            if session is None:
                return
            token = await db.get(Token, session.token_id) if session.token_id is not None else None
            targets = [
                (p.id, p.endpoints[SESSIONS_ENDPOINT])
                for p in await audience(db, token, ours)
                if (p.endpoints or {}).get(SESSIONS_ENDPOINT)
            ]
            if not targets:
                return
            [session_object] = await session_objects(db, self.ctx, [session])
        whole = session_object.wire()
        key = _key(session_id)
        now = self.ctx.now()

        async def job(db: AsyncSession) -> None:
            for partner_id, endpoint in targets:
                method, body = "PUT", whole
                if fields is not None and await _was_put(db, partner_id, key):
                    method, body = "PATCH", {name: whole[name] for name in fields if name in whole}
                url = f"{endpoint.rstrip('/')}/{ours[0]}/{ours[1]}/{session_id}"
                ocpi_outbox.enqueue(
                    db, partner_id=partner_id, kind="sessions", key=key, method=method, url=url,
                    body=body, at=now,
                )  # fmt: skip

        await self.ctx.write(job)

    async def _cdr_push(self, session_id: int, cdr_uid: str) -> None:
        ours = self.ctx.settings.party
        async with self.ctx.db() as db:
            cdr = (await db.execute(select(Cdr).where(Cdr.cdr_uid == cdr_uid))).scalar_one_or_none()
            session = await db.get(ChargingSession, session_id)
            if cdr is None or session is None or session.token_id is None:
                return
            token = await db.get(Token, session.token_id)
            if token is None:
                return
            body: dict[str, Any] = cdr_object(cdr.data, (token.country_code.upper(), token.party_id.upper()))
            targets = [
                (p.id, p.endpoints[CDRS_ENDPOINT])
                for p in await audience(db, token, ours)
                if (p.endpoints or {}).get(CDRS_ENDPOINT)
            ]
        if not targets:
            return
        now = self.ctx.now()

        async def job(db: AsyncSession) -> None:
            for partner_id, url in targets:
                ocpi_outbox.enqueue(
                    db, partner_id=partner_id, kind="cdrs", key=_key(session_id), method="POST",
                    url=url, body=body, at=now,
                )  # fmt: skip

        await self.ctx.write(job)
