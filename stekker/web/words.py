"""Stored codes said in the reader's words: why a session stopped, what a station answered,
what an audit entry records, what a CDR's charging period counts, what happened at a station.

The database and the API keep codes (language-neutral, what integrators script against); the
console turns them into words here, with the texts of `texts_events`. A code this module does
not know is shown as stored, so a new one is visible (and the language test finds it) rather
than hidden.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stekker.web import i18n
from stekker.web.format import format_decimal
from stekker.web.i18n import Lang


def _known(key: str) -> bool:
    return key in i18n.CATALOGUE


def _say(lang: Lang, key: str, fallback: str, **values: object) -> str:
    return i18n.translate(lang, key, **values) if _known(key) else fallback


def energy_text(wh: int | None) -> str:
    """Energy in kWh with two decimals, the Dutch way in both languages (`0,35 kWh`), as
    `format.format_energy` writes numbers."""
    return "" if wh is None else f"{format_decimal(Decimal(wh) / 1000, 2)} kWh"


def status_word(lang: Lang, status: str | None) -> str:
    """An OCPP connector or station status ("Beschikbaar"); an unknown one as sent."""
    if not status:
        return i18n.translate(lang, "status_unknown")
    return _say(lang, f"status_{status}", status)


def stop_reason(lang: Lang, reason: str | None) -> str:
    """Why a session stopped ("aan de laadpaal" for Local, "op afstand" for Remote)."""
    if not reason:
        return i18n.translate(lang, "w_reason_none")
    return _say(lang, f"w_reason_{reason}", reason)


def answer(lang: Lang, status: str | None) -> str:
    """A station's answer to a command (Accepted, Unlocked, NotSupported...)."""
    if not status:
        return ""
    return _say(lang, f"w_answer_{status}", status)


def authorization(lang: Lang, status: str | None) -> str:
    """How a card was checked (Accepted, Blocked, ConcurrentTx...)."""
    if not status:
        return ""
    return _say(lang, f"w_auth_{status}", status)


def session_status(lang: Lang, status: str | None) -> str:
    return _say(lang, f"w_session_{status}", status or "")


def dimension(lang: Lang, kind: str) -> str:
    """What a CDR charging period counts (ENERGY → "energie")."""
    return _say(lang, f"w_dim_{kind}", kind)


def dimension_value(lang: Lang, kind: str, volume: Any) -> str:
    """The amount of a dimension with its unit, numbers the Dutch way (`0,005 kWh`, `0,25 uur`)."""
    try:
        number = Decimal(str(volume)).quantize(Decimal("0.0001")).normalize()
    except ArithmeticError:
        return str(volume)
    exponent = number.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    shown = format_decimal(number, places)
    unit = _say(lang, f"w_unit_{kind}", "")
    return f"{shown} {unit}".strip()


def token_type(lang: Lang, kind: str) -> str:
    return _say(lang, f"w_token_type_{kind}", kind)


def reading_kind(lang: Lang, kind: str) -> str:
    """A meter reading's place in a session: start, reading, stop."""
    return _say(lang, f"w_reading_{kind}", kind)


# ---- the audit log --------------------------------------------------------------------------


def actor(lang: Lang, who: str) -> str:
    """`system` and `demo` in words; a person (`user:anne`) or partner (`ocpi:ABC`) by name."""
    if _known(f"w_actor_{who}"):
        return i18n.translate(lang, f"w_actor_{who}")
    return who


def subject(lang: Lang, object_type: str, object_id: str) -> str:
    """What an entry is about: "laadpaal CP042", "laadsessie 9"."""
    return _say(lang, f"w_object_{object_type}", f"{object_type} {object_id}", id=object_id)


def result(lang: Lang, outcome: str) -> str:
    """How it went: "gelukt", a station's answer, or a failure's kind."""
    for key in (f"w_result_{outcome}", f"w_answer_{outcome}"):
        if _known(key):
            return i18n.translate(lang, key)
    return outcome


def _function(lang: Lang, name: str) -> str:
    return _say(lang, f"fn_{name}", name)


