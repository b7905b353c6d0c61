"""Keep stations set up for central authorization (requirement 76) and their local lists current."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event, EventBus
from stekker.db.models import ChargingSession, ChargingStation, SessionStatus
from stekker.services.audit import record_audit, station_event
from stekker.services.context import ServiceContext
from stekker.services.device_model import (
    OCPP16_COMPONENT,
    VariableRef,
    VariableResult,
    has_reported_configuration,
    request_base_report,
    upsert_results,
)
from stekker.services.ports import CommandError, StationCommand
from stekker.services.tokens import LocalListUpdate, local_list_update

log = logging.getLogger(__name__)


def central_authorization_settings(
    ctx: ServiceContext, protocol: str | None
) -> list[tuple[VariableRef, str]]:
    """The configuration that makes our decision win while the station is online; the local
    list and cache only speak when it is offline (and only if the operator allows that).
    The same intent, in each version's words."""
    offline = str(ctx.settings.local_authorize_offline).lower()
    cache = str(ctx.settings.authorization_cache_enabled).lower()
    if protocol == "ocpp1.6":
        keys = {
            "LocalPreAuthorize": "false",
            "StopTransactionOnInvalidId": "true",
            "LocalAuthorizeOffline": offline,
            "AuthorizationCacheEnabled": cache,
            "LocalAuthListEnabled": "true",
        }
        return [(VariableRef(OCPP16_COMPONENT, key), value) for key, value in keys.items()]
    return [
        (VariableRef("AuthCtrlr", "LocalPreAuthorize"), "false"),
        (VariableRef("TxCtrlr", "StopTxOnInvalidId"), "true"),
        (VariableRef("AuthCtrlr", "LocalAuthorizeOffline"), offline),
        (VariableRef("AuthCacheCtrlr", "Enabled"), cache),
        (VariableRef("LocalAuthListCtrlr", "Enabled"), "true"),
    ]


@dataclass(frozen=True, slots=True)
class AuthorizationSetup:
    """What a station answered to the central-authorization settings, per setting."""

    results: dict[str, str]
    confirmed: list[VariableResult]


async def _push_central_authorization(ctx: ServiceContext, station_id: str) -> AuthorizationSetup:
    assert ctx.commands is not None
    changes = central_authorization_settings(ctx, ctx.commands.protocol(station_id))
    try:
        reply = await ctx.commands.send(station_id, StationCommand("set_variables", {"items": changes}))
    except CommandError as exc:
        return AuthorizationSetup({ref.label: f"failed: {exc}" for ref, _ in changes}, [])
    answers: list[VariableResult] = reply["results"]
    results = {
        (a.ref.variable if a.ref.component == OCPP16_COMPONENT else a.ref.label): a.status for a in answers
    }
    return AuthorizationSetup(results, answers)


async def _record_authorization_setup(
    db: AsyncSession, station_id: str, setup: AuthorizationSetup, at: datetime
) -> None:
    await upsert_results(db, station_id, setup.confirmed, "set", at)
    station_event(db, station_id, "central_authorization_configured", at, results=setup.results)


async def configure_for_central_authorization(ctx: ServiceContext, station_id: str) -> dict[str, str]:
    """Push the settings; record per setting what the station said (NotSupported is a fact too)."""
    setup = await _push_central_authorization(ctx, station_id)
    at = ctx.now()

    async def job(db: AsyncSession) -> None:
        await _record_authorization_setup(db, station_id, setup, at)

    await ctx.write(job)
    return setup.results


@dataclass(frozen=True, slots=True)
class LocalListSync:
    """The version the station held, what we sent it (if anything) and what it answered."""

    outcome: str
    station_version: int | None
    update: LocalListUpdate | None


async def _bring_local_list(ctx: ServiceContext, station_id: str) -> LocalListSync:
    assert ctx.commands is not None
    try:
        reply = await ctx.commands.send(station_id, StationCommand("get_local_list_version"))
        station_version: int | None = reply["version"]
    except CommandError as exc:
        log.info("%s: no local list version: %s", station_id, exc)
        station_version = None
    if station_version == -1:
        return LocalListSync("not supported", station_version, None)
    update_ = await local_list_update(ctx, station_version)
    if update_ is None:
        return LocalListSync("current", station_version, None)
    try:
        reply = await ctx.commands.send(station_id, StationCommand("send_local_list", {"update": update_}))
        outcome = reply["status"]
        if outcome in ("VersionMismatch", "Failed") and not update_.full:
            full = await local_list_update(ctx, None)
            assert full is not None
            update_ = full
            reply = await ctx.commands.send(station_id, StationCommand("send_local_list", {"update": full}))
            outcome = reply["status"]
    except CommandError as exc:
        outcome = f"failed: {exc}"
    return LocalListSync(outcome, station_version, update_)


