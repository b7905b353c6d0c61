"""Console texts for stations' configuration and timeline; the helpdesk screen; the map
(Dutch, English): merged into `i18n.CATALOGUE`."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    # station tabs
    "st_tabs": ("Onderdelen van de laadpaal", "Parts of the station"),
    "st_tab_overview": ("Overzicht", "Overview"),
    "st_tab_configuration": ("Configuratie", "Configuration"),
    "st_tab_timeline": ("Tijdlijn", "Timeline"),
    "st_tab_functions": ("Functies op afstand", "Remote functions"),
    "st_offline_note": (
        "Opdrachten kunnen nu niet worden uitgevoerd.",
        "Commands cannot be carried out now.",
    ),
    # how a station authenticates (stekker.domain.station_auth); none and missing are a risk
    "st_authentication": ("Authenticatie", "Authentication"),
    "st_auth_password": ("Wachtwoord", "Password"),
    "st_auth_certificate": ("Certificaat", "Certificate"),
    "st_auth_none": ("Geen authenticatie", "No authentication"),
    "st_auth_missing": ("Geen inloggegevens", "No credentials"),
    "st_auth_none_note": (
        "Deze laadpaal is bewust zonder authenticatie geregistreerd: wie zijn id kent, kan zich als "
        "deze laadpaal aanmelden. Geef hem een wachtwoord of certificaat.",
        "This station was registered without authentication on purpose: anyone who knows its id can "
        "connect as this station. Give it a password or a certificate.",
    ),
    "st_auth_missing_note": (
        "Deze laadpaal heeft geen wachtwoord of certificaat en wordt geweigerd bij het verbinden.",
        "This station has no password or certificate and is refused when it connects.",
    ),
    "cancel": ("Annuleren", "Cancel"),
    "updated": ("Bijgewerkt", "Updated"),
    # configuration
    "cfg_change": ("Een waarde wijzigen", "Change a value"),
    "cfg_variable": ("Variabele", "Variable"),
    "cfg_label_hint": (
        "1.6: de sleutel, bijv. HeartbeatInterval; "
        "2.0.1: Component.Variabele, bijv. AuthCtrlr.LocalPreAuthorize",
        "1.6: the key, e.g. HeartbeatInterval; 2.0.1: Component.Variable, e.g. AuthCtrlr.LocalPreAuthorize",
    ),
    "cfg_new_value": ("Nieuwe waarde", "New value"),
    "cfg_drift": ("Afwijkingen van het sjabloon", "Drift from the template"),
    "cfg_no_groups": (
        "Deze laadpaal zit in geen groep, dus er is geen sjabloon om mee te vergelijken.",
        "This station is in no group, so there is no template to compare with.",
    ),
    "cfg_no_templates": (
        "Geen sjabloon voor de groepen van deze laadpaal ({groups}).",
        "No template for this station's groups ({groups}).",
    ),
    "cfg_desired": ("Gewenst", "Desired"),
    "cfg_actual": ("Gemeld", "Reported"),
    "cfg_template": ("Sjabloon (groep)", "Template (group)"),
    "drift_ok": ("in orde", "as desired"),
    "drift_differs": ("wijkt af", "differs"),
    "drift_missing": ("nog niet gemeld", "not reported yet"),
    "drift_unknown": ("niet gemeld door de laadpaal", "not reported by the station"),
    "cfg_stored": ("Bewaarde configuratie", "Stored configuration"),
    "cfg_stored_hint": (
        "Wat de laadpaal het laatst meldde, beantwoordde of accepteerde; vraag actuele waarden op "
        "via Functies op afstand.",
        "What the station last reported, answered or accepted; ask for current values under "
        "Remote functions.",
    ),
    "cfg_component": ("Component", "Component"),
    "cfg_variable_name": ("Naam", "Name"),
    "cfg_value": ("Waarde", "Value"),
    "cfg_mutability": ("Wijzigbaar", "Mutability"),
    "cfg_source": ("Bron", "Source"),
    "cfg_action": ("Actie", "Action"),
    "cfg_edit": ("Wijzigen", "Change"),
    "cfg_nothing_stored": (
        "Nog niets bewaard. Vraag de volledige configuratie op via Functies op afstand.",
        "Nothing stored yet. Ask for the whole configuration under Remote functions.",
    ),
    "cfg_confirm_title": ("Bevestigen: configuratie wijzigen", "Confirm: change configuration"),
    "cfg_what": (
        "De nieuwe waarde gaat naar de laadpaal; zijn antwoord wordt bewaard en op uw naam gelogd.",
        "The new value is sent to the station; its answer is stored and audited under your name.",
    ),
    "cfg_now": ("Nu bekend", "Known now"),
    "cfg_unknown": ("onbekend", "unknown"),
    "cfg_do_it": ("Ja, wijzigen", "Yes, change it"),
    "config_change": ("Configuratie wijzigen", "Change configuration"),
    # timeline
    "tl_period": ("Periode", "Period"),
    "tl_hours": ("laatste {n} uur", "last {n} hours"),
    "tl_messages": ("OCPP-berichten tonen", "Show OCPP messages"),
    "tl_truncated": (
        "Er is meer gebeurd dan hier past; het nieuwste staat er.",
        "More happened than fits here; the newest is shown.",
    ),
    "tl_kind": ("Soort", "Kind"),
    "tl_what": ("Wat", "What"),
    "tl_kind_status": ("Status", "Status"),
    "tl_kind_session": ("Laadsessie", "Session"),
    "tl_kind_event": ("Gebeurtenis", "Event"),
    "tl_kind_action": ("Handeling", "Action"),
    "tl_kind_message": ("OCPP-bericht", "OCPP message"),
    "tl_frame": ("Bericht", "Frame"),
    "tl_empty": ("Niets gebeurd in deze periode.", "Nothing happened in this period."),
    # map and group filter
    "map_title": ("Kaart van de locaties", "Map of the locations"),
    "map_hint": (
        "Elke stip is een locatie; kies er een om alleen die laadpalen te zien.",
        "Each dot is a location; choose one to see only its stations.",
    ),
    "map_point": (
        "{name}, {city}: {stations} laadpalen, {online} online",
        "{name}, {city}: {stations} stations, {online} online",
    ),
    "map_counts": ("{stations} laadpalen, {online} online", "{stations} stations, {online} online"),
    "map_legend": (
        "Groen: alle laadpalen online; bruin met ~: een deel online; rood met !: geen online.",
        "Green: every station online; brown with ~: some online; red with !: none online.",
    ),
    "map_truncated": ("Niet alle locaties passen op de kaart.", "Not every location fits on the map."),
    "map_group_point": (
        "{locations} locaties bij {city} e.o.: {stations} laadpalen, {online} online",
        "{locations} locations around {city}: {stations} stations, {online} online",
    ),
    "map_grouped": (
        "Locaties dicht bij elkaar staan als één punt met hun aantal. Verfijn de filters (zoeken, "
        "locatie, groep) om ze apart te zien.",
        "Locations close together are one point with their number. Narrow the filters (search, "
        "location, group) to see them one by one.",
    ),
    "map_as_list": ("De locaties als lijst", "The locations as a list"),
    "map_none": ("Geen locaties bij deze filters.", "No locations for these filters."),
    "map_group": ("Groep", "Group"),
    "map_all_locations": ("Alle locaties", "All locations"),
    # helpdesk
    "hd_title": ("Helpdesk", "Helpdesk"),
    "hd_search_label": ("Zoek een laadsessie", "Find a session"),
    "hd_search_hint": (
        "laadpaal-id, EVSE-id of het stukje op de sticker, aansluiting (PAAL/2), "
        "pasnummer of de laatste cijfers",
        "station id, EVSE id or the part on the sticker, connector (STATION/2), "
        "card number or its last digits",
    ),
    "hd_bad_query": ("Zo kan ik niet zoeken: {detail}", "Cannot search like that: {detail}"),
    "hd_sessions": ("Laadsessies", "Sessions"),
    "hd_no_sessions": ("Geen laadsessies gevonden.", "No sessions found."),
    "hd_stations": ("Laadpalen", "Stations"),
    "hd_no_stations": ("Geen laadpalen gevonden.", "No stations found."),
    "hd_card": ("Laadpas", "Card"),
    "hd_matched": ("Gevonden op", "Matched by"),
    "hd_action": ("Actie", "Action"),
    "hd_running": ("Laadt nu", "Running"),
    "hd_ended": ("Afgelopen", "Ended"),
    "hd_stop_release": ("Stoppen en vrijgeven", "Stop and release"),
    "hd_release_connector": ("Stekker vrijgeven", "Release the plug"),
    "hd_not_found": ("Niet gevonden: {detail}", "Not found: {detail}"),
    "hd_already_running": (
        "Er loopt al een stoppen-en-vrijgeven voor deze aansluiting: {detail}",
        "A stop and release is already running for this connector: {detail}",
    ),
    "hd_cluster_unavailable": (
        "De andere servers van Stekker zijn nu niet bereikbaar; er is niets naar de laadpaal gestuurd. "
        "Probeer het over een minuut opnieuw.",
        "Stekker's other servers cannot be reached right now; nothing was sent to the station. "
        "Try again in a minute.",
    ),
    "hd_flow_gone": (
        "Deze actie is niet (meer) bekend; het logboek bewaart wat er gebeurde.",
        "This flow is not known (any more); the audit log keeps what happened.",
    ),
    "hd_flow_title": ("Stoppen en vrijgeven: {station}", "Stop and release: {station}"),
    "hd_no_session": ("geen lopende sessie", "no running session"),
    "hd_started_by": ("Gestart door", "Started by"),
    "hd_station_answered": ("laadpaal antwoordde", "station answered"),
    "hd_back": ("Terug naar zoeken", "Back to search"),
    "flow_running": ("Bezig…", "Working…"),
    "flow_released": ("Vrijgegeven", "Released"),
    "flow_failed": ("Niet gelukt", "Failed"),
    "flow_timed_out": ("Opgegeven na de tijdslimiet", "Gave up after the time limit"),
    "stepstatus_pending": ("nog niet", "not yet"),
    "stepstatus_running": ("bezig", "running"),
    "stepstatus_ok": ("gelukt", "done"),
    "stepstatus_failed": ("mislukt", "failed"),
    "stepstatus_skipped": ("overgeslagen", "skipped"),
    "step_remote_stop": ("Laadpaal vragen de sessie te stoppen", "Ask the station to stop the session"),
    "step_wait_for_stop": ("Wachten tot de sessie stopt", "Wait for the session to end"),
    "step_unlock": ("Aansluiting ontgrendelen", "Unlock the connector"),
    "step_check": ("Controleren of de stekker vrij is", "Check that the plug is released"),
    "step_soft_reset": ("Laadpaal zacht herstarten", "Soft reset the station"),
    "step_wait_soft_reset": ("Wachten op de herstart", "Wait for the restart"),
    "step_unlock_after_soft_reset": ("Opnieuw ontgrendelen", "Unlock again"),
    "step_check_after_soft_reset": ("Controleren of de stekker vrij is", "Check that the plug is released"),
    "step_hard_reset": (
        "Laadpaal hard herstarten (laatste redmiddel)",
        "Hard reset the station (last resort)",
    ),
    "step_wait_hard_reset": ("Wachten op de herstart", "Wait for the restart"),
    "step_unlock_after_hard_reset": ("Opnieuw ontgrendelen", "Unlock again"),
    "step_check_after_hard_reset": ("Controleren of de stekker vrij is", "Check that the plug is released"),
}
