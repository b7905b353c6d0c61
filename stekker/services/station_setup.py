"""Keep stations set up for central authorization (requirement 76) and their local lists current."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingSession, ChargingStation, SessionStatus
from stekker.services.audit import record_audit, record_station_event, station_event
from stekker.services.context import ServiceContext
from stekker.services.device_model import (
    OCPP16_COMPONENT,
    VariableRef,
    VariableResult,
    has_reported_configuration,
    request_base_report,
    store_results,
)
from stekker.services.ports import CommandError, StationCommand
from stekker.services.tokens import local_list_update

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


async def configure_for_central_authorization(ctx: ServiceContext, station_id: str) -> dict[str, str]:
    """Push the settings; record per setting what the station said (NotSupported is a fact too)."""
    assert ctx.commands is not None
    changes = central_authorization_settings(ctx, ctx.commands.protocol(station_id))
    results: dict[str, str] = {}
    try:
        reply = await ctx.commands.send(station_id, StationCommand("set_variables", {"items": changes}))
        answers: list[VariableResult] = reply["results"]
        for answer in answers:
            results[answer.ref.variable if answer.ref.component == OCPP16_COMPONENT else answer.ref.label] = (
                answer.status
            )
        await store_results(ctx, station_id, answers, "set")
    except CommandError as exc:
        results = {ref.label: f"failed: {exc}" for ref, _ in changes}
    await record_station_event(ctx, station_id, "central_authorization_configured", results=results)
    return results


async def after_boot(ctx: ServiceContext, station_id: str) -> None:
    """What follows an accepted boot (either version): central authorization settings, the
    local list, and, the first time we see the station, its whole configuration."""
    await configure_for_central_authorization(ctx, station_id)
    await sync_local_list(ctx, station_id)
    report = "known already"
    if not await has_reported_configuration(ctx, station_id):
        try:
            report = (await request_base_report(ctx, "system", station_id, "FullInventory"))["status"]
        except CommandError as exc:
            report = f"failed: {exc}"
    await record_station_event(ctx, station_id, "boot_setup_done", configuration_report=report)


async def sync_local_list(ctx: ServiceContext, station_id: str) -> str:
    """Bring the station's local authorization list to our version; returns what happened."""
    assert ctx.commands is not None
    try:
        reply = await ctx.commands.send(station_id, StationCommand("get_local_list_version"))
        station_version: int | None = reply["version"]
    except CommandError as exc:
        log.info("%s: no local list version: %s", station_id, exc)
        station_version = None
    if station_version == -1:
        return "not supported"
    update_ = await local_list_update(ctx, station_version)
    if update_ is None:
        outcome = "current"
    else:
        try:
            reply = await ctx.commands.send(
                station_id, StationCommand("send_local_list", {"update": update_})
            )
            outcome = reply["status"]
            if outcome in ("VersionMismatch", "Failed") and not update_.full:
                full = await local_list_update(ctx, None)
                assert full is not None
                reply = await ctx.commands.send(
                    station_id, StationCommand("send_local_list", {"update": full})
                )
                outcome = reply["status"]
        except CommandError as exc:
            outcome = f"failed: {exc}"
    at = ctx.now()

    async def job(db: AsyncSession) -> None:
        if update_ is not None and outcome == "Accepted":
            await db.execute(
                update(ChargingStation)
                .where(ChargingStation.id == station_id)
                .values(local_list_version=update_.version)
            )
        station_event(
            db,
            station_id,
            "local_list_sync",
            at,
            outcome=outcome,
            station_version=station_version,
            version=None if update_ is None else update_.version,
            full=None if update_ is None else update_.full,
        )

    await ctx.write(job)
    return outcome


class LocalListSyncer:
    """Listens for token changes and, after a short quiet period, syncs every connected station."""

    def __init__(self, ctx: ServiceContext, debounce: float = 1.0, concurrency: int = 50) -> None:
        self._ctx = ctx
        self._debounce = debounce
        self._limit = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self._dirty = False

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