async def _record_local_list_sync(
    db: AsyncSession, station_id: str, sync: LocalListSync, at: datetime
) -> None:
    if sync.update is not None and sync.outcome == "Accepted":
        await db.execute(
            update(ChargingStation)
            .where(ChargingStation.id == station_id)
            .values(local_list_version=sync.update.version)
        )
    station_event(
        db,
        station_id,
        "local_list_sync",
        at,
        outcome=sync.outcome,
        station_version=sync.station_version,
        version=None if sync.update is None else sync.update.version,
        full=None if sync.update is None else sync.update.full,
    )


async def sync_local_list(ctx: ServiceContext, station_id: str) -> str:
    """Bring the station's local authorization list to our version; returns what happened."""
    sync = await _bring_local_list(ctx, station_id)
    if sync.outcome == "not supported":
        return sync.outcome
    at = ctx.now()

    async def job(db: AsyncSession) -> None:
        await _record_local_list_sync(db, station_id, sync, at)

    await ctx.write(job)
    return sync.outcome


# First-boot configuration reports are fetched a few at a time: a fleet connecting at once
# (a migration, a gateway restart with new stations) must boot first and report later.
_REPORT_FETCHES = 8


async def after_boot(ctx: ServiceContext, station_id: str) -> None:
    """What follows an accepted boot (either version): central authorization settings and the
    local list, written in one transaction (after a gateway restart every station does this
    at once, and on SQLite each write waits for the one writer); then, the first time we see
    the station, its whole configuration, fetched a few stations at a time."""
    setup = await _push_central_authorization(ctx, station_id)
    sync = await _bring_local_list(ctx, station_id)
    known = await has_reported_configuration(ctx, station_id)
    at = ctx.now()

    async def job(db: AsyncSession) -> None:
        await _record_authorization_setup(db, station_id, setup, at)
        if sync.outcome != "not supported":
            await _record_local_list_sync(db, station_id, sync, at)
        report = "known already" if known else "fetching"
        station_event(db, station_id, "boot_setup_done", at, configuration_report=report)

    await ctx.write(job)
    if not known:
        async with ctx.limiter("configuration-report", _REPORT_FETCHES):
            try:
                await request_base_report(ctx, "system", station_id, "FullInventory")
            except CommandError as exc:
                log.info("%s: no configuration report: %s", station_id, exc)


class LocalListSyncer:
    """Listens for token changes and, after a short quiet period, syncs every connected station.

    The app subscribes `on_token_changed` to "token.changed" as the consumer group
    "local-list-sync" (`subscribe_to`): one worker in the cluster runs a round per burst of
    changes, over `ctx.commands.connected_stations()`, which in a cluster must name the
    stations of every gateway (the command port routes each sync to the station's gateway).
    A round repeated after a redelivery sends each station the list it already has: the
    sync compares list versions, so it costs a call and changes nothing."""

    GROUP = "local-list-sync"

    def __init__(self, ctx: ServiceContext, debounce: float = 1.0, concurrency: int = 50) -> None:
        self._ctx = ctx
        self._debounce = debounce
        self._limit = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self._dirty = False

    def subscribe_to(self, bus: EventBus) -> Callable[[], None]:
        """Listen for token changes on `bus`, once per cluster."""
        return bus.subscribe("token.changed", self.on_token_changed, group=self.GROUP)

    async def on_token_changed(self, _event: Event) -> None:
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        # A change that arrives while a round is running gets a round of its own.
        while self._dirty:
            await asyncio.sleep(self._debounce)
            self._dirty = False
            assert self._ctx.commands is not None
            await asyncio.gather(*(self._one(s) for s in self._ctx.commands.connected_stations()))

    async def _one(self, station_id: str) -> None:
        async with self._limit:
            try:
                await sync_local_list(self._ctx, station_id)
            except Exception:
                log.exception("%s: local list sync failed", station_id)


async def stop_if_still_running(ctx: ServiceContext, session_id: int) -> None:
    """A station started a transaction on a token we rejected (it was offline, or trusted its
    cache). It should stop by itself (StopTransactionOnInvalidId); if it has not after the
    grace period, we stop it."""
    await asyncio.sleep(ctx.settings.remote_stop_rejected_after)
    async with ctx.db() as db:
        session = await db.get(ChargingSession, session_id)
        if session is None or session.status != SessionStatus.ACTIVE:
            return
        station_id, transaction_id = session.station_id, session.transaction_id
    assert ctx.commands is not None
    try:
        reply = await ctx.commands.send(
            station_id, StationCommand("remote_stop", {"transaction_id": transaction_id})
        )
        result = reply["status"]
    except CommandError as exc:
        result = f"failed: {exc}"
    await record_audit(
        ctx,
        actor="system",
        action="session.remote_stop.rejected_token",
        object_type="session",
        object_id=session_id,
        result=result,
        station_id=station_id,
    )
