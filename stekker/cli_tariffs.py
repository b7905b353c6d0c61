"""`stekker tariff ...`: tariffs, their approval by the municipality, and the maximum price."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from stekker.clikit import call_api, console, show_table, with_output
from stekker.domain.money import Rounding, amount_text, unit_price_text

tariff_app = typer.Typer(
    help="Tariffs, their approval by the municipality, and the maximum price.", no_args_is_help=True
)

# OCPI fields that belong to the tariff itself, not to a version's prices
_IDENTITY = ("id", "country_code", "party_id", "currency", "last_updated")

FileOpt = Annotated[Path, typer.Option("--file", "-f", help="An OCPI 2.2.1 Tariff as JSON (e.g. an eMSP's).")]
WhenOpt = Annotated[
    str | None, typer.Option("--effective-from", help="When it takes effect, e.g. 2026-12-01T00:00:00+01:00.")
]
TargetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--applies-to",
        help="all | location:ID | evse:EVSE_ID | evse:EVSE_ID:CONNECTOR (repeatable). Default: all.",
    ),
]
CommentOpt = Annotated[str | None, typer.Option("--comment", "-m", help="Why.")]


def _content(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: a tariff is a JSON object")
    return {k: v for k, v in data.items() if k not in _IDENTITY}


def _targets(values: list[str] | None) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    for value in values or ["all"]:
        kind, _, rest = value.partition(":")
        if kind == "all" and not rest:
            targets.append({"all": True})
        elif kind == "location" and rest.isdigit():
            targets.append({"location_id": int(rest)})
        elif kind == "evse" and rest:
            evse, sep, connector = rest.rpartition(":")  # eMI3 ids use '*', never ':'
            if sep and connector.isdigit():
                targets.append({"evse_uid": evse, "connector": int(connector)})
            else:
                targets.append({"evse_uid": rest})
        else:
            raise typer.BadParameter(
                f"--applies-to {value!r}: write all, location:ID or evse:EVSE_ID[:CONNECTOR]"
            )
    return targets


def _draft(
    path: Path,
    when: str | None,
    targets: list[str] | None,
    grace: int,
    audience: str,
    parties: list[str] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "content": _content(path),
        "applies_to": _targets(targets),
        "parking_grace_minutes": grace,
        "audience": audience,
        "parties": parties or [],
    }
    if when:
        body["effective_from"] = when
    return body


def _amount(value: Any, currency: str, rounding: Rounding = Rounding.BILLED) -> str | None:
    """An amount from the API as people read it (`€12.46`, `stekker.domain.money`)."""
    return None if value is None else amount_text(Decimal(str(value)), currency, "en", rounding)


def _unit_price(value: Any, currency: str) -> str | None:
    """A price per kWh or hour from the API, exact (`€0.4235`)."""
    return None if value is None else unit_price_text(Decimal(str(value)), currency, "en")


def _show_version(view: dict[str, Any]) -> None:
    console.print(
        f"[bold]{view['tariff']}[/] version {view['version']}: {view['status']}"
        f" (effective from {view.get('effective_from') or 'not set'})",
        highlight=False,
    )


@tariff_app.command("list")
@with_output
def list_tariffs() -> None:
    """Every tariff with its active, scheduled and open versions."""
    rows = call_api("GET", "/api/tariffs")
    show_table(
        rows,
        [
            "code",
            "name",
            "currency",
            "active_version",
            "active_never_approved",
            "scheduled_versions",
            "open_version",
        ],
        "Tariffs",
    )


@tariff_app.command("show")
@with_output
def show(code: str) -> None:
    """A tariff's versions and their status."""
    view = call_api("GET", f"/api/tariffs/{code}")
    show_table(
        view["versions"],
        ["version", "status", "never_approved", "effective_from", "created_by", "note"],
        view["name"],
        data=view,
    )


@tariff_app.command("create")
def create(
    code: str,
    name: Annotated[str, typer.Option(help="A name people recognise.")],
    file: FileOpt,
    currency: Annotated[str, typer.Option(help="ISO 4217.")] = "EUR",
    effective_from: WhenOpt = None,
    applies_to: TargetOpt = None,
    grace: Annotated[int, typer.Option(help="Free minutes of parking before the idle fee.")] = 0,
    audience: Annotated[str, typer.Option(help="all | adhoc | contract")] = "all",
    party: Annotated[list[str] | None, typer.Option(help="eMSP as NL-ABC (audience contract).")] = None,
) -> None:
    """A new tariff; version 1 is a draft until submitted and approved."""
    body = {
        "code": code,
        "name": name,
        "currency": currency,
        **_draft(file, effective_from, applies_to, grace, audience, party),
    }
    view = call_api("POST", "/api/tariffs", json=body)
    console.print(f"created tariff {view['code']}: version 1 is a draft", highlight=False)


