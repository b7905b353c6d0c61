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
from stekker.cluster.claims import lock_for_transaction
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
#: Sessions whose last meter push this worker remembers before it forgets the old ones.
MAX_METER_MEMORY = 10_000
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
    """Subscribes on `ctx.bus` and queues the session and CDR pushes (see the module docstring).

    In a cluster it listens as the consumer group "ocpi-roaming-pushes": each event queues its
    pushes once in the cluster, and the event of a worker that died before acknowledging it is
    handled again by another. Handling one twice must not bill twice: a CDR is POSTed to a
    partner once (a second `cdr.created` for a CDR already queued for that partner is
    ignored); a Session PUT or PATCH identical to the one still waiting is not queued again,
    and a different one is the session as it is now (idempotent for the partner). Two
    workers may handle one session's events at once (each takes the next entry of the
    group): a PostgreSQL advisory lock per session (`stekker.cluster.claims`) serializes
    their queuing, and a picture older (by the Session's `last_updated`) than the one queued
    last is dropped, so the partner never ends on a stale state. A push that
    cannot be queued raises, so the event comes back later. The meter throttle is per process:
    with N workers a session may get up to N meter PATCHes per `meter_interval`."""

    GROUP = "ocpi-roaming-pushes"

    def __init__(self, ctx: ServiceContext, meter_interval: timedelta = METER_PUSH_INTERVAL) -> None:
        self.ctx = ctx
        self.meter_interval = meter_interval
        self._unsubscribe: list[Callable[[], None]] = []
        # session → (its lock, handlers using it): dropped when the last one is done, as in a
        # cluster this worker may never see the session's last event (another member takes it)
        self._locks: dict[int, tuple[asyncio.Lock, list[int]]] = {}
        self._last_meter: dict[int, datetime] = {}
        self._meter_memory = MAX_METER_MEMORY

    async def start(self) -> None:
        if not self._unsubscribe:
            self._unsubscribe = [
                self.ctx.bus.subscribe(topic, self._on_event, group=self.GROUP) for topic in _TOPICS
            ]

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
        lock, users = self._locks.setdefault(session_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                queued = await self._handle(event, session_id)
        except Exception:
            # raised on: a consumer group hands the event out again (the in-process bus logs it)
            log.warning("could not queue the OCPI push for %s of session %s", event.topic, session_id)
            raise
        else:
            if queued:
                await ocpi_outbox.announce(self.ctx)
        finally:
            users[0] -= 1
            if not users[0]:
                self._locks.pop(session_id, None)
            if event.topic == "session.stopped":
                self._last_meter.pop(session_id, None)
            if len(self._last_meter) > self._meter_memory:
                self._forget_old_meters()

    def _forget_old_meters(self) -> None:
        """The meter throttle of sessions whose stop another worker handled: once their
        interval has passed they are throttled no more, so they are forgotten."""
        horizon = self.ctx.now() - self.meter_interval
        for session_id, at in list(self._last_meter.items()):
            if at < horizon:
                del self._last_meter[session_id]
        # many sessions metering at once: the next sweep waits until they doubled (amortized)
        self._meter_memory = max(MAX_METER_MEMORY, 2 * len(self._last_meter))

    async def _handle(self, event: Event, session_id: int) -> int:
        """The pushes queued for `event`."""
        if event.topic == "session.meter":
            now = self.ctx.now()
            last = self._last_meter.get(session_id)
            if last is not None and now - last < self.meter_interval:
                return 0
            self._last_meter[session_id] = now
            return await self._session_push(session_id, ("kwh", "total_cost", "last_updated"))
        if event.topic == "session.started":
            self._last_meter[session_id] = self.ctx.now()
            return await self._session_push(session_id, None)
        if event.topic == "session.stopped":
            return await self._session_push(
                session_id, ("status", "end_date_time", "kwh", "total_cost", "last_updated")
            )
        if event.topic == "cdr.created":
            uid = event.data.get("cdr_uid")
            if isinstance(uid, str):
                return await self._cdr_push(session_id, uid)
        return 0

    async def _session_push(self, session_id: int, fields: tuple[str, ...] | None) -> int:
        """PUT the whole Session (`fields` None) or PATCH those fields of it. The object is
        built (and priced) before the write, so the writer that stations share only sees
        the inserts."""
        ours = self.ctx.settings.party
        async with self.ctx.db() as db:
            session = await db.get(ChargingSession, session_id)
            if session is None:
                return 0
            token = await db.get(Token, session.token_id) if session.token_id is not None else None
            targets = [
                (p.id, p.endpoints[SESSIONS_ENDPOINT])
                for p in await audience(db, token, ours)
                if (p.endpoints or {}).get(SESSIONS_ENDPOINT)
            ]
            if not targets:
                return 0
            [session_object] = await session_objects(db, self.ctx, [session])
        whole = session_object.wire()
        key = _key(session_id)
        now = self.ctx.now()

        built = str(whole.get("last_updated", ""))

        async def job(db: AsyncSession) -> int:
            queued = 0
            # Workers of the group handle one session's events in parallel: one that read the
            # session before another's newer read must not queue its older picture after it.
            await lock_for_transaction(db, f"outbox:{key}")
            for partner_id, endpoint in targets:
                if built < await _newest_queued(db, partner_id, key):
                    continue  # a newer picture of the session is queued already
                method, body = "PUT", whole
                if fields is not None and await _was_put(db, partner_id, key):
                    method, body = "PATCH", {name: whole[name] for name in fields if name in whole}
                url = f"{endpoint.rstrip('/')}/{ours[0]}/{ours[1]}/{session_id}"
                queued += await ocpi_outbox.enqueue_unless_pending(
                    db, partner_id=partner_id, kind="sessions", key=key, method=method, url=url,
                    body=body, at=now,
                )  # fmt: skip
            return queued

        return await self.ctx.write(job)

    async def _cdr_push(self, session_id: int, cdr_uid: str) -> int:
        ours = self.ctx.settings.party
        async with self.ctx.db() as db:
            cdr = (await db.execute(select(Cdr).where(Cdr.cdr_uid == cdr_uid))).scalar_one_or_none()
            session = await db.get(ChargingSession, session_id)
            if cdr is None or session is None or session.token_id is None:
                return 0
            token = await db.get(Token, session.token_id)
            if token is None:
                return 0
            body: dict[str, Any] = cdr_object(cdr.data, (token.country_code.upper(), token.party_id.upper()))
            targets = [
                (p.id, p.endpoints[CDRS_ENDPOINT])
                for p in await audience(db, token, ours)
                if (p.endpoints or {}).get(CDRS_ENDPOINT)
            ]
        if not targets:
            return 0
        now = self.ctx.now()
        key = _key(session_id)

        async def job(db: AsyncSession) -> int:
            queued = 0
            # two handlers of the same event (a redelivery racing a slow first try): one at a time
            await lock_for_transaction(db, f"outbox:{key}")
            for partner_id, url in targets:
                if await _cdr_queued(db, partner_id, key, cdr_uid):
                    continue  # the event came again (a redelivery): a bill is sent once
                ocpi_outbox.enqueue(
                    db, partner_id=partner_id, kind="cdrs", key=key, method="POST",
                    url=url, body=body, at=now,
                )  # fmt: skip
                queued += 1
            return queued

        return await self.ctx.write(job)


async def _newest_queued(db: AsyncSession, partner_id: int, key: str) -> str:
    """`last_updated` of the session as last queued for the partner ("" when none). Pushes
    of a session are queued under its claim and never older than the one before them, so
    the last one queued is the newest."""
    body = (
        await db.execute(
            select(OcpiOutboxItem.body)
            .where(
                OcpiOutboxItem.partner_id == partner_id,
                OcpiOutboxItem.key == key,
                OcpiOutboxItem.kind == "sessions",
            )
            .order_by(OcpiOutboxItem.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return str(body.get("last_updated", "")) if isinstance(body, dict) else ""


async def _cdr_queued(db: AsyncSession, partner_id: int, key: str, cdr_uid: str) -> bool:
    """Whether CDR `cdr_uid` was already queued for the partner (whatever became of it)."""
    bodies = await db.execute(
        select(OcpiOutboxItem.body).where(
            OcpiOutboxItem.partner_id == partner_id,
            OcpiOutboxItem.key == key,
            OcpiOutboxItem.kind == "cdrs",
        )
    )
    return any(isinstance(body, dict) and body.get("id") == cdr_uid for body in bodies.scalars())
