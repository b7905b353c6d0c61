"""Console texts for sessions, CDRs and tariffs
(Dutch, English): merged into `i18n.CATALOGUE`."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    # sessions
    "sessions_title": ("Laadsessies", "Sessions"),
    "rec_station_hint": ("(een deel van) het laadpaal-id", "(part of) the station id"),
    "rec_station_exact_hint": ("het volledige laadpaal-id", "the full station id"),
    "rec_from": ("Van (datum)", "From (date)"),
    "rec_to": ("Tot en met (datum)", "Up to and including (date)"),
    "rec_session_active": ("Bezig", "Active"),
    "rec_session_completed": ("Afgerond", "Completed"),
    "rec_sessions_count": ("{count} laadsessies", "{count} sessions"),
    "rec_no_sessions": ("Geen laadsessies gevonden.", "No sessions found."),
    "rec_token": ("Laadpas", "Token"),
    "rec_session_title": ("Laadsessie {id}", "Session {id}"),
    "rec_evse": ("Laadpunt", "EVSE"),
    "rec_auth": ("Autorisatie", "Authorization"),
    "rec_offline": ("(Deels) offline geladen", "Ran (partly) offline"),
    "rec_chart_heading": ("Vermogen en energie", "Power and energy"),
    "rec_chart_title": (
        "Vermogen en geladen energie van laadsessie {id}",
        "Power and energy charged in session {id}",
    ),
    "rec_chart_desc": (
        "Grafiek met {count} meetpunten van {start} tot {end}. De doorgetrokken lijn is het "
        "vermogen in kW (as links, tot {power} kW), de gestippelde lijn de geladen energie in "
        "kWh (as rechts); in totaal {energy}. De tabel hieronder geeft dezelfde cijfers.",
        "Chart of {count} readings from {start} to {end}. The solid line is the power in kW "
        "(left axis, up to {power} kW), the dashed line the energy charged in kWh (right axis); "
        "{energy} in total. The table below gives the same numbers.",
    ),
    "rec_chart_legend": (
        "Doorgetrokken blauwe lijn: vermogen (kW, as links). "
        "Gestippelde rode lijn: geladen energie (kWh, as rechts).",
        "Solid blue line: power (kW, left axis). Dashed red line: energy charged (kWh, right axis).",
    ),
    "rec_chart_table": ("De meetwaarden als tabel", "The readings as a table"),
    "rec_axis_power": ("kW", "kW"),
    "rec_axis_energy": ("kWh", "kWh"),
    "rec_power_kw": ("Vermogen (kW)", "Power (kW)"),
    "rec_energy_kwh": ("Energie (kWh)", "Energy (kWh)"),
    "rec_no_meter_values": (
        "Deze laadsessie heeft (nog) geen meetwaarden.",
        "This session has no meter values (yet).",
    ),
    "rec_session_cdrs": ("Afrekeningen (CDR's)", "Charge detail records"),
    "rec_cdr_after_stop": (
        "De afrekening volgt als de laadsessie is afgelopen.",
        "The CDR follows when the session has ended.",
    ),
    "session_not_found": ("Deze laadsessie bestaat niet.", "There is no such session."),
    # CDRs
    "cdrs_title": ("Afrekeningen (CDR's)", "Charge detail records"),
    "rec_cdr": ("Afrekening", "CDR"),
    "rec_cdr_title": ("Afrekening {id}", "CDR {id}"),
    "rec_kind": ("Soort", "Kind"),
    "rec_kind_charge": ("Afrekening", "Charge"),
    "rec_kind_credit": ("Creditering", "Credit"),
    "rec_end": ("Einde", "End"),
    "rec_capped_by": ("Begrensd door", "Capped by"),
    "rec_not_capped": ("niet begrensd", "not capped"),
    "rec_capped_cap_per_kwh": (
        "maximumprijs per kWh (gemeente)",
        "maximum price per kWh (municipality)",
    ),
    "rec_capped_cap_per_session": (
        "maximumprijs per sessie (gemeente)",
        "maximum price per session (municipality)",
    ),
    "rec_capped_cap_parking": (
        "maximumprijs parkeren (gemeente)",
        "maximum parking price (municipality)",
    ),
    # rounding the lines to cents would have lifted the total just above the cap
    "rec_capped_cap": ("maximumprijs (gemeente)", "maximum price (municipality)"),
    "rec_capped_max_price": ("maximumprijs van het tarief", "the tariff's maximum price"),
    "rec_capped_min_price": ("minimumprijs van het tarief", "the tariff's minimum price"),
    "rec_corrections": ("Correcties", "Corrections"),
    "rec_credits": ("crediteert", "credits"),
    "rec_replaces": ("vervangt", "replaces"),
    "rec_credited_by": ("gecrediteerd door", "credited by"),
    "rec_no_cdrs": ("Geen afrekeningen gevonden.", "No CDRs found."),
    "rec_cdr_period_hint": (
        "De periode gaat over het einde van de laadsessie.",
        "The period is about when the session ended.",
    ),
    "rec_sequence": ("nummer {n} van deze sessie", "number {n} of this session"),
    "rec_charging_time": ("Laadtijd", "Charging time"),
    "rec_parking_time": ("Parkeertijd", "Parking time"),
    "rec_hours": ("uur", "hours"),
    "rec_tariff": ("Tarief", "Tariff"),
    "rec_version_n": ("versie {n}", "version {n}"),
    "rec_no_tariff": ("geen tarief: niet in rekening gebracht", "no tariff: not charged"),
    "rec_reason": ("Reden", "Reason"),
    "rec_periods": ("Laadperiodes", "Charging periods"),
    "rec_dimensions": ("Wat en hoeveel", "What and how much"),
    "rec_readings": ("Meterstanden", "Meter readings"),
    "rec_reading": ("Meterstand", "Reading"),
    "rec_reading_kind": ("Soort", "Kind"),
    "rec_comment": ("Toelichting", "Comment"),
    "cdr_not_found": ("Deze afrekening bestaat niet.", "There is no such CDR."),
    # tariffs
    "tariffs_title": ("Tarieven", "Tariffs"),
    "tariffs_intro": (
        "De exploitant stelt tarieven voor; de gemeente keurt ze goed of af. "
        "Een goedgekeurde versie gaat in op het gekozen moment.",
        "The operator proposes tariffs; the municipality approves or rejects them. "
        "An approved version takes effect at its chosen moment.",
    ),
    "tariffs_none": ("Er zijn nog geen tarieven.", "There are no tariffs yet."),
    "tariff_not_found": ("Dit tarief of deze versie bestaat niet.", "There is no such tariff or version."),
    "tariff_new": ("Nieuw tarief", "New tariff"),
    "tariff_name": ("Naam", "Name"),
    "tariff_code": ("Code", "Code"),
    "tariff_code_hint": (
        "letters, cijfers, punt, streepje of liggend streepje; verandert nooit",
        "letters, digits, dot, dash or underscore; never changes",
    ),
    "tariff_currency": ("Valuta", "Currency"),
    "tariff_active_version": ("Geldende versie", "Version in effect"),
    "tariff_none_active": ("nog geen", "none yet"),
    "tariff_retired": ("beëindigd", "retired"),
    "tariff_versions": ("Versies", "Versions"),
    "tariff_version": ("Versie", "Version"),
    "tariff_from": ("vanaf {date}", "from {date}"),
    "tariff_title": ("Tarief {name}", "Tariff {name}"),
    "tariff_back": ("Terug naar de tarieven", "Back to the tariffs"),
    "tariff_back_one": ("Terug naar tarief {name}", "Back to tariff {name}"),
    "tariff_edit_draft": ("Concept bewerken", "Edit the draft"),
    "tariff_new_version": ("Nieuwe versie voorstellen", "Propose a new version"),
    "tariff_effective_from": ("Gaat in op", "Takes effect at"),
    "tariff_effective_hint": (
        "datum en tijd (Nederlandse tijd), in de toekomst; nodig om in te dienen",
        "date and time (Dutch time), in the future; needed to submit",
    ),
    "tariff_no_moment": ("nog niet gekozen", "not chosen yet"),
    "tariff_note": ("Toelichting voor de gemeente", "Note for the municipality"),
    "tariff_note_hint": ("waarom deze wijziging", "why this change"),
    "tariff_ends": ("beëindigt het tarief", "retires the tariff"),
    "tariff_history": ("Geschiedenis", "History"),
    "tariff_step": ("Stap", "Step"),
    "tariff_who": ("Door", "By"),
    "tariff_draft_title": ("Concept voor tarief {name}", "Draft for tariff {name}"),
    "tariff_complex": (
        "Deze versie heeft prijzen per tijdvak of meerdere onderdelen. Dit formulier maakt er één "
        "eenvoudige prijs van; opslaan vervangt het concept.",
        "This version has time-of-day prices or several elements. This form makes one simple "
        "price of it; saving replaces the draft.",
    ),
    "tariff_form_intro": (
        "Vul de prijzen exclusief btw in; laat een prijs leeg als die niet geldt. "
        "Opslaan maakt een concept; niemand betaalt het voordat de gemeente het goedkeurt.",
        "Enter prices excluding VAT; leave a price empty if it does not apply. Saving makes a "
        "draft; nobody pays it before the municipality approves it.",
    ),
    "tariff_prices_legend": ("Prijzen", "Prices"),
    "tariff_prices_hint": (
        "in euro, exclusief btw, bijvoorbeeld 0,35",
        "in euros, excluding VAT, for example 0.35",
    ),
    "tariff_price_energy": ("Energie per kWh", "Energy per kWh"),
    "tariff_price_time": ("Laadtijd per uur", "Charging time per hour"),
    "tariff_price_parking": ("Parkeren na het laden, per uur", "Parking after charging, per hour"),
    "tariff_price_start": ("Starttarief per sessie", "Start fee per session"),
    "tariff_vat": ("Btw (%)", "VAT (%)"),
    "tariff_grace": ("Gratis parkeertijd na het laden (minuten)", "Free parking after charging (minutes)"),
    "tariff_grace_hint": ("0 tot 1440", "0 to 1440"),
    "tariff_where": ("Waar en voor wie", "Where and for whom"),
    "tariff_scope": ("Geldt voor", "Applies to"),
    "tariff_scope_all": ("alle laadpalen", "every station"),
    "tariff_scope_location": ("locatie {name}", "location {name}"),
    "tariff_scope_evse": ("één laadpunt (hieronder)", "one EVSE (below)"),
    "tariff_location_n": ("locatie {n}", "location {n}"),
    "tariff_evse_n": ("laadpunt {id}", "EVSE {id}"),
    "tariff_evse_uid": ("Laadpunt-id", "EVSE id"),
    "tariff_evse_hint": (
        "alleen als het tarief voor één laadpunt geldt, bijvoorbeeld NL*STK*E0001*1",
        "only when the tariff is for one EVSE, for example NL*STK*E0001*1",
    ),
    "tariff_audience": ("Klanten", "Customers"),
    "tariff_audience_all": ("iedereen", "everybody"),
    "tariff_audience_adhoc": ("ad-hoc (zonder abonnement)", "ad hoc (no contract)"),
    "tariff_audience_contract": ("met een abonnement", "with a contract"),
    "tariff_parties": ("Aanbieders (eMSP's)", "Providers (eMSPs)"),
    "tariff_parties_hint": (
        "alleen bij 'met een abonnement', bijvoorbeeld NL-ABC, NL-XYZ",
        "only for 'with a contract', for example NL-ABC, NL-XYZ",
    ),
    "tariff_alt_nl": ("Prijs in woorden (Nederlands, optioneel)", "Price in words (Dutch, optional)"),
    "tariff_alt_en": ("Prijs in woorden (Engels, optioneel)", "Price in words (English, optional)"),
    "tariff_save_draft": ("Concept opslaan", "Save the draft"),
    "tariff_version_title": ("{name}, versie {n}", "{name}, version {n}"),
    "tariff_restrictions": ("Wanneer", "When"),
    "tariff_comparison": ("Vergelijking op de referentiesessies", "Comparison on the reference sessions"),
    "tariff_comparison_caption": (
        "Wat een bestuurder betaalt, inclusief btw: oud en nieuw naast elkaar",
        "What a driver pays, incl. VAT: old and new side by side",
    ),
    "tariff_compared_with": ("Vergeleken met versie {n}.", "Compared with version {n}."),
    "tariff_compared_none": (
        "Er is geen eerdere goedgekeurde versie om mee te vergelijken.",
        "There is no earlier approved version to compare with.",
    ),
    "tariff_cap_applies": (
        "De maximumprijs van de gemeente staat in de laatste kolom.",
        "The municipality's maximum price is in the last column.",
    ),
    "tariff_reference": ("Referentiesessie", "Reference session"),
    "tariff_old": ("Oud", "Old"),
    "tariff_new_price": ("Nieuw", "New"),
    "tariff_difference": ("Verschil", "Difference"),
    "tariff_per_kwh": ("Nieuw per kWh", "New per kWh"),
    "tariff_cap_limit": ("Maximum", "Maximum"),
    "tariff_no_old": ("geen", "none"),
    "tariff_no_new": ("beëindigd", "retired"),
    "tariff_over_cap": ("boven het maximum", "over the maximum"),
    "tariff_over_cap_warning": (
        "Let op: dit voorstel kost op {count} referentiesessie(s) meer dan de maximumprijs. "
        "Afrekeningen worden begrensd; goedkeuren kan niet.",
        "Note: this proposal costs more than the maximum price on {count} reference session(s). "
        "Bills are capped; it cannot be approved.",
    ),
    "tariff_comparison_hint": (
        "Bedragen inclusief btw. Een referentiesessie is een typische laadsessie die de gemeente vastlegt. "
        "Parkeren (het parkeertarief) is de tijd dat de auto aangesloten is en niet laadt nadat hij "
        "geladen heeft: het moment tussen de start en het laden kost niets, en een auto die na de "
        "startmarge (standaard 5 minuten) nog niet laadt, parkeert vanaf dan.",
        "Amounts include VAT. A reference session is a typical session the municipality defines. "
        "Parking (the idle fee) is time connected and not charging after the car charged: the "
        "moment between the start and charging costs nothing, and a car that has not started "
        "charging after the start grace (5 minutes by default) parks from then on.",
    ),
    "tariff_repriced": (
        "De echte laadsessies van de laatste {days} dagen ({count}) kostten {old}; "
        "met dit voorstel {new} (verschil {diff}).",
        "The real sessions of the last {days} days ({count}) cost {old}; with this proposal {new} "
        "(difference {diff}).",
    ),
    "tariff_reprice_link": (
        "Ook de echte laadsessies van de laatste 30 dagen herberekenen",
        "Also reprice the real sessions of the last 30 days",
    ),
    "tariff_operator_actions": ("Voor de exploitant", "For the operator"),
    "tariff_submit": ("Indienen bij de gemeente", "Submit to the municipality"),
    "tariff_submit_hint": (
        "Na indienen kan het concept niet meer veranderen; intrekken kan wel.",
        "Once submitted the draft cannot change; withdrawing it can.",
    ),
    "tariff_withdraw": ("Intrekken", "Withdraw"),
    "tariff_withdraw_comment": ("Reden van intrekken (optioneel)", "Why withdraw (optional)"),
    "tariff_decision": ("Besluit van de gemeente", "The municipality's decision"),
    "tariff_approve": ("Goedkeuren", "Approve"),
    "tariff_approve_comment": ("Toelichting bij goedkeuren (optioneel)", "Comment on approval (optional)"),
    "tariff_reject": ("Afkeuren", "Reject"),
    "tariff_reject_comment": ("Reden van afkeuren (verplicht)", "Why reject (required)"),
    "tariff_reject_hint": ("De exploitant leest deze reden.", "The operator reads this reason."),
    "tariff_done_submit": ("Ingediend bij de gemeente.", "Submitted to the municipality."),
    "tariff_done_withdraw": ("Ingetrokken.", "Withdrawn."),
    "tariff_done_approve": (
        "Goedgekeurd: de versie gaat in op het gekozen moment.",
        "Approved: the version takes effect at its chosen moment.",
    ),
    "tariff_done_reject": ("Afgekeurd; de exploitant krijgt bericht.", "Rejected; the operator is told."),
    "tstatus_draft": ("concept", "draft"),
    "tstatus_submitted": ("ingediend", "submitted"),
    "tstatus_rejected": ("afgekeurd", "rejected"),
    "tstatus_withdrawn": ("ingetrokken", "withdrawn"),
    "tstatus_scheduled": ("goedgekeurd, gaat nog in", "approved, takes effect later"),
    "tstatus_active": ("geldt nu", "in effect"),
    "tstatus_superseded": ("vervangen", "superseded"),
    "tdim_ENERGY": ("Energie per kWh", "Energy per kWh"),
    "tdim_TIME": ("Laadtijd per uur", "Charging time per hour"),
    "tdim_PARKING_TIME": ("Parkeertijd per uur", "Parking time per hour"),
    "tdim_FLAT": ("Starttarief", "Start fee"),
    "role_system": ("systeem", "system"),
    "err_no_price": ("Vul minstens één prijs in.", "Fill in at least one price."),
    "err_amount_energy": (
        "De energieprijs is geen geldig bedrag (0 tot 1000, hoogstens 4 decimalen).",
        "The energy price is not a valid amount (0 to 1000, at most 4 decimals).",
    ),
    "err_amount_time": (
        "De prijs per uur laden is geen geldig bedrag (0 tot 1000, hoogstens 4 decimalen).",
        "The price per hour of charging is not a valid amount (0 to 1000, at most 4 decimals).",
    ),
    "err_amount_parking": (
        "De parkeerprijs is geen geldig bedrag (0 tot 1000, hoogstens 4 decimalen).",
        "The parking price is not a valid amount (0 to 1000, at most 4 decimals).",
    ),
    "err_amount_start": (
        "Het starttarief is geen geldig bedrag (0 tot 1000, hoogstens 4 decimalen).",
        "The start fee is not a valid amount (0 to 1000, at most 4 decimals).",
    ),
    "err_amount_vat": (
        "De btw is geen percentage van 0 tot 100.",
        "The VAT is not a percentage from 0 to 100.",
    ),
    "err_amount_cap_kwh": (
        "Het maximum per kWh is geen geldig bedrag.",
        "The maximum per kWh is not a valid amount.",
    ),
    "err_amount_cap_session": (
        "Het maximum per sessie is geen geldig bedrag.",
        "The maximum per session is not a valid amount.",
    ),
    "err_amount_cap_parking": (
        "Het maximum voor parkeren is geen geldig bedrag.",
        "The maximum for parking is not a valid amount.",
    ),
    "err_grace": ("De gratis parkeertijd is 0 tot 1440 minuten.", "Free parking is 0 to 1440 minutes."),
    "err_scope": ("Kies waar het tarief geldt.", "Choose where the tariff applies."),
    "err_evse": ("Vul het laadpunt-id in.", "Fill in the EVSE id."),
    "err_audience": (
        "Kies voor welke klanten het tarief geldt.",
        "Choose which customers the tariff is for.",
    ),
    "err_alt_text": (
        "De prijs in woorden is hoogstens 500 tekens.",
        "The price in words is at most 500 characters.",
    ),
    "err_note": ("De toelichting is hoogstens 2000 tekens.", "The note is at most 2000 characters."),
    "err_effective_from": (
        "Het moment van ingaan is geen geldige datum en tijd.",
        "The moment it takes effect is not a valid date and time.",
    ),
    "err_reject_comment": (
        "Schrijf waarom u afkeurt: de exploitant moet weten wat er anders moet.",
        "Say why you reject it: the operator needs to know what to change.",
    ),
    "err_comment_long": (
        "De toelichting is hoogstens 2000 tekens.",
        "The comment is at most 2000 characters.",
    ),
    # the maximum price
    "cap_heading": ("Maximumprijs (gemeente)", "Maximum price (municipality)"),
    "cap_title": ("Maximumprijs instellen", "Set the maximum price"),
    "cap_per_kwh": ("Maximum per kWh", "Maximum per kWh"),
    "cap_per_session": ("Maximum per sessie", "Maximum per session"),
    "cap_parking": ("Maximum parkeren per uur", "Maximum parking per hour"),
    "cap_none": ("geen maximum", "no maximum"),
    "cap_since": ("Geldt sinds", "In force since"),
    "cap_not_set": (
        "De gemeente heeft geen maximumprijs ingesteld.",
        "The municipality has set no maximum price.",
    ),
    "cap_incl_vat_hint": ("Maximumprijzen zijn inclusief btw.", "Maximum prices include VAT."),
    "cap_upcoming": ("Vanaf {date}:", "From {date}:"),
    "cap_set_link": ("Maximumprijs instellen", "Set the maximum price"),
    "cap_new": ("Nieuwe maximumprijs", "New maximum price"),
    "cap_form_intro": (
        "Laat een veld leeg voor geen maximum. De oude maximumprijs blijft in de geschiedenis.",
        "Leave a field empty for no maximum. The old maximum price stays in the history.",
    ),
    "cap_from_hint": ("leeg: nu", "empty: now"),
    "cap_save": ("Maximumprijs opslaan", "Save the maximum price"),
    "cap_saved": ("De maximumprijs is opgeslagen.", "The maximum price is saved."),
}