@tariff_app.command("draft")
def draft(
    code: str,
    file: FileOpt,
    effective_from: WhenOpt = None,
    applies_to: TargetOpt = None,
    grace: Annotated[int, typer.Option(help="Free minutes of parking before the idle fee.")] = 0,
    audience: Annotated[str, typer.Option(help="all | adhoc | contract")] = "all",
    party: Annotated[list[str] | None, typer.Option(help="eMSP as NL-ABC (audience contract).")] = None,
    note: Annotated[str | None, typer.Option(help="Why the change, for the municipality.")] = None,
) -> None:
    """Edit the open draft, or start the next version."""
    body = _draft(file, effective_from, applies_to, grace, audience, party)
    if note:
        body["note"] = note
    _show_version(call_api("PUT", f"/api/tariffs/{code}/draft", json=body))


def _step(code: str, version: int, step: str, comment: str | None) -> None:
    body = {"comment": comment} if comment else None
    _show_version(call_api("POST", f"/api/tariffs/{code}/versions/{version}/{step}", json=body))


@tariff_app.command("submit")
def submit(code: str, version: int) -> None:
    """Send a draft to the municipality (refused when it exceeds the maximum price)."""
    _step(code, version, "submit", None)


@tariff_app.command("withdraw")
def withdraw(code: str, version: int, comment: CommentOpt = None) -> None:
    """Take back a draft, a proposal, or an approved version before it takes effect."""
    _step(code, version, "withdraw", comment)


@tariff_app.command("approve")
def approve(code: str, version: int, comment: CommentOpt = None) -> None:
    """Municipality: approve a proposal."""
    _step(code, version, "approve", comment)


@tariff_app.command("reject")
def reject(
    code: str, version: int, comment: Annotated[str, typer.Option("--comment", "-m", help="Why.")]
) -> None:
    """Municipality: reject a proposal, saying why."""
    _step(code, version, "reject", comment)


@tariff_app.command("compare")
@with_output
def compare(code: str, version: int) -> None:
    """Old against new on the reference sessions, incl. VAT."""
    view = call_api("GET", f"/api/tariffs/{code}/versions/{version}/comparison")
    rows = []
    currency = view["currency"]
    for item in view["sessions"]:
        old, new = item.get("old"), item.get("new")
        rows.append(
            {
                "session": item["reference_session"]["name"],
                "what": item["description"],
                "old": None if old is None else _amount(old["incl_vat"], currency),
                "new": None if new is None else _amount(new["incl_vat"], currency),
                "difference": _amount(item.get("difference_incl_vat"), currency),
                "over cap": "YES" if new and new["over_cap"] else "",
            }
        )
    title = f"{code} v{version} against v{view['compared_with_version']} (incl. VAT)"
    show_table(rows, ["session", "what", "old", "new", "difference", "over cap"], title, data=view)


@tariff_app.command("history")
@with_output
def history(code: str) -> None:
    """Every step of every version: who, when, why."""
    show_table(
        call_api("GET", f"/api/tariffs/{code}/history"),
        ["at", "version", "from", "to", "actor", "comment"],
        code,
    )


@tariff_app.command("cap")
@with_output
def cap(
    per_kwh: Annotated[str | None, typer.Option(help="Max per kWh for charging, incl. VAT.")] = None,
    per_session: Annotated[str | None, typer.Option(help="Max per session, incl. VAT.")] = None,
    parking_per_hour: Annotated[str | None, typer.Option(help="Max idle fee per hour, incl. VAT.")] = None,
    effective_from: WhenOpt = None,
    comment: CommentOpt = None,
) -> None:
    """Show the maximum price; with a bound given, set it (municipality only)."""
    if per_kwh is None and per_session is None and parking_per_hour is None:
        view = call_api("GET", "/api/tariffs/caps")
        current = view["current"]
        if current is None:
            console.print("no maximum price is set")
        else:
            currency = current["currency"]
            shown = {
                **current,
                "max_per_kwh": _unit_price(current.get("max_per_kwh"), currency),
                "max_per_session": _amount(current.get("max_per_session"), currency, Rounding.MAXIMUM),
                "max_parking_per_hour": _unit_price(current.get("max_parking_per_hour"), currency),
            }
            show_table(
                [shown],
                [
                    "currency",
                    "max_per_kwh",
                    "max_per_session",
                    "max_parking_per_hour",
                    "effective_from",
                    "set_by",
                ],
                "Maximum price",
                data=view,
            )
        return
    body: dict[str, Any] = {
        "max_per_kwh": per_kwh,
        "max_per_session": per_session,
        "max_parking_per_hour": parking_per_hour,
    }
    if effective_from:
        body["effective_from"] = effective_from
    if comment:
        body["comment"] = comment
    view = call_api("POST", "/api/tariffs/caps", json=body)
    console.print(f"maximum price set from {view['effective_from']}", highlight=False)
    for item in view["affected_tariffs"]:
        console.print(
            f"  tariff {item['tariff']} v{item['version']} costs more on '{item['reference_session']}': "
            "its sessions will be capped",
            highlight=False,
        )