def action(lang: Lang, code: str) -> str:
    """An audit action in words: `session.remote_stop.requested` → "stoppen op afstand
    gevraagd"; the dynamic tails (`.failed`, the station's answer in lower case) after the
    known head; a function's label for `station.function.<name>`."""
    if _known(f"w_act_{code}"):
        return i18n.translate(lang, f"w_act_{code}")
    head, _, tail = code.rpartition(".")
    if head.startswith("station.function."):
        name = head.removeprefix("station.function.")
        said = i18n.translate(lang, "w_act_station.function", function=_function(lang, name))
        return i18n.translate(lang, "w_act_tail_failed", action=said) if tail == "failed" else said
    if code.startswith("station.function."):
        return i18n.translate(lang, "w_act_station.function", function=_function(lang, tail))
    if head == "helpdesk.stop_release":
        return i18n.translate(
            lang, "w_act_helpdesk.stop_release", step=_say(lang, f"step_{tail}", tail).lower()
        )
    if head and _known(f"w_act_{head}"):
        said = i18n.translate(lang, f"w_act_{head}")
        if tail == "failed":
            return i18n.translate(lang, "w_act_tail_failed", action=said)
        station_answer = next((a for a in _ANSWERS if a.lower() == tail), None)
        if station_answer is not None:
            return i18n.translate(lang, "w_act_tail_answer", action=said, answer=answer(lang, station_answer))
    return code


#: the answers a `session.remote_*.<answer>` action may end in (stored lower case)
_ANSWERS = ("Accepted", "Rejected", "NotSupported", "Unknown", "Failed")


# ---- a station's timeline ---------------------------------------------------------------------


def _where(lang: Lang, evse: Any, connector: Any) -> str:
    if not evse:
        return i18n.translate(lang, "w_where_station")
    if connector and connector != 1:
        return i18n.translate(lang, "w_where_connector", evse=evse, connector=connector)
    return i18n.translate(lang, "w_where_evse", evse=evse)


def _event(lang: Lang, kind: str, d: dict[str, Any]) -> str:
    key = f"w_ev_{kind}"
    if kind == "disconnected":
        cause = d.get("cause")
        return i18n.translate(lang, key, cause=_say(lang, f"w_cause_{cause}", str(cause or "?")))
    if kind == "boot":
        status = answer(lang, d.get("status")) or "?"
        if d.get("reason"):
            return i18n.translate(lang, "w_ev_boot_reason", reason=d["reason"], status=status)
        return i18n.translate(lang, key, status=status)
    if not _known(key):
        words = kind.replace("_", " ")
        return f"{words}: {d['reason']}" if d.get("reason") else words
    values = {
        "protocol": d.get("protocol", "?"),
        "missed": d.get("missed", "?"),
        "cdr": d.get("cdr_uid", ""),
        "session": d.get("session_id", ""),
        "transaction": d.get("transaction_id", ""),
        "status": answer(lang, d.get("status")) or status_word(lang, d.get("status")),
        "parts": d.get("parts", "?"),
        "type": d.get("type", "?"),
    }
    return i18n.translate(lang, key, **values)


def timeline_text(lang: Lang, what: str, kind: str, detail: dict[str, Any], fallback: str) -> str:
    """One line of a station's timeline (`stekker.services.helpdesk.TimelineItem`) in words,
    from its code (`what`) and detail; `fallback` (the API's English summary) for a line of a
    kind this module does not know."""
    d = detail
    if what == "status":
        where = _where(lang, d.get("evse_number"), d.get("connector_number"))
        status = status_word(lang, d.get("status"))
        error = d.get("error_code")
        if error and error != "NoError":
            return i18n.translate(lang, "w_tl_status_error", where=where, status=status, error=error)
        return i18n.translate(lang, "w_tl_status", where=where, status=status)
    if what == "session_started":
        where = _where(lang, d.get("evse_number"), d.get("connector_number"))
        return i18n.translate(
            lang, "w_tl_session_started", id=d.get("session_id"), where=where, card=d.get("token_uid")
        )
    if what == "session_stopped":
        reason = stop_reason(lang, d.get("stop_reason"))
        if d.get("energy_wh") is None:
            return i18n.translate(
                lang, "w_tl_session_stopped_no_energy", id=d.get("session_id"), reason=reason
            )
        energy = energy_text(d["energy_wh"])
        return i18n.translate(
            lang, "w_tl_session_stopped", id=d.get("session_id"), reason=reason, energy=energy
        )
    if what == "event":
        return _event(lang, str(d.get("kind", kind)), d)
    if what == "action":
        values = {
            "actor": actor(lang, str(d.get("actor", ""))),
            "action": action(lang, str(d.get("action", ""))),
            "result": result(lang, str(d.get("result", ""))),
        }
        if d.get("object_type") not in (None, "station"):
            subject_text = subject(lang, str(d["object_type"]), str(d.get("object_id", "")))
            return i18n.translate(lang, "w_tl_action_on", object=subject_text, **values)
        return i18n.translate(lang, "w_tl_action", **values)
    if what == "message":
        frame = _say(lang, f"w_frame_{d.get('message_type')}", str(d.get("message_type")))
        key = "w_tl_message_in" if d.get("direction") == "in" else "w_tl_message_out"
        return i18n.translate(lang, key, action=d.get("action") or "?", what=frame)
    return fallback


