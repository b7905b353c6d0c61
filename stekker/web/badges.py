"""What colour a badge has: one kind per meaning, for every badge in the console, so the same
word never changes colour between pages and "accepted" is never red.

The kinds (CSS classes in console.css, block "badges"), each with words on it, never colour
alone:

- `ok`    green: done or usable (Available, Accepted, active token, job completed)
- `busy`  blue: in use or in progress (Charging, Occupied, Reserved, a running job or session)
- `warn`  amber: waits for someone or may need a look (Pending, submitted tariff, time-out)
- `bad`   red: broken or refused (Faulted, Rejected, blocked, failed)
- `off`   grey: not there or switched off (Offline, Unknown, cancelled, withdrawn, expired)
"""

from __future__ import annotations

from collections.abc import Mapping

from stekker.domain.station_status import StationStatus

Kind = str  # one of KINDS
KINDS: tuple[Kind, ...] = ("ok", "busy", "warn", "bad", "off")

STATION_STATUS: Mapping[str, Kind] = {
    StationStatus.OFFLINE: "off",
    StationStatus.FAULTED: "bad",
    StationStatus.CHARGING: "busy",
    StationStatus.OCCUPIED: "busy",
    StationStatus.RESERVED: "busy",
    StationStatus.AVAILABLE: "ok",
    StationStatus.UNAVAILABLE: "warn",
    StationStatus.UNKNOWN: "off",
}

#: family → value → kind. A value a family does not list is `off` (neutral grey).
FAMILIES: Mapping[str, Mapping[str, Kind]] = {
    "station": STATION_STATUS,
    # the raw OCPP connector statuses, as the station page lists them
    "connector": {
        "Available": "ok",
        "Preparing": "busy",
        "Charging": "busy",
        "SuspendedEV": "busy",
        "SuspendedEVSE": "busy",
        "Finishing": "busy",
        "Occupied": "busy",
        "Reserved": "busy",
        "Unavailable": "warn",
        "Faulted": "bad",
    },
    "connection": {"online": "ok", "offline": "off"},
    "registration": {"Accepted": "ok", "Pending": "warn", "Rejected": "bad"},
    "token": {"active": "ok", "blocked": "bad"},
    "session": {"active": "busy", "completed": "ok"},
    "job": {"running": "busy", "completed": "ok"},
    # one station in a bulk job
    "job_station": {
        "accepted": "ok",
        "queued": "busy",
        "waiting": "busy",
        "sent": "busy",
        "rejected": "bad",
        "failed": "bad",
        "timed_out": "bad",
        "expired": "bad",
    },
    "diagnostics": {
        "uploaded": "ok",
        "rejected": "bad",
        "failed": "bad",
        "upload_failed": "bad",
        "expired": "bad",
    },
    "tariff": {"active": "ok", "scheduled": "ok", "submitted": "warn", "rejected": "bad"},
    "tariff_approval": {"never_approved": "warn"},
    "flow": {"running": "busy", "released": "ok", "failed": "bad", "timed_out": "bad"},
    "flow_step": {"ok": "ok", "running": "busy", "failed": "bad"},
    "answer": {
        "accepted": "ok",
        "rejected": "bad",
        "refused": "bad",
        "error": "bad",
        "timeout": "warn",
        "not_supported": "warn",
    },
    "user": {"active": "ok", "disabled": "off"},
    # an audit line's result: what was asked went through, or it did not; anything else (a
    # station's own word we do not list) is neutral, never red by default
    "audit": {
        **{
            good: "ok"
            for good in (
                "ok",
                "accepted",
                "Accepted",
                "sent",
                "released",
                "completed",
                "Unlocked",
                "Scheduled",
                "Cleared",
                "active",
                "approved",
            )
        },
        **{
            bad: "bad"
            for bad in (
                "failed",
                "rejected",
                "Rejected",
                "refused",
                "error",
                "UnlockFailed",
                "timeout",
                "Blocked",
                "Invalid",
                "Expired",
                "ConcurrentTx",
            )
        },
    },
    "drift": {"ok": "ok"},
}
#: a family whose unlisted values are something to look at, not neutral
_OTHERWISE: Mapping[str, Kind] = {
    "job_station": "busy",
    "diagnostics": "busy",
    "drift": "warn",
}


def kind(family: str, value: object) -> Kind:
    """The badge kind of `value` in `family` (see FAMILIES); an unknown family is a bug."""
    table = FAMILIES[family]
    text = "" if value is None else str(value)
    return table.get(text, _OTHERWISE.get(family, "off"))
