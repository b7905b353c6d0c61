"""Sessions and CDRs pushed to the eMSP whose driver charges (OCPI 2.2.1 sessions and cdrs,
CPO side), through the persistent outbox (`stekker.services.ocpi_outbox`).

- `session.started` → PUT the Session to the partner's "sessions:RECEIVER" endpoint +
  `/{our country}/{our party}/{session id}`;
- `session.meter` → PATCH {kwh, total_cost, last_updated}, at most every `meter_interval`
  per session (a station reporting every 10 s must not become a push every 10 s);
- `session.stopped` → PATCH {status, end_date_time, kwh, total_cost, last_updated};
- `cdr.created` (credit CDRs too) → POST the CDR to the partner's "cdrs:RECEIVER" endpoint.

Only to the partner the driver's token belongs to (`session_objects.audience`). Every push of
one session, its CDRs included, has the outbox key "session:{id}", and the outbox delivers a
key's pushes in the order they were queued (a push waits while an older one of its key is
pending: retried, until delivered or dead). A PATCH is only queued after a PUT of that
session to that partner that is delivered or still waiting; otherwise (a process that
restarted mid-session, a partner registered meanwhile, a PUT given up) the full Session is
PUT instead, which OCPI allows at any time.

The order the partner sees therefore rests on the order of the rows, and that order is kept
in the database, not in one worker's memory (in a cluster several workers handle one
session's events, and an event of a worker that died comes back late, to another one):
- one session's pushes are queued under a PostgreSQL claim per session
  (`stekker.cluster.claims`), so their ids follow their commits;
- a push carries the session as it is when it is queued: under the claim the session row is
  compared with the one its picture was built from, and a picture that a newer change made
  stale is built again there. Each queued picture is thus at least as new as the one before
  it, whichever event (late, redelivered, out of order) caused it: a later state is never
  followed by an earlier one. (An older push still waiting is no harm: it is an earlier
  state, delivered before the newer one; so nothing is "superseded" and every row is sent.)
- a CDR is queued only after the session's final state: when the CDR's event comes before
  the session's stop was pushed (the stop's event late or redelivered), the final Session
  push is queued first, in the same transaction; and once a CDR is queued, no session push
  follows it (the session is closed: a later event would only repeat its final state).

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
from stekker.db.models_ocpi import OcpiOutboxItem, OutboxStatus
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
#: What a stop PATCHes (and what goes before a CDR whose stop was not pushed yet).
STOP_FIELDS = ("status", "end_date_time", "kwh", "total_cost", "last_updated")
#: OCPI session statuses after which nothing changes.
FINAL_STATES = ("COMPLETED", "INVALID")


def _key(session_id: int) -> str:
    return f"session:{session_id}"


async def _was_put(db: AsyncSession, partner_id: int, key: str) -> bool:
    """Whether a PUT of the session went to the partner or waits for it (a PUT given up does
    not count: the partner may never have heard of the session, so it gets a PUT again)."""
    found = await db.execute(
        select(OcpiOutboxItem.id)
        .where(
            OcpiOutboxItem.partner_id == partner_id,
            OcpiOutboxItem.key == key,
            OcpiOutboxItem.kind == "sessions",
            OcpiOutboxItem.method == "PUT",
            OcpiOutboxItem.status != OutboxStatus.DEAD,
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
    their queuing, and a picture the session moved past meanwhile is built again under it, so
    the partner never gets an earlier state after a later one (the module docstring says
    why this holds across processes). A push that cannot be queued raises, so the event
    comes back later. The meter throttle is per process:
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
            return await self._session_push(session_id, STOP_FIELDS)
        if event.topic == "cdr.created":
            uid = event.data.get("cdr_uid")
            if isinstance(uid, str):
                return await self._cdr_push(session_id, uid)
        return 0

    async def _session_push(self, session_id: int, fields: tuple[str, ...] | None) -> int:
        """PUT the whole Session (`fields` None) or PATCH those fields of it. The object is
        built (and priced) before the write, so the writer that stations share usually only
        sees the inserts; only a picture a newer change made stale meanwhile is built again
        in the write (see the module docstring)."""
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
            seen = _fingerprint(session)
            [session_object] = await session_objects(db, self.ctx, [session])
        built = session_object.wire()
        key = _key(session_id)
        now = self.ctx.now()

        async def job(db: AsyncSession) -> int:
            # Workers of the group handle one session's events in parallel: one at a time here,
            # so the rows of the session follow the commits of its pushes
            await lock_for_transaction(db, f"outbox:{key}")
            whole = built
            if await _row_now(db, session_id) != seen:  # changed since we read it: as it is now
                current = await _picture_now(db, self.ctx, session_id)
                if current is None:
                    return 0
                whole = current
            queued = 0
            for partner_id, endpoint in targets:
                if await _cdr_queued(db, partner_id, key):
                    continue  # the session is closed: its final state went before its CDR
                queued += await _queue_session(
                    db, partner_id, _session_url(endpoint, ours, session_id), key, whole, fields, now
                )
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
            partners = await audience(db, token, ours)
            targets = [
                (p.id, p.endpoints[CDRS_ENDPOINT]) for p in partners if (p.endpoints or {}).get(CDRS_ENDPOINT)
            ]
            sessions_at = {
                p.id: p.endpoints[SESSIONS_ENDPOINT]
                for p in partners
                if (p.endpoints or {}).get(SESSIONS_ENDPOINT)
            }
        if not targets:
            return 0
        now = self.ctx.now()
        key = _key(session_id)

        async def job(db: AsyncSession) -> int:
            queued = 0
            # two handlers of the same event (a redelivery racing a slow first try), or the
            # session's own pushes: one at a time
            await lock_for_transaction(db, f"outbox:{key}")
            final: dict[str, Any] | None = None
            for partner_id, url in targets:
                if await _cdr_queued(db, partner_id, key, cdr_uid):
                    continue  # the event came again (a redelivery): a bill is sent once
                endpoint = sessions_at.get(partner_id)
                if endpoint is not None and not await _final_state_queued(db, partner_id, key):
                    # the stop's push is late (its event redelivered, or slower than this
                    # one): the session's final state goes first, so the CDR never precedes it
                    final = final or await _picture_now(db, self.ctx, session_id)
                    if final is not None:
                        queued += await _queue_session(
                            db, partner_id, _session_url(endpoint, ours, session_id), key, final,
                            STOP_FIELDS, now,
                        )  # fmt: skip
                ocpi_outbox.enqueue(
                    db, partner_id=partner_id, kind="cdrs", key=key, method="POST",
                    url=url, body=body, at=now,
                )  # fmt: skip
                queued += 1
            return queued

        return await self.ctx.write(job)


def _session_url(endpoint: str, ours: tuple[str, str], session_id: int) -> str:
    return f"{endpoint.rstrip('/')}/{ours[0]}/{ours[1]}/{session_id}"


def _fingerprint(session: ChargingSession) -> tuple[Any, ...]:
    """What a Session picture depends on that moves with the session's state (every start,
    reading and stop moves `updated_at`; the others in case a writer did not)."""
    return (session.status, session.updated_at, session.meter_last_wh, session.energy_wh, session.stop_time)


async def _row_now(db: AsyncSession, session_id: int) -> tuple[Any, ...] | None:
    """The fingerprint of the session as committed now (read in the claiming transaction)."""
    row = (
        await db.execute(
            select(
                ChargingSession.status,
                ChargingSession.updated_at,
                ChargingSession.meter_last_wh,
                ChargingSession.energy_wh,
                ChargingSession.stop_time,
            ).where(ChargingSession.id == session_id)
        )
    ).one_or_none()
    return tuple(row) if row is not None else None


async def _picture_now(db: AsyncSession, ctx: ServiceContext, session_id: int) -> dict[str, Any] | None:
    """The session's OCPI object as it is now, built in the claiming transaction."""
    session = await db.get(ChargingSession, session_id, populate_existing=True)
    if session is None:
        return None
    [session_object] = await session_objects(db, ctx, [session])
    return session_object.wire()


