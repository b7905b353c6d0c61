"""Console texts for stations' configuration, timeline and remote functions; the helpdesk screen; the map
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
    # remote functions
    "fn_intro": (
        "Kies een functie en vul de gegevens in. U ziet eerst wat er gebeurt; pas na uw bevestiging "
        "gaat de opdracht naar de laadpaal. Daarna ziet u het antwoord van de laadpaal.",
        "Choose a function and fill in its details. You first see what will happen; only after you "
        "confirm is the command sent to the station. Then you see the station's answer.",
    ),
    "fn_none_for_role": (
        "Met uw rol kunt u geen functies op afstand uitvoeren.",
        "Your role cannot run remote functions.",
    ),
    "fn_no_sessions": (
        "Er loopt geen laadsessie op deze laadpaal.",
        "No session is running at this station.",
    ),
    "fn_args_json": ("Gegevens (JSON)", "Arguments (JSON)"),
    "fn_args_json_hint": (
        "Een JSON-object met de velden van deze functie, zoals de REST API ze beschrijft.",
        "A JSON object with this function's fields, as the REST API describes them.",
    ),
    "fn_required": ("verplicht", "required"),
    "fn_next": ("Verder", "Next"),
    "fn_confirm_title": ("Bevestigen: {what}", "Confirm: {what}"),
    "fn_bad_args": ("Dit kan zo niet: {detail}", "This cannot be done like this: {detail}"),
    "fn_back": ("Terug", "Back"),
    "fn_what_happens": ("Wat er gaat gebeuren", "What will happen"),
    "fn_offline_warning": (
        "De laadpaal is nu offline: de opdracht zal mislukken.",
        "The station is offline now: the command will fail.",
    ),
    "fn_audited": (
        "Dit wordt op uw naam vastgelegd in het logboek.",
        "This is recorded in the audit log under your name.",
    ),
    "fn_do_it": ("Ja, uitvoeren: {what}", "Yes, do it: {what}"),
    "fn_answer_title": ("Resultaat: {what}", "Result: {what}"),
    "fn_answer": ("Antwoord van de laadpaal", "The station's answer"),
    "fn_station_said": ("De laadpaal zei", "The station said"),
    "fn_reason": ("Reden", "Reason"),
    "fn_whole_reply": ("Het hele antwoord", "The whole answer"),
    "outcome_accepted": ("Geaccepteerd", "Accepted"),
    "outcome_accepted_explain": (
        "De laadpaal heeft de opdracht aangenomen.",
        "The station accepted the command.",
    ),
    "outcome_rejected": ("Geweigerd door de laadpaal", "Rejected by the station"),
    "outcome_rejected_explain": (
        "De laadpaal heeft de opdracht geweigerd; het antwoord staat hieronder.",
        "The station refused the command; its answer is below.",
    ),
    "outcome_refused": ("Niet verstuurd", "Not sent"),
    "outcome_refused_explain": (
        "Wij hebben de opdracht niet verstuurd; de reden staat hieronder.",
        "We did not send the command; the reason is below.",
    ),
    "outcome_offline": ("Laadpaal offline", "Station offline"),
    "outcome_offline_explain": (
        "De laadpaal heeft geen verbinding; er is niets verstuurd.",
        "The station is not connected; nothing was sent.",
    ),
    "outcome_timeout": ("Geen antwoord", "No answer"),
    "outcome_timeout_explain": (
        "De laadpaal antwoordde niet op tijd. Misschien voert hij de opdracht toch uit: kijk in de tijdlijn.",
        "The station did not answer in time. It may still carry the command out: check the timeline.",
    ),
    "outcome_not_supported": ("Niet mogelijk bij deze laadpaal", "Not possible with this station"),
    "outcome_not_supported_explain": (
        "De OCPP-versie van deze laadpaal kent deze functie niet.",
        "This station's OCPP version has no such function.",
    ),
    "outcome_error": ("Fout van de laadpaal", "Error from the station"),
    "outcome_error_explain": (
        "De laadpaal antwoordde met een foutmelding.",
        "The station answered with an error.",
    ),
    # function names and what they do
    "fn_reset": ("Herstarten", "Reset"),
    "fn_reset_what": (
        "De laadpaal herstart: Soft zodra niemand laadt, Hard meteen (lopende sessies stoppen).",
        "The station restarts: Soft once nobody is charging, Hard now (running sessions end).",
    ),
    "fn_change_availability": ("Beschikbaarheid wijzigen", "Change availability"),
    "fn_change_availability_what": (
        "Zet de laadpaal, een EVSE of een aansluiting buiten of weer in gebruik.",
        "Takes the station, an EVSE or a connector out of service, or back in.",
    ),
    "fn_unlock_connector": ("Aansluiting ontgrendelen", "Unlock connector"),
    "fn_unlock_connector_what": (
        "De laadpaal laat de kabel in de aansluiting los; een lopende sessie stopt.",
        "The station releases the cable in the connector; a running session ends.",
    ),
    "fn_trigger_message": ("Bericht opvragen", "Trigger message"),
    "fn_trigger_message_what": (
        "De laadpaal stuurt nu een bericht (status, meterstanden, hartslag, ...).",
        "The station sends a message now (status, meter values, heartbeat, ...).",
    ),
    "fn_get_variables": ("Waarden opvragen", "Get variables"),
    "fn_get_variables_what": (
        "Vraagt actuele configuratiewaarden op; de antwoorden worden bewaard.",
        "Reads current configuration values; the answers are stored.",
    ),
    "fn_set_variables": ("Waarden wijzigen", "Set variables"),
    "fn_set_variables_what": (
        "Wijzigt configuratiewaarden (per waarde gelogd).",
        "Changes configuration values (each one audited).",
    ),
    "fn_get_configuration": ("Configuratie opvragen (1.6)", "Get configuration (1.6)"),
    "fn_get_configuration_what": (
        "Vraagt OCPP 1.6-configuratiesleutels op; leeg: alle sleutels. Wordt bewaard.",
        "Reads OCPP 1.6 configuration keys; empty: every key. Stored.",
    ),
    "fn_change_configuration": ("Configuratie wijzigen (1.6)", "Change configuration (1.6)"),
    "fn_change_configuration_what": (
        "Wijzigt één OCPP 1.6-configuratiesleutel.",
        "Changes one OCPP 1.6 configuration key.",
    ),
    "fn_get_base_report": ("Volledige configuratie opvragen", "Get the whole configuration"),
    "fn_get_base_report_what": (
        "Vraagt de hele configuratie op (2.0.1: komt daarna binnen; 1.6: meteen bewaard).",
        "Asks for the whole configuration (2.0.1: arrives afterwards; 1.6: stored at once).",
    ),
    "fn_get_local_list_version": ("Versie lokale lijst", "Local list version"),
    "fn_get_local_list_version_what": (
        "Vraagt welke versie van de lokale autorisatielijst de laadpaal heeft.",
        "Asks which version of the local authorization list the station holds.",
    ),
    "fn_sync_local_list": ("Lokale lijst bijwerken", "Sync local list"),
    "fn_sync_local_list_what": (
        "Brengt de lokale autorisatielijst van de laadpaal gelijk met de onze.",
        "Brings the station's local authorization list up to ours.",
    ),
    "fn_clear_cache": ("Autorisatiecache legen", "Clear cache"),
    "fn_clear_cache_what": (
        "De laadpaal vergeet de laadpassen die hij onthouden had.",
        "The station forgets the cards it remembered.",
    ),
    "fn_data_transfer": ("Leveranciersgegevens sturen", "Data transfer"),
    "fn_data_transfer_what": (
        "Stuurt leverancierspecifieke gegevens; het antwoord bevat die van de laadpaal.",
        "Sends vendor-specific data; the answer carries the station's data.",
    ),
    "fn_update_firmware": ("Firmware bijwerken", "Update firmware"),
    "fn_update_firmware_what": (
        "De laadpaal haalt firmware op van de URL en installeert die; de voortgang wordt gevolgd.",
        "The station downloads firmware from the URL and installs it; progress is tracked.",
    ),
    "fn_reserve_now": ("Reserveren", "Reserve now"),
    "fn_reserve_now_what": (
        "Houdt een EVSE vrij voor een laadpas tot een tijdstip.",
        "Holds an EVSE for a card until a time.",
    ),
    "fn_cancel_reservation": ("Reservering annuleren", "Cancel reservation"),
    "fn_cancel_reservation_what": ("Annuleert een reservering.", "Cancels a reservation."),
    "fn_set_charging_profile": ("Laadprofiel instellen", "Set charging profile"),
    "fn_set_charging_profile_what": (
        "Installeert een laadprofiel (een grens aan vermogen of stroom in de tijd).",
        "Installs a charging profile (a power or current limit over time).",
    ),
    "fn_clear_charging_profile": ("Laadprofielen verwijderen", "Clear charging profiles"),
    "fn_clear_charging_profile_what": (
        "Verwijdert laadprofielen op id, of op EVSE, doel en niveau.",
        "Removes charging profiles by id, or by EVSE, purpose and stack level.",
    ),
    "fn_get_composite_schedule": ("Gecombineerd schema", "Composite schedule"),
    "fn_get_composite_schedule_what": (
        "De grenzen die de laadpaal de komende periode toepast, alle profielen samen.",
        "The limits the station will apply over the coming period, all profiles combined.",
    ),
    "fn_get_charging_profiles": ("Laadprofielen opvragen", "Get charging profiles"),
    "fn_get_charging_profiles_what": (
        "Vraagt een 2.0.1-laadpaal welke profielen hij heeft; ze komen daarna binnen.",
        "Asks a 2.0.1 station which profiles it has; they arrive afterwards.",
    ),
    "fn_get_diagnostics": ("Diagnose ophalen", "Get diagnostics"),
    "fn_get_diagnostics_what": (
        "De laadpaal uploadt zijn logbestanden; het bestand is daarna te downloaden.",
        "The station uploads its log files; the file can be downloaded afterwards.",
    ),
    "fn_raw": ("Ruw OCPP-bericht", "Raw OCPP message"),
    "fn_raw_what": (
        "Stuurt elk OCPP-bericht van de versie van de laadpaal, zoals opgegeven (voor experts).",
        "Sends any OCPP action of the station's version, as given (expert tooling).",
    ),
    "fn_remote_start": ("Laden starten op afstand", "Remote start"),
    "fn_remote_start_what": (
        "De laadpaal start een laadsessie voor de laadpas (die eerst wordt gecontroleerd).",
        "The station starts a session for the card (which is checked first).",
    ),
    "fn_remote_stop": ("Laden stoppen op afstand", "Remote stop"),
    "fn_remote_stop_what": (
        "De laadpaal stopt de gekozen laadsessie. De kabel blijft mogelijk vergrendeld: "
        "gebruik daarvoor de helpdesk (stoppen en vrijgeven).",
        "The station stops the chosen session. The cable may stay locked: use the helpdesk's "
        "stop and release for that.",
    ),
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
