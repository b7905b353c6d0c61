"""Console texts for what each export holds (`stekker.export.records.KINDS`): the Dutch of every
kind's description and every column's meaning, merged into `i18n.CATALOGUE` with the English
the records module itself carries (one source for the English, which the API and CLI show).

Keys: `w_expkind_<kind>` and `w_exp_<kind>_<column>`; a column without Dutch here fails a test.
"""

from __future__ import annotations

from stekker.export.records import KINDS

_OUR_ROW = "Ons rijnummer."
_STATION = "De laadpaal."
_PARTNER = "De OCPI-partner van wie de laadpas was; leeg: een eigen of onbekende pas."
_TOKEN_ID = "Ons record van die laadpas, als we die kennen."

#: kind → (Dutch description, {column: Dutch meaning})
DUTCH: dict[str, tuple[str, dict[str, str]]] = {
    "sessions": (
        "Elke laadsessie, van begin tot einde (ook lopende). Periode: de start_time van de sessie.",
        {
            "id": "Ons sessienummer (het transactionId van OCPP 1.6 dat wij uitgaven).",
            "station_id": _STATION,
            "location_id": "De locatie waar de laadpaal nu staat.",
            "evse_number": "Het laadpunt op de laadpaal (1.6 connectorId, 2.0.1 evseId).",
            "connector_number": "De aansluiting van dat laadpunt.",
            "transaction_id": "Het transactienummer zoals de laadpaal het kent.",
            "token_uid": "De laadpas waarmee de bestuurder begon (idTag / idToken).",
            "token_id": _TOKEN_ID,
            "partner_id": _PARTNER,
            "id_token_type": "Soort idToken in 2.0.1 (ISO14443, eMAID, Central...).",
            "auth_status": "Ons besluit over de laadpas bij het begin (Accepted, Blocked...).",
            "status": "active (bezig) of completed (afgerond).",
            "start_time": "Wanneer het laden begon (tijd van de laadpaal, UTC).",
            "stop_time": "Wanneer het stopte; leeg zolang het loopt.",
            "meter_start_wh": "Meterstand bij het begin (Wh).",
            "meter_last_wh": "Laatst ontvangen meterstand (Wh).",
            "meter_stop_wh": "Meterstand bij het einde (Wh).",
            "energy_wh": "Geleverde energie: meter_stop_wh - meter_start_wh (Wh).",
            "stop_reason": "Waarom het stopte, zoals de laadpaal zei (EVDisconnected, Remote...).",
            "stop_token_uid": "De laadpas waarmee gestopt werd, als die er was.",
            "charging_state": "Laatst gemelde laadtoestand in 2.0.1 (Charging, SuspendedEV...).",
            "offline": "Of de laadpaal de sessie (deels) offline deed.",
            "reservation_id": "De gebruikte reservering, als die er was.",
            "remote_start_id": "Het starten op afstand dat tot deze sessie leidde, als dat zo was.",
            "energy_supplier": (
                "De energieleverancier van de bestuurder bij het begin, als de laadpas die noemde."
            ),
            "energy_contract_id": "Het contract van de bestuurder bij die leverancier.",
            "created_at": "Wanneer wij het vastlegden.",
            "updated_at": "Wanneer wij het voor het laatst wijzigden.",
        },
    ),
    "cdrs": (
        "Elke afrekening (CDR): de rekening van een afgelopen sessie, en de crediteringen en nieuwe "
        "afrekeningen van correcties. Periode: wanneer de afrekening gemaakt is (created_at), dus een "
        "latere correctie staat in de latere periode.",
        {
            "id": "Ons rijnummer van de afrekening.",
            "cdr_uid": "Het nummer van de afrekening zoals partners het zien, bijvoorbeeld CDR-42-1.",
            "session_id": "De laadsessie die ze afrekent.",
            "sequence": "1 voor de eerste afrekening van de sessie; correcties tellen door.",
            "kind": "charge (afrekening) of credit (creditering, vervalt credits_cdr_id).",
            "credits_cdr_id": "De afrekening die een creditering ongedaan maakt.",
            "replaces_cdr_id": "De afrekening die deze corrigeert.",
            "station_id": _STATION,
            "location_id": "De locatie ten tijde van de sessie.",
            "evse_uid": "Het laadpunt (eMI3-id, bijvoorbeeld NL*STK*E0001*1).",
            "token_uid": "De laadpas die laadde.",
            "party": "De eMSP van de bestuurder als OCPI-partij (NL-ABC); leeg: los betaald.",
            "partner_id": _PARTNER,
            "tariff_version_id": "De tariefversie waarmee geprijsd is.",
            "price_cap_id": "De maximumprijs van de gemeente die gold.",
            "currency": "Munteenheid van de bedragen (ISO 4217).",
            "start_time": "Begin van de sessie.",
            "end_time": "Einde van de sessie.",
            "total_energy_wh": "Afgerekende energie (Wh).",
            "total_time_s": "Duur van de sessie (s).",
            "total_parking_time_s": "Tijd aangesloten zonder te laden (s).",
            "total_cost_excl_vat": "Wat de bestuurder betaalt, excl. btw (negatief bij een creditering).",
            "total_cost_incl_vat": "Wat de bestuurder betaalt, incl. btw.",
            "capped_by": "De grens die het totaal veranderde (cap.per_kwh, max_price...), als die er was.",
            "energy_supplier": "De energieleverancier van de bestuurder, als die bekend is.",
            "energy_contract_id": "Het contract van de bestuurder bij die leverancier.",
            "reason": "Waarom een correctie of creditering gemaakt is.",
            "created_by": "Wie haar maakte (system, of de exploitant die corrigeerde).",
            "created_at": "Wanneer ze gemaakt is.",
            "ocpi_cdr": "Het OCPI 2.2.1-CDR-object zoals partners het kregen (cdr_token gepseudonimiseerd "
            "met de rest).",
            "readings": "De meterstanden waarop de rekening rust.",
        },
    ),
    "meter_values": (
        "Elke meetwaarde die een laadpaal meldde, precies zoals verstuurd. Periode: de tijd van de "
        "laadpaal bij de waarde.",
        {
            "id": _OUR_ROW,
            "station_id": _STATION,
            "session_id": "De laadsessie waar ze bij hoort, als die er is.",
            "evse_number": "Het laadpunt (0: de hoofdmeter van de laadpaal).",
            "connector_number": "De aansluiting.",
            "timestamp": "Wanneer gemeten (tijd van de laadpaal, UTC).",
            "measurand": "Wat gemeten is (Energy.Active.Import.Register, Power.Active.Import...).",
            "phase": "De fase (L1, L2-N...), als die er is.",
            "unit": "De eenheid (Wh, kWh, W, A, V, Percent...).",
            "context": "Waarom gemeten (Sample.Periodic, Transaction.Begin...).",
            "location": "Waar gemeten (Outlet, Inlet, EV...).",
            "format": "Raw of SignedData.",
            "value": "De waarde zoals de laadpaal die stuurde (tekst). Ondertekende gegevens blijven leeg "
            "bij pseudonimiseren: de handtekening dekt het pasnummer.",
        },
    ),
    "authorization_requests": (
        "Elk autorisatiebesluit dat we namen: wie het vroeg (laadpaal, aansluiting), voor welke "
        "laadpas, in welk bericht, wat we antwoordden en waarom. Periode: requested_at.",
        {
            "id": _OUR_ROW,
            "station_id": "De laadpaal die het vroeg.",
            "connector_number": "De aansluiting, als het bericht die noemde.",
            "token_uid": "De aangeboden laadpas.",
            "token_id": _TOKEN_ID,
            "partner_id": _PARTNER,
            "kind": "Het bericht: Authorize, StartTransaction, StopTransaction, RemoteStart...",
            "result": "Wat we antwoordden (Accepted, Blocked, Invalid...).",
            "reason": "Waarom.",
            "session_id": "De laadsessie die zo begon of stopte, als die er is.",
            "requested_at": "Wanneer we besloten.",
        },
    ),
    "status_history": (
        "Elke StatusNotification die een laadpaal stuurde: de beschikbaarheid van elke aansluiting. "
        "Periode: de tijd van de laadpaal.",
        {
            "id": _OUR_ROW,
            "station_id": _STATION,
            "evse_number": "Het laadpunt (0: de laadpaal als geheel).",
            "connector_number": "De aansluiting (0: de laadpaal of het laadpunt als geheel).",
            "status": "De status zoals verstuurd (Available, Charging, Faulted...).",
            "error_code": "De foutcode van 1.6 (NoError, GroundFailure...).",
            "info": "Vrije tekst van de laadpaal.",
            "vendor_id": "De fabrikant van een fabrikantseigen fout.",
            "vendor_error_code": "De foutcode van de fabrikant.",
            "timestamp": "Wanneer de status begon (tijd van de laadpaal, UTC).",
            "received_at": "Wanneer wij hem ontvingen (anders na een periode offline).",
        },
    ),
    "station_events": (
        "Wat er met laadpalen gebeurde naast statussen en meetwaarden: verbonden, verbroken, "
        "opgestart, status van firmware en diagnose, fouten. Periode: occurred_at.",
        {
            "id": _OUR_ROW,
            "station_id": _STATION,
            "kind": "Wat er gebeurde (connected, booted, firmware_status...).",
            "detail": "De bijzonderheden, als JSON-object.",
            "occurred_at": "Wanneer het gebeurde.",
        },
    ),
    "audit_log": (
        "Elke handeling die iets verandert, door een persoon of het systeem aan de kant van de "
        "exploitant: wie wat deed met welk object, wanneer, met welk resultaat (exports ook). "
        "Periode: occurred_at. Het laadpaalfilter houdt de regels over die laadpaal, het "
        "locatiefilter die over de locatie of haar laadpalen.",
        {
            "id": _OUR_ROW,
            "actor": "Wie (user:NAAM, ocpi:PARTNER, station:ID, system...).",
            "action": "Wat, als naam met punten (session.remote_stop.requested...).",
            "object_type": "Het soort object (station, token, tariff...).",
            "object_id": "Het id ervan.",
            "result": "De uitkomst (ok, refused, een fout...).",
            "detail": "De bijzonderheden, als JSON-object.",
            "occurred_at": "Wanneer.",
        },
    ),
}


def _texts() -> dict[str, tuple[str, str]]:
    texts: dict[str, tuple[str, str]] = {}
    for name, kind in KINDS.items():
        description, columns = DUTCH.get(name, (kind.description, {}))
        texts[f"w_expkind_{name}"] = (description, kind.description)
        for column in kind.columns:
            texts[f"w_exp_{name}_{column.name}"] = (
                columns.get(column.name, column.description),
                column.description,
            )
    return texts


#: a kind or column added without Dutch shows its English here (and `tests/web/test_words.py` fails)
TEXTS: dict[str, tuple[str, str]] = _texts()