async def _queue_session(
    db: AsyncSession,
    partner_id: int,
    url: str,
    key: str,
    whole: dict[str, Any],
    fields: tuple[str, ...] | None,
    now: datetime,
) -> int:
    """Queue `whole` for the partner: its `fields` as a PATCH when a PUT of the session went or
    waits, else the whole Session as a PUT. 1 when queued (not a twin of the one waiting)."""
    method, body = "PUT", whole
    if fields is not None and await _was_put(db, partner_id, key):
        method, body = "PATCH", {name: whole[name] for name in fields if name in whole}
    queued = await ocpi_outbox.enqueue_unless_pending(
        db, partner_id=partner_id, kind="sessions", key=key, method=method, url=url, body=body, at=now
    )
    return int(queued)


async def _final_state_queued(db: AsyncSession, partner_id: int, key: str) -> bool:
    """Whether a push carrying the session's final status was queued for the partner (whatever
    became of it: delivered, waiting, or given up)."""
    bodies = await db.execute(
        select(OcpiOutboxItem.body).where(
            OcpiOutboxItem.partner_id == partner_id,
            OcpiOutboxItem.key == key,
            OcpiOutboxItem.kind == "sessions",
        )
    )
    return any(isinstance(body, dict) and body.get("status") in FINAL_STATES for body in bodies.scalars())


async def _cdr_queued(db: AsyncSession, partner_id: int, key: str, cdr_uid: str | None = None) -> bool:
    """Whether CDR `cdr_uid` (None: any CDR of the session) was already queued for the partner
    (whatever became of it)."""
    of_session = select(OcpiOutboxItem.id if cdr_uid is None else OcpiOutboxItem.body).where(
        OcpiOutboxItem.partner_id == partner_id,
        OcpiOutboxItem.key == key,
        OcpiOutboxItem.kind == "cdrs",
    )
    if cdr_uid is None:  # asked at every session push: no CDR bodies read for it
        return (await db.execute(of_session.limit(1))).first() is not None
    bodies = (await db.execute(of_session)).scalars()
    return any(isinstance(body, dict) and body.get("id") == cdr_uid for body in bodies)