# ---- the helpdesk's stop and release ------------------------------------------------------------


def _note_value(lang: Lang, name: str, value: Any) -> Any:
    if hasattr(value, "code") and hasattr(value, "values"):  # a note inside a note
        return note(lang, value)
    if name == "answer":
        return answer(lang, value)
    if name == "status":
        return status_word(lang, value)
    if name == "kind":
        return _say(lang, f"w_hd_kind_{value}", str(value))
    if name == "seconds":
        return str(value).replace(".", ",")  # numbers the Dutch way in both languages
    return value


def note(lang: Lang, found: Any) -> str:
    """What a step of the stop and release found, or how it ended
    (`stekker.services.stop_release.Note`), in the reader's words."""
    if found is None:
        return ""
    key = f"w_hd_{found.code}"
    if not _known(key):
        return str(found.text)
    values = {name: _note_value(lang, name, value) for name, value in found.values.items()}
    return i18n.translate(lang, key, **values)


def notes(lang: Lang, found: list[Any]) -> str:
    return "; ".join(note(lang, n) for n in found)


# ---- a station's configuration --------------------------------------------------------------------


def mutability(lang: Lang, code: str | None) -> str:
    """ReadOnly, ReadWrite, WriteOnly (OCPP) in words."""
    return "" if not code else _say(lang, f"w_mut_{code}", code)


def variable_source(lang: Lang, code: str) -> str:
    """Where a configuration value we hold came from: the station's report, a read, our change."""
    return _say(lang, f"w_src_{code}", code)


# ---- bulk jobs, the helpdesk's search, tariffs' reference sessions --------------------------------


def function(lang: Lang, name: str) -> str:
    """A remote function by its label (the bulk jobs' own, else the functions page's)."""
    for key in (f"adm_fn_{name}", f"fn_{name}"):
        if _known(key):
            return i18n.translate(lang, key)
    return name


def selection(lang: Lang, criterion: str) -> str:
    """A criterion of a bulk job's selection (`station_ids`, `location_id`...)."""
    return _say(lang, f"w_sel_{criterion}", criterion)


def matched_by(lang: Lang, how: str) -> str:
    """How the helpdesk's search found a session ("EVSE id on the sticker")."""
    return _say(lang, f"w_match_{how.replace(' ', '_')}", how)


def reference_name(lang: Lang, name: str) -> str:
    """A reference session's name: the built-in ones in words, an operator's own as given."""
    return _say(lang, f"w_ref_{name}", name)


_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


def reference_description(lang: Lang, ref: dict[str, Any]) -> str:
    """ "dinsdag 12:00: 5 kWh in 30 min, daarna 90 min geparkeerd" from a stored reference
    session (`stekker.domain.price_caps.ReferenceSession.to_json`)."""
    day = str(ref.get("day", ""))
    day_text = i18n.translate(lang, f"weekday_{_DAYS.index(day) + 1}") if day in _DAYS else day
    try:
        kwh = format_decimal(Decimal(str(ref.get("energy_kwh"))), 2).removesuffix(",00")
    except ArithmeticError:
        kwh = str(ref.get("energy_kwh"))
    values = {
        "day": day_text,
        "start": ref.get("start", ""),
        "kwh": kwh,
        "minutes": ref.get("charging_minutes", ""),
    }
    if ref.get("parking_minutes"):
        return i18n.translate(lang, "w_ref_parked", parked=ref["parking_minutes"], **values)
    return i18n.translate(lang, "w_ref_charging", **values)
