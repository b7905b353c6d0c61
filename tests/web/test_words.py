"""Stored codes have words (`stekker.web.words`, texts in `stekker.web.texts_events`): every audit
action and station event the code writes, every stop reason and card check OCPP defines, every
note of the helpdesk's stop and release; and a code nobody worded yet, or one with markup in it,
is shown as stored and escaped.

The source is read for the codes it writes, so a new `audit(..., action="x.y")` or
`station_event(db, id, "kind", ...)` without words fails here, not on a Dutch page in production.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import httpx
import pytest
from ocpp.v16 import enums as v16
from ocpp.v201 import enums as v201
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models_users import Role
from stekker.domain.session_closure import SUPERSEDED, ClosedBecause
from stekker.services import stop_release, users
from stekker.services.audit import audit
from stekker.web import i18n, words
from tests.web.conftest import PASSWORD, base_url, http_login

SOURCE = Path(__file__).resolve().parents[2] / "stekker"
LANGS: tuple[i18n.Lang, ...] = ("nl", "en")


def _source() -> str:
    return "\n".join(p.read_text() for p in SOURCE.rglob("*.py"))


def written_actions() -> set[str]:
    """Audit actions the code writes as literals (`action="token.created"`, a tariff move)."""
    text = _source()
    found = set(re.findall(r'action="([a-z_]+(?:\.[a-z_]+)+)"', text))
    for pair in re.findall(r'action="([a-z_.]+)" if [^"]*? else "([a-z_.]+)"', text):
        found |= set(pair)
    found |= set(re.findall(r'_Move\(\s*"([a-z_]+\.[a-z_]+)"', text))
    return {a for a in found if not a.startswith(("http.", "stekker."))}


def written_event_kinds() -> set[str]:
    """Station event kinds the code writes as literals."""
    text = _source()
    kinds = set(re.findall(r'station_event\(\s*db,\s*[\w.]+,\s*"([a-z_]+)"', text))
    kinds |= set(re.findall(r'station_event\(\s*ctx,\s*[\w.]+,\s*"([a-z_]+)"', text))
    kinds |= set(re.findall(r'recorder\("([a-z_]+)"', text))
    kinds |= set(re.findall(r'station_status\([^)]*"([a-z_]+_status)"', text))
    kinds |= set(re.findall(r'record_event\(\s*[\w.]+,\s*[\w.]+,\s*"([a-z_]+)"', text))
    for pair in re.findall(r'kind = "([a-z_]+)" if [^"]*? else "([a-z_]+)"', text):
        kinds |= set(pair)
    kinds |= set(re.findall(r'kind, detail = "([a-z_]+)"', text))
    return kinds


def test_the_source_is_read_for_codes() -> None:
    actions, kinds = written_actions(), written_event_kinds()
    assert {
        "session.remote_stop.requested",
        "tariff.approved",
        "location.retired",
        "token.created",
    } <= actions
    assert {"connected", "boot", "local_list_sync", "security_event", "diagnostics_status"} <= kinds
    assert {"connection_replaced", "storage_budget_exceeded", "disconnected"} <= kinds


@pytest.mark.parametrize("lang", LANGS)
def test_every_audit_action_the_code_writes_has_words(lang: i18n.Lang) -> None:
    unworded = sorted(a for a in written_actions() if words.action(lang, a) == a)
    assert unworded == []


@pytest.mark.parametrize("lang", LANGS)
def test_dynamic_actions_are_worded_from_their_parts(lang: i18n.Lang) -> None:
    nl = lang == "nl"
    assert words.action(lang, "session.remote_stop.accepted") == (
        "stoppen op afstand: geaccepteerd" if nl else "remote stop: accepted"
    )
    assert words.action(lang, "session.remote_start.failed") == (
        "starten op afstand: mislukt" if nl else "remote start: failed"
    )
    assert words.action(lang, "token.blocked") == ("laadpas geblokkeerd" if nl else "token blocked")
    unlock = words.action(lang, "station.function.unlock_connector")
    assert unlock.startswith("functie op afstand: " if nl else "remote function: ") and "_" not in unlock
    assert words.action(lang, "station.function.reset.failed").endswith(": mislukt" if nl else ": failed")
    assert "_" not in words.action(lang, "helpdesk.stop_release.wait_for_stop")


@pytest.mark.parametrize("lang", LANGS)
def test_every_station_event_the_code_writes_has_words(lang: i18n.Lang) -> None:
    missing = sorted(k for k in written_event_kinds() if f"w_ev_{k}" not in i18n.CATALOGUE)
    assert missing == []
    assert words.timeline_text(lang, "event", "event", {"kind": "boot", "status": "Accepted"}, "x") == (
        "opgestart, aanmelding geaccepteerd" if lang == "nl" else "booted, registration accepted"
    )


def test_every_stop_reason_and_card_check_ocpp_defines_has_words() -> None:
    reasons = {r.value for r in v16.Reason} | {r.value for r in v201.ReasonEnumType}
    reasons |= {SUPERSEDED, *(c.value for c in ClosedBecause)}
    checks = {s.value for s in v16.AuthorizationStatus} | {s.value for s in v201.AuthorizationStatusEnumType}
    for lang in LANGS:
        assert sorted(r for r in reasons if words.stop_reason(lang, r) == r) == []
        assert sorted(c for c in checks if words.authorization(lang, c) == c) == []
    assert words.stop_reason("nl", "Local") == "aan de laadpaal"
    assert (
        words.timeline_text(
            "nl",
            "session_stopped",
            "session",
            {"session_id": 9, "stop_reason": "Local", "energy_wh": 350},
            "x",
        )
        == "laadsessie 9 gestopt (aan de laadpaal, 0,35 kWh)"
    )
    assert (
        words.timeline_text(
            "en",
            "session_stopped",
            "session",
            {"session_id": 9, "stop_reason": "Remote", "energy_wh": 350},
            "x",
        )
        == "session 9 stopped (remotely, 0,35 kWh)"
    )
    assert words.stop_reason("en", None) == "no reason given"


def test_every_note_of_the_stop_and_release_has_words_with_the_same_values() -> None:
    for code, english in stop_release._ENGLISH.items():
        key = f"w_hd_{code}"
        assert key in i18n.CATALOGUE, key
        names = {f for _, f, _, _ in string.Formatter().parse(english) if f}
        values: dict[str, object] = dict.fromkeys(names, "7")
        if "how" in names:
            values["how"] = stop_release.Note("how_unlocked")
        note = stop_release.Note(code, values)
        for lang in LANGS:
            said = words.note(lang, note)
            assert "{" not in said and said, (code, lang)
    released = stop_release.Note(
        "outcome_released", {"how": stop_release.Note("how_after_reset", {"kind": "soft"})}
    )
    assert released.text == "Released: released after a soft reset. The driver can take the cable out."
    assert "zachte herstart" in words.note("nl", released)


def test_each_worded_text_has_both_languages_with_the_same_placeholders() -> None:
    from stekker.web import texts_events

    for key, (dutch, english) in texts_events.TEXTS.items():
        assert dutch.strip() and english.strip(), key
        nl_names = {f for _, f, _, _ in string.Formatter().parse(dutch) if f}
        en_names = {f for _, f, _, _ in string.Formatter().parse(english) if f}
        assert nl_names == en_names, key


def test_every_export_column_is_described_in_dutch() -> None:
    from stekker.export.records import KINDS
    from stekker.web.texts_export import DUTCH

    assert set(DUTCH) == set(KINDS)
    for name, kind in KINDS.items():
        assert set(DUTCH[name][1]) == {c.name for c in kind.columns}, name
        for column in kind.columns:
            dutch, english = i18n.CATALOGUE[f"w_exp_{name}_{column.name}"]
            assert english == column.description and dutch != english, (name, column.name)


def test_numbers_in_words_are_written_the_dutch_way() -> None:
    assert words.energy_text(350) == "0,35 kWh"
    assert words.energy_text(1_234_567) == "1.234,57 kWh"
    assert words.dimension_value("nl", "ENERGY", "0.005") == "0,005 kWh"
    assert words.dimension_value("en", "PARKING_TIME", "0.25") == "0,25 h"
    assert words.dimension_value("nl", "ENERGY", "not a number") == "not a number"
    assert words.dimension("nl", "PARKING_TIME") == "parkeertijd"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_unknown_and_hostile_codes_show_as_stored_and_escaped(server: Stekker) -> None:
    """A code nobody worded (or planted markup) is shown as stored, escaped, and the page works."""
    hostile = '<script>alert("x")</script>'
    await users.create_user(server.ctx, "test", "anne", PASSWORD, Role.ADMIN)

    async def plant(db: AsyncSession) -> None:
        audit(
            db,
            actor=hostile,
            action=f"station.{hostile}.failed",
            object_type=hostile,
            object_id=hostile,
            at=server.ctx.now(),
            result=hostile,
        )

    await server.ctx.write(plant)
    async with httpx.AsyncClient(base_url=base_url(server), timeout=30) as web:
        assert (await http_login(web, "anne")).status_code == 303
        for lang in LANGS:
            page = await web.get("/console/audit", params={"lang": lang})
            assert page.status_code == 200
            assert "<script>alert" not in page.text
            assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
        bad = await web.get("/console/audit", params={"action": "x" * 101})
        assert bad.status_code == 400


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_job_stations_failure_says_its_kind_in_words_and_keeps_the_technical_text_apart(
    server: Stekker,
) -> None:
    """A station that stayed offline past the job's expiry: its state in words, the runner's own
    (English) explanation folded away as technical details, marked as not to be translated."""
    from stekker.services import inventory, jobs
    from stekker.services.selection import Selection
    from tests.observe import eventually

    await users.create_user(server.ctx, "test", "anne", PASSWORD, Role.ADMIN)
    await inventory.register_station(
        server.ctx, "test", inventory.StationInput("GONE1", password="gone-station-secret-1")
    )
    request = jobs.JobRequest(
        "get_local_list_version", {}, Selection(station_ids=("GONE1",)), offline_expiry_seconds=0
    )
    job_id = await jobs.create_job(server.ctx, "user:anne", request)

    async def done() -> bool:
        return (await jobs.get_job(server.ctx, job_id)).state == "completed"

    await eventually(done)
    async with httpx.AsyncClient(base_url=base_url(server), timeout=30) as web:
        assert (await http_login(web, "anne")).status_code == 303
        page = await web.get(f"/console/jobs/{job_id}")
        assert page.status_code == 200
        row = page.text.split('<tr data-station="GONE1">', 1)[1].split("</tr>", 1)[0]
        assert "Verlopen (bleef offline)" in row
        assert "<summary>technische details</summary>" in row
        assert '<span translate="no">offline until the job&#39;s expiry</span>' in row
        english = await web.get(f"/console/jobs/{job_id}", params={"lang": "en"})
        assert "<summary>technical details</summary>" in english.text
