"""Pushes to roaming partners through a persistent outbox (issue 6, item 10).

A push is a row written in the transaction of the change it reports (`enqueue`), so it is
never lost and never sent for a change that rolled back. The `OutboxWorker` delivers due rows
after commit: in order per (partner, key) (a session's PATCH never overtakes its PUT), one
partner at a time per partner so a partner that is down only delays itself, retrying with
exponential backoff; when the attempts run out the row is `dead`, listed for the operator,
who can retry it. A station's messages never wait for any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from stekker.bus import Event
from stekker.cluster.leases import while_leading
from stekker.db.models_ocpi import OcpiOutboxItem, OcpiPartner, OutboxStatus, PartnerStatus
from stekker.services.audit import audit
from stekker.services.context import ServiceContext
from stekker.services.errors import Conflict, Missing
from stekker.services.ocpi_partners import partner_headers
from stekker.services.outage import OutageLog
from stekker.services.partner_http import partner_client

log = logging.getLogger(__name__)

BATCH = 200
FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(hours=1)
MAX_ERROR = 500
#: A CDR is a bill: it is retried for about a week (hourly once the backoff is at its longest),
#: whatever the general limit, before it is listed as dead for the operator.
ATTEMPTS_AT_LEAST = {"cdrs": 180}


#: (partner id, key) → the X-Correlation-ID of the partner's request that caused the push (a
#: command's result carries the command's). In memory, as the outbox table has no column for
#: it: after a restart, or beyond MAX_CAUSES waiting pushes, the push gets a new correlation ID.
_causes: OrderedDict[tuple[int, str], str] = OrderedDict()
MAX_CAUSES = 10_000


def _remember_cause(partner_id: int, key: str, correlation_id: str) -> None:
    _causes[(partner_id, key)] = correlation_id
    _causes.move_to_end((partner_id, key))
    while len(_causes) > MAX_CAUSES:
        _causes.popitem(last=False)


def enqueue(
    db: AsyncSession,
    *,
    partner_id: int,
    kind: str,
    key: str,
    method: str,
    url: str,
    body: Any | None,
    at: datetime,
    correlation_id: str | None = None,
) -> None:
    """Queue a push in the caller's transaction; it is delivered after commit. With
    `correlation_id` (the partner's request that caused it), the push carries it.

    The deliverer sends a (partner, key)'s pushes in the order of their ids. Ids follow the
    commits only when the queuers of one key take turns: callers that may queue the same key
    from several processes at once hold a claim on it for the transaction
    (`stekker.cluster.claims.lock_for_transaction(db, f"outbox:{key}")`, as the session
    pushes do), else a push whose transaction commits late is sent after one queued after it."""
    if correlation_id is not None:
        _remember_cause(partner_id, key[:100], correlation_id)
    db.add(
        OcpiOutboxItem(
            partner_id=partner_id,
            kind=kind[:32],
            key=key[:100],
            method=method.upper(),
            url=url,
            body=body,
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=at,
            created_at=at,
        )
    )


async def enqueue_unless_pending(
    db: AsyncSession,
    *,
    partner_id: int,
    kind: str,
    key: str,
    method: str,
    url: str,
    body: Any | None,
    at: datetime,
) -> bool:
    """`enqueue`, unless the last push to this URL (of partner and key) is the same one and
    still pending.

    A consumer-group event is delivered again when the process handling it died before its
    acknowledgement (and a station repeats a status): the push it makes is then the one
    already waiting, and the partner would end in the same state without it. Only a pending
    twin counts: a push already delivered may be wanted again (a partner that lost it)."""
    last = (
        await db.execute(
            select(OcpiOutboxItem)
            .where(
                OcpiOutboxItem.partner_id == partner_id,
                OcpiOutboxItem.key == key[:100],
                OcpiOutboxItem.url == url,
            )
            .order_by(OcpiOutboxItem.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if (
        last is not None
        and last.status == OutboxStatus.PENDING
        and (last.kind, last.method, last.body) == (kind[:32], method.upper(), body)
    ):
        return False
    enqueue(db, partner_id=partner_id, kind=kind, key=key, method=method, url=url, body=body, at=at)
    return True


def _owns(partner: OcpiPartner, parties: set[tuple[str, str]]) -> bool:
    mine = {
        (str(r.get("country_code", "")).upper(), str(r.get("party_id", "")).upper())
        for r in partner.roles or ()
    }
    mine.add(((partner.country_code or "").upper(), (partner.party_id or "").upper()))
    return bool(mine & parties)


async def enqueue_for_partners(
    ctx: ServiceContext,
    *,
    module: str,
    role: str,
    kind: str,
    key: str,
    method: str,
    path: str,
    body: Any | None,
    parties: set[tuple[str, str]] | None = None,
) -> int:
    """One push per registered partner with endpoint "module:role" (to its URL + `path`),
    limited to partners owning one of `parties` when given. Its own transaction."""
    now = ctx.now()
    endpoint = f"{module}:{role}"

    async def job(db: AsyncSession) -> int:
        partners = (
            await db.execute(select(OcpiPartner).where(OcpiPartner.status == PartnerStatus.REGISTERED))
        ).scalars()
        queued = 0
        for partner in partners:
            url = (partner.endpoints or {}).get(endpoint)
            if not url or (parties is not None and not _owns(partner, parties)):
                continue
            enqueue(
                db, partner_id=partner.id, kind=kind, key=key, method=method, url=url.rstrip("/") + path,
                body=body, at=now,
            )  # fmt: skip
            queued += 1
        return queued

    queued = await ctx.write(job)
    if queued:
        await announce(ctx)
    return queued


#: The fan-out event that says "pushes were queued": the worker leading the delivery wakes up
#: at once, whichever process queued them (the 1 s poll stays as the safety net).
QUEUED_TOPIC = "outbox.queued"
#: At most one announcement per process in this many seconds (a burst of status pushes must
#: not become a burst of events); one more follows the burst, so the last push is not left
#: to the poll.
ANNOUNCE_EVERY = 0.2


class _Announcer:
    """Throttled `outbox.queued` publisher of one bus (see `announce`)."""

    def __init__(self) -> None:
        self.last = -ANNOUNCE_EVERY
        self.trailing: asyncio.Task[None] | None = None

    async def announce(self, ctx: ServiceContext) -> None:
        now = asyncio.get_running_loop().time()
        if now - self.last >= ANNOUNCE_EVERY:
            self.last = now
            await self._publish(ctx)
        elif self.trailing is None or self.trailing.done():
            self.trailing = asyncio.create_task(self._later(ctx, self.last + ANNOUNCE_EVERY - now))

    async def _later(self, ctx: ServiceContext, delay: float) -> None:
        await asyncio.sleep(delay)
        self.last = asyncio.get_running_loop().time()
        await self._publish(ctx)

    @staticmethod
    async def _publish(ctx: ServiceContext) -> None:
        try:
            await ctx.bus.publish(Event(QUEUED_TOPIC, {"node": ctx.node.node_id}))
        except Exception as exc:  # Redis away: the leader's poll finds the pushes within a second
            log.debug("could not announce queued OCPI pushes: %r", exc)


_announcers: weakref.WeakKeyDictionary[object, _Announcer] = weakref.WeakKeyDictionary()


async def announce(ctx: ServiceContext) -> None:
    """Tell the outbox's deliverer, in whichever process it runs, that pushes were queued.
    Call it after the commit that queued them; it never raises."""
    try:
        announcer = _announcers.setdefault(ctx.bus, _Announcer())
    except TypeError:  # a bus that cannot be weakly referenced: unthrottled
        announcer = _Announcer()
    await announcer.announce(ctx)


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s ... at most an hour between attempts."""
    delay: timedelta = FIRST_RETRY * (2 ** max(0, min(attempts, 30) - 1))
    return min(delay, LONGEST_RETRY)


def _delivered(response: httpx.Response) -> tuple[bool, str | None]:
    if not 200 <= response.status_code < 300:
        return False, f"HTTP {response.status_code}: {response.text[:200]}"
    try:
        body = response.json()
    except ValueError:
        return True, None  # a 2xx without an envelope: the partner took it
    status = body.get("status_code") if isinstance(body, dict) else None
    if status is None or 1000 <= int(status) < 2000:
        return True, None
    return False, f"OCPI status {status}: {str(body.get('status_message'))[:200]}"


class OutboxWorker:
    """Delivers due pushes every `interval` seconds (sooner when woken).

    One deliverer in the whole cluster: the worker holding the Redis lease "ocpi-outbox"
    (in one process, always this one). Why a lease and not row claims (`FOR UPDATE SKIP
    LOCKED`): the outbox promises order per (partner, key) and one partner at a time; with
    several deliverers a row claim would have to lock a key's whole chain across an HTTP
    call, and the throughput is bounded by the partners, not by us. A dead leader's lease
    expires and another worker delivers from where the table says it stopped.

    Delivered at least once, never by two deliverers at once: the lease is renewed every
    third of its time and the delivery is cancelled as soon as a renewal fails, well before
    the lease can expire. A leader killed between a partner's answer and the commit that
    marks the row delivered leaves the row pending, so the next leader sends it again: at
    most the pushes in flight at the kill (one per partner) arrive twice. That is harmless
    for PUT, PATCH and DELETE (OCPI objects are sent whole or as the same fields: idempotent)
    and for command results (the eMSP matches them by command id). A CDR POST repeated
    carries the same CDR id: an eMSP that stores CDRs by id keeps one; one that refuses the
    duplicate fails the row, which after its retries is listed as dead for the operator to
    check (the price of never losing a bill). The correlation ID a push was queued with is
    remembered in the queuing process only: a push queued by another process gets a new one.

    `wake` works across processes: `announce` (called after any commit that queues pushes,
    by `enqueue_for_partners` and the push listeners) publishes the fan-out event
    `outbox.queued`, which wakes the leader wherever it runs."""

    LEASE = "ocpi-outbox"

    def __init__(
        self, ctx: ServiceContext, client: httpx.AsyncClient | None = None, interval: float = 1.0
    ) -> None:
        self.ctx = ctx
        self.interval = interval
        self._client = client
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        if self._task is None:
            if self._client is None:
                # the partner chose these URLs (endpoints, response_url): guarded like all
                self._client = partner_client(self.ctx.settings)
            # fan-out on purpose: only the leader needs it, and we cannot know which one that is
            self._unsubscribe = self.ctx.bus.subscribe(QUEUED_TOPIC, self._on_queued)
            self._task = asyncio.create_task(
                while_leading(
                    self.ctx.leases, self.LEASE, self._run, ttl=self.ctx.settings.cluster_lease_seconds
                ),
                name="ocpi-outbox",
            )

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            with contextlib.suppress(ValueError):
                self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def wake(self) -> None:
        """Deliver now (in this process); `announce` reaches the leader wherever it runs."""
        self._wake.set()

    async def _on_queued(self, _event: Event) -> None:
        self._wake.set()

    async def _run(self) -> None:
        outage = OutageLog("OCPI outbox", log)
        while True:
            self._wake.clear()  # what woke us before this round is delivered by it
            try:
                await self.deliver_due()
                outage.ok()
            except Exception as exc:  # the next round may succeed (a database that was briefly away)
                outage.failed_or_log(exc, "OCPI outbox round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def deliver_due(self) -> int:
        """One round: every due push whose predecessors (same partner and key) are done."""
        now = self.ctx.now()
        earlier = aliased(OcpiOutboxItem)
        async with self.ctx.db() as db:
            rows = list(
                (
                    await db.execute(
                        select(OcpiOutboxItem, OcpiPartner)
                        .join(OcpiPartner, OcpiPartner.id == OcpiOutboxItem.partner_id)
                        .where(
                            OcpiOutboxItem.status == OutboxStatus.PENDING,
                            OcpiOutboxItem.next_attempt_at <= now,
                            ~exists().where(
                                and_(
                                    earlier.partner_id == OcpiOutboxItem.partner_id,
                                    earlier.key == OcpiOutboxItem.key,
                                    earlier.status == OutboxStatus.PENDING,
                                    earlier.id < OcpiOutboxItem.id,
                                )
                            ),
                        )
                        .order_by(OcpiOutboxItem.id)
                        .limit(BATCH)
                    )
                ).all()
            )
            db.expunge_all()
        by_partner: dict[int, list[tuple[OcpiOutboxItem, OcpiPartner]]] = defaultdict(list)
        for item, partner in rows:
            by_partner[partner.id].append((item, partner))
        results = await asyncio.gather(*(self._deliver_partner(items) for items in by_partner.values()))
        return sum(results)

    async def _deliver_partner(self, items: list[tuple[OcpiOutboxItem, OcpiPartner]]) -> int:
        """A partner's due pushes in order; the first failure ends its round (it is down)."""
        delivered = 0
        for item, partner in items:
            ok, error = await self._send(item, partner)
            await self._record(item, ok, error)
            if not ok:
                break
            delivered += 1
        return delivered

    async def _send(self, item: OcpiOutboxItem, partner: OcpiPartner) -> tuple[bool, str | None]:
        if partner.status != PartnerStatus.REGISTERED or not partner.outgoing_token:
            return False, f"the partner is {partner.status}"
        assert self._client is not None
        headers = partner_headers(self.ctx.settings.party, partner)
        cause = _causes.get((item.partner_id, item.key))
        if cause is not None:
            headers["X-Correlation-ID"] = cause
        try:
            response = await self._client.request(item.method, item.url, json=item.body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return False, f"{exc.__class__.__name__}: {exc}"[:MAX_ERROR]
        return _delivered(response)

    async def _record(self, item: OcpiOutboxItem, ok: bool, error: str | None) -> None:
        now = self.ctx.now()
        limit = max(self.ctx.settings.ocpi_push_max_attempts, ATTEMPTS_AT_LEAST.get(item.kind, 0))

        async def job(db: AsyncSession) -> None:
            row = await db.get(OcpiOutboxItem, item.id)
            if row is None or row.status != OutboxStatus.PENDING:
                return
            row.attempts += 1
            if ok:
                row.status, row.delivered_at, row.last_error = OutboxStatus.DELIVERED, now, None
                return
            row.last_error = (error or "failed")[:MAX_ERROR]
            if row.attempts >= limit or (error or "").startswith("the partner is"):
                row.status = OutboxStatus.DEAD
                log.warning("OCPI push %s to partner %s is dead: %s", row.id, row.partner_id, row.last_error)
            else:
                row.next_attempt_at = now + backoff(row.attempts)

        await self.ctx.write(job)


def item_view(row: OcpiOutboxItem) -> dict[str, Any]:
    return {
        "id": row.id,
        "partner_id": row.partner_id,
        "kind": row.kind,
        "key": row.key,
        "method": row.method,
        "url": row.url,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "delivered_at": row.delivered_at,
    }


async def list_items(
    ctx: ServiceContext, *, status: str | None, partner_id: int | None, limit: int
) -> list[dict[str, Any]]:
    query = select(OcpiOutboxItem).order_by(OcpiOutboxItem.id.desc()).limit(limit)
    if status is not None:
        query = query.where(OcpiOutboxItem.status == status)
    if partner_id is not None:
        query = query.where(OcpiOutboxItem.partner_id == partner_id)
    async with ctx.db() as db:
        return [item_view(row) for row in (await db.execute(query)).scalars()]


async def retry(ctx: ServiceContext, item_id: int, actor: str) -> dict[str, Any]:
    """A dead push back in the queue, with fresh attempts."""
    now = ctx.now()

    async def job(db: AsyncSession) -> dict[str, Any]:
        row = await db.get(OcpiOutboxItem, item_id)
        if row is None:
            raise Missing(f"no push {item_id}")
        if row.status != OutboxStatus.DEAD:
            raise Conflict(f"push {item_id} is {row.status}; only a dead push can be retried")
        row.status, row.attempts, row.next_attempt_at = OutboxStatus.PENDING, 0, now
        audit(db, actor=actor, action="ocpi.push.retried", object_type="ocpi_push", object_id=row.id, at=now)
        return item_view(row)

    return await ctx.write(job)
