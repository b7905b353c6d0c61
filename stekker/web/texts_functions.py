"""Console texts for a station's remote functions (groups, forms, the confirmation with what
drivers notice, the station's answer in words), stopping a session from its page and the
helpdesk's confirmation before "stop and release" (Dutch, English): merged into
`i18n.CATALOGUE`.

Keys: `fn_<function>` its name and `fn_<function>_what` what it does; `fx_obj_<function>` the
function as the object of a sentence ("de herstart"); `fx_said_[<function>_]<Status>` the
station's answer in words; `fx_outcome_<outcome>` what came of it when the station did not
answer; `fx_in_*` form fields; `fx_err_*` what is wrong with a field (`{field}` its label).
"""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    # ---- the page
    "fn_intro": (
        "Kies wat u wilt doen en vul de gegevens in. Bij alles wat de laadpaal verandert, ziet u "
        "eerst wat er gebeurt en voor welke bestuurders; pas na uw bevestiging gaat de opdracht "
        "naar de laadpaal. Daarna leest u het antwoord van de laadpaal.",
        "Choose what you want to do and fill in the details. For everything that changes the station "
        "you first see what will happen and to which drivers; only after you confirm is the command "
        "sent. Then you read the station's answer.",
    ),
    "fx_version_1.6": (
        "Deze laadpaal spreekt OCPP 1.6: u ziet alleen wat die versie kent.",
        "This station speaks OCPP 1.6: you see only what that version has.",
    ),
    "fx_version_2.x": (
        "Deze laadpaal spreekt OCPP 2.0.1: u ziet alleen wat die versie kent.",
        "This station speaks OCPP 2.0.1: you see only what that version has.",
    ),
    "fx_version_unknown": (
        "De OCPP-versie van deze laadpaal is nog niet bekend: u ziet wat elke versie kent.",
        "This station's OCPP version is not known yet: you see what every version has.",
    ),
    "fn_none_for_role": (
        "Met uw rol kunt u geen functies op afstand uitvoeren.",
        "Your role cannot run remote functions.",
    ),
    "fn_no_sessions": (
        "Er loopt geen laadsessie op deze laadpaal.",
        "No session is running at this station.",
    ),
    "fx_group_restart": ("Herstarten en ontgrendelen", "Restart and unlock"),
    "fx_group_sessions": ("Laadsessies", "Sessions"),
    "fx_group_availability": ("Beschikbaarheid", "Availability"),
    "fx_group_configuration": ("Configuratie en laadpassen", "Configuration and cards"),
    "fx_group_diagnostics": ("Diagnose en firmware", "Diagnostics and firmware"),
    "fx_group_advanced": ("Geavanceerd", "Advanced"),
    "fx_group_advanced_hint": (
        "Laadprofielen, leveranciersgegevens en ruwe OCPP-berichten, voor wie weet wat ze doen.",
        "Charging profiles, vendor data and raw OCPP messages, for those who know what they do.",
    ),
    "fn_required": ("verplicht", "required"),
    "fn_next": ("Verder", "Next"),
    "fx_send": ("Opvragen", "Ask the station"),
    "fx_confirm_first": (
        "U ziet eerst wat er gebeurt.",
        "You first see what will happen.",
    ),
    "fx_whole_station": ("Hele laadpaal", "Whole station"),
    "fx_any_evse": ("De laadpaal kiest", "The station chooses"),
    "fx_all_evses": ("Alle laadpunten", "All EVSEs"),
    "fx_unit_station": ("Zoals de laadpaal wil", "As the station prefers"),
    "fx_any_purpose": ("Alle soorten", "Every kind"),
    "fx_evse_option": ("Laadpunt {number}", "EVSE {number}"),
    "fx_session_option": (
        "Laadsessie {id}, laadpunt {evse}, sinds {start}",
        "Session {id}, EVSE {evse}, since {start}",
    ),
    "fx_problem": ("Dit kan zo niet", "This cannot be done like this"),
    "fx_service_said": ("De controle meldt", "The check says"),
    # ---- form fields
    "fx_in_evse": ("Laadpunt", "EVSE"),
    "fx_in_connector": ("Aansluiting", "Connector"),
    "fx_in_connector_hint": (
        "Alleen bij een laadpunt met meer aansluitingen; leeg: de eerste.",
        "Only for an EVSE with several connectors; empty: the first.",
    ),
    "fx_in_connector_all_hint": (
        "Leeg: alle aansluitingen van het laadpunt.",
        "Empty: every connector of the EVSE.",
    ),
    "fx_in_token": ("Laadpas", "Card"),
    "fx_in_token_hint": (
        "Het nummer zoals de laadpaal het leest, bijvoorbeeld 04A1B2C3D4E5F6.",
        "The number as the station reads it, for example 04A1B2C3D4E5F6.",
    ),
    "fx_in_reset_type": ("Hoe", "How"),
    "fx_reset_soft": ("Zacht: netjes afsluiten, dan herstarten", "Soft: shut down properly, then restart"),
    "fx_reset_hard": ("Hard: meteen herstarten", "Hard: restart at once"),
    "fx_in_reset_evse_hint": ("Leeg: de hele laadpaal.", "Empty: the whole station."),
    "fx_in_session": ("Laadsessie", "Session"),
    "fx_in_until": ("Tot", "Until"),
    "fx_in_reservation": ("Reserveringsnummer", "Reservation number"),
    "fx_in_availability": ("Nieuwe stand", "New state"),
    "fx_out_of_service": ("Buiten gebruik", "Out of service"),
    "fx_in_service": ("Weer in gebruik", "Back in service"),
    "fx_in_keys": ("Sleutels", "Keys"),
    "fx_in_keys_hint": (
        "Gescheiden door komma's; leeg: alle sleutels.",
        "Separated by commas; empty: every key.",
    ),
    "fx_in_key": ("Sleutel", "Key"),
    "fx_in_key_hint": ("Bijvoorbeeld HeartbeatInterval.", "For example HeartbeatInterval."),
    "fx_in_value": ("Waarde", "Value"),
    "fx_in_component": ("Component", "Component"),
    "fx_in_component_hint": ("Bijvoorbeeld AuthCtrlr.", "For example AuthCtrlr."),
    "fx_in_variable": ("Variabele", "Variable"),
    "fx_in_report": ("Welk deel", "Which part"),
    "fx_report_full": ("Alles", "Everything"),
    "fx_report_configuration": ("Alleen de instellingen", "The settings only"),
    "fx_report_summary": ("Een samenvatting", "A summary"),
    "fx_in_full_list": (
        "De hele lijst sturen, niet alleen de wijzigingen",
        "Send the whole list, not only the changes",
    ),
    "fx_in_message": ("Welk bericht", "Which message"),
    "fx_trigger_StatusNotification": ("De status van de laadpunten", "The status of the EVSEs"),
    "fx_trigger_MeterValues": ("De meterstanden", "The meter values"),
    "fx_trigger_Heartbeat": ("Een teken van leven", "A sign of life"),
    "fx_trigger_BootNotification": ("Het opstartbericht", "The boot message"),
    "fx_trigger_FirmwareStatusNotification": (
        "De voortgang van het bijwerken van de firmware",
        "The progress of the firmware update",
    ),
    "fx_trigger_LogStatusNotification": (
        "De voortgang van het uploaden van logbestanden",
        "The progress of the log upload",
    ),
    "fx_trigger_TransactionEvent": ("De stand van de lopende laadsessie", "The state of the running session"),
    "fx_in_log_type": ("Soort logbestand", "Kind of log"),
    "fx_log_diagnostics": ("Diagnose", "Diagnostics"),
    "fx_log_security": ("Beveiliging", "Security"),
    "fx_in_log_from": ("Vanaf", "From"),
    "fx_in_log_to": ("Tot en met", "Up to"),
    "fx_in_firmware_url": ("Adres van de firmware", "Address of the firmware"),
    "fx_in_firmware_url_hint": (
        "Een http-, https-, ftp-, ftps- of sftp-adres.",
        "An http, https, ftp, ftps or sftp address.",
    ),
    "fx_in_retrieve_at": ("Ophalen vanaf", "Download from"),
    "fx_in_retrieve_at_hint": ("Leeg: meteen.", "Empty: at once."),
    "fx_in_minutes": ("Periode in minuten", "Period in minutes"),
    "fx_in_unit": ("Eenheid", "Unit"),
    "fx_unit_w": ("Vermogen (W)", "Power (W)"),
    "fx_unit_a": ("Stroom (A)", "Current (A)"),
    "fx_in_profile_id": ("Profielnummer", "Profile number"),
    "fx_in_profile_id_hint": (
        "Leeg: kies op laadpunt en soort.",
        "Empty: choose by EVSE and kind.",
    ),
    "fx_in_purpose": ("Soort profiel", "Kind of profile"),
    "fx_purpose_station_max": ("Grens voor de hele laadpaal", "Limit for the whole station"),
    "fx_purpose_tx_default": ("Standaard voor elke laadsessie", "Default for every session"),
    "fx_purpose_tx": ("Voor één laadsessie", "For one session"),
    "fx_in_json": ("Gegevens (JSON)", "Arguments (JSON)"),
    "fx_in_profile_json_hint": (
        "Een JSON-object met evse_number en profile, zoals de REST API het beschrijft.",
        "A JSON object with evse_number and profile, as the REST API describes it.",
    ),
    "fx_in_vendor": ("Leverancierscode", "Vendor id"),
    "fx_in_message_id": ("Berichtcode", "Message id"),
    "fx_in_data": ("Gegevens", "Data"),
    "fx_in_action": ("OCPP-actie", "OCPP action"),
    "fx_in_action_hint": ("Bijvoorbeeld GetLocalListVersion.", "For example GetLocalListVersion."),
    "fx_in_payload": ("Inhoud (JSON)", "Payload (JSON)"),
    "fx_in_payload_hint": (
        "Zoals het over de lijn gaat; eerst gecontroleerd tegen het officiële schema.",
        "As it goes over the wire; checked against the official schema first.",
    ),
    # ---- what is wrong with a field
    "fx_err_required": ("{field}: dit is verplicht.", "{field}: this is required."),
    "fx_err_too_long": (
        "{field}: te lang (hoogstens {limit} tekens).",
        "{field}: too long (at most {limit} characters).",
    ),
    "fx_err_whole_number": ("{field}: vul een heel getal in.", "{field}: give a whole number."),
    "fx_err_range": (
        "{field}: kies een getal van {low} tot en met {high}.",
        "{field}: choose a number from {low} to {high}.",
    ),
    "fx_err_no_such_evse": (
        "{field}: deze laadpaal heeft laadpunt {known}.",
        "{field}: this station has EVSE {known}.",
    ),
    "fx_err_session_not_running": (
        "{field}: deze laadsessie loopt niet (meer) op deze laadpaal.",
        "{field}: this session is not (or no longer) running at this station.",
    ),
    "fx_err_checkbox": ("{field}: aanvinken of leeg laten.", "{field}: tick it or leave it empty."),
    "fx_err_choice": ("{field}: kies een van de mogelijkheden.", "{field}: choose one of the options."),
    "fx_err_time": ("{field}: vul een datum en tijd in.", "{field}: give a date and time."),
    "fx_err_json": ("{field}: dit is geen geldige JSON.", "{field}: this is not valid JSON."),
    "fx_err_json_object": (
        "{field}: geef een JSON-object, tussen accolades.",
        "{field}: give a JSON object, in braces.",
    ),
    "fx_err_printable": ("{field}: gebruik alleen gewone tekens.", "{field}: use ordinary characters only."),
    "fx_err_token": ("{field}: 1 tot 36 gewone tekens.", "{field}: 1 to 36 ordinary characters."),
    "fx_err_service": (
        "Deze gegevens passen niet bij de functie.",
        "These details do not fit the function.",
    ),
    # ---- the confirmation
    "fn_confirm_title": ("Bevestigen: {what}", "Confirm: {what}"),
    "fn_bad_args": ("Dit kan zo niet: {detail}", "This cannot be done like this: {detail}"),
    "fn_back": ("Terug", "Back"),
    "fx_back_to_session": ("Terug naar de laadsessie", "Back to the session"),
    "fn_what_happens": ("Wat er gaat gebeuren", "What will happen"),
    "fx_what_you_asked": ("Wat u vraagt", "What you ask"),
    "fn_offline_warning": (
        "De laadpaal is nu offline: de opdracht zal mislukken.",
        "The station is offline now: the command will fail.",
    ),
    "fn_audited": (
        "Dit wordt op uw naam vastgelegd in het logboek.",
        "This is recorded in the audit log under your name.",
    ),
    "fn_do_it": ("Ja, uitvoeren: {what}", "Yes, do it: {what}"),
    "fx_drivers": ("Wat bestuurders merken", "What drivers notice"),
    "fx_impact_ends_now": (
        "Deze laadsessies stoppen meteen; de bestuurder laadt niet verder:",
        "These sessions end at once; the driver charges no further:",
    ),
    "fx_impact_ends_gracefully": (
        "De laadpaal sluit deze laadsessies eerst netjes af en herstart dan; "
        "de bestuurder laadt niet verder:",
        "The station first ends these sessions properly, then restarts; the driver charges no further:",
    ),
    "fx_impact_waits_for_sessions": (
        "Deze laadsessies laden door; de wijziging gaat pas in als ze voorbij zijn:",
        "These sessions go on charging; the change takes effect once they are over:",
    ),
    "fx_impact_refused_while_charging": (
        "Hier loopt een laadsessie: de laadpaal zal weigeren. Stop eerst de laadsessie:",
        "A session is running here: the station will refuse. Stop the session first:",
    ),
    "fx_impact_nobody": (
        "Er loopt hier nu geen laadsessie: geen bestuurder merkt er iets van.",
        "No session is running here now: no driver notices.",
    ),
    "fx_affected": (
        "Laadsessie {id}, laadpunt {evse}, sinds {start}",
        "Session {id}, EVSE {evse}, since {start}",
    ),
    "fx_card": ("laadpas {card}", "card {card}"),
    # ---- the answer
    "fn_answer_title": ("Resultaat: {what}", "Result: {what}"),
    "fn_answer": ("Antwoord van de laadpaal", "The station's answer"),
    "fn_station_said": ("De laadpaal zei", "The station said"),
    "fn_reason": ("Reden", "Reason"),
    "fn_whole_reply": ("Technische details", "Technical details"),
    "fx_try_again": ("Nog een keer", "Once more"),
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
    "outcome_unknown": ("Uitkomst onbekend", "Outcome unknown"),
    "outcome_unknown_explain": (
        "De verbinding viel weg nadat de opdracht was verstuurd: misschien heeft de laadpaal het gedaan.",
        "The connection dropped after the command was sent: the station may have done it.",
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
    # the station's answer in words
    "fx_said_accepted": ("De laadpaal heeft {obj} geaccepteerd.", "The station accepted {obj}."),
    "fx_said_rejected": ("De laadpaal heeft {obj} geweigerd.", "The station refused {obj}."),
    "fx_said_Scheduled": (
        "De laadpaal heeft {obj} ingepland: het gebeurt zodra de lopende laadsessie voorbij is.",
        "The station scheduled {obj}: it happens once the running session is over.",
    ),
    "fx_said_RebootRequired": (
        "De laadpaal heeft de wijziging aangenomen; die werkt pas na een herstart.",
        "The station took the change; it works only after a restart.",
    ),
    "fx_said_NotSupported": (
        "Deze laadpaal ondersteunt {obj} niet.",
        "This station does not support {obj}.",
    ),
    "fx_said_NotImplemented": (
        "Deze laadpaal kent {obj} niet.",
        "This station does not know {obj}.",
    ),
    "fx_said_Unlocked": ("De laadpaal heeft de kabel ontgrendeld.", "The station unlocked the cable."),
    "fx_said_UnlockFailed": (
        "De laadpaal kon de kabel niet ontgrendelen. Stuur zo nodig een monteur.",
        "The station could not unlock the cable. Send a technician if needed.",
    ),
    "fx_said_OngoingAuthorizedTransaction": (
        "Er loopt een laadsessie op deze aansluiting, dus de laadpaal ontgrendelt niet. "
        "Stop eerst de laadsessie.",
        "A session is running on this connector, so the station does not unlock. Stop the session first.",
    ),
    "fx_said_UnknownConnector": (
        "De laadpaal kent deze aansluiting niet.",
        "The station does not know this connector.",
    ),
    "fx_said_Occupied": ("Het laadpunt is bezet.", "The EVSE is occupied."),
    "fx_said_Faulted": ("Het laadpunt is defect.", "The EVSE is faulted."),
    "fx_said_Unavailable": ("Het laadpunt is buiten gebruik.", "The EVSE is out of service."),
    "fx_said_UnknownVendorId": (
        "De laadpaal kent deze leverancierscode niet.",
        "The station does not know this vendor id.",
    ),
    "fx_said_UnknownMessageId": (
        "De laadpaal kent deze berichtcode niet.",
        "The station does not know this message id.",
    ),
    "fx_said_NoProfiles": (
        "De laadpaal heeft geen laadprofielen die hierbij passen.",
        "The station has no charging profiles that match.",
    ),
    "fx_said_AcceptedCanceled": (
        "De laadpaal heeft {obj} geaccepteerd en een lopende bijwerking afgebroken.",
        "The station accepted {obj} and cancelled an update in progress.",
    ),
    "fx_said_VersionMismatch": (
        "De versie van de lijst past niet: stuur de hele lijst.",
        "The list's version does not match: send the whole list.",
    ),
    "fx_said_current": (
        "De lokale lijst van de laadpaal was al bij; er is niets verstuurd.",
        "The station's local list was up to date; nothing was sent.",
    ),
    "fx_said_reset_Accepted": (
        "De laadpaal heeft de herstart geaccepteerd en herstart nu.",
        "The station accepted the reset and restarts now.",
    ),
    "fx_said_reset_Scheduled": (
        "De laadpaal herstart zodra niemand meer laadt.",
        "The station restarts once nobody is charging.",
    ),
    "fx_said_change_availability_Accepted": (
        "De laadpaal heeft de nieuwe stand doorgevoerd.",
        "The station took the new state.",
    ),
    "fx_said_change_availability_Scheduled": (
        "De nieuwe stand gaat in zodra de lopende laadsessie voorbij is.",
        "The new state takes effect once the running session is over.",
    ),
    "fx_said_remote_start_Accepted": (
        "De laadpaal start de laadsessie; die verschijnt zo bij de laadsessies.",
        "The station starts the session; it appears among the sessions shortly.",
    ),
    "fx_said_remote_stop_Accepted": (
        "De laadpaal heeft het stoppen geaccepteerd: de laadsessie stopt.",
        "The station accepted the stop: the session ends.",
    ),
    "fx_said_remote_stop_Rejected": (
        "De laadpaal weigert de laadsessie te stoppen. Zit de kabel vast, gebruik dan bij de helpdesk "
        "stoppen en vrijgeven.",
        "The station refuses to stop the session. If the cable is stuck, use stop and release "
        "at the helpdesk.",
    ),
    "fx_outcome_refused": (
        "Wij hebben {obj} niet verstuurd; de reden staat hieronder.",
        "We did not send {obj}; the reason is below.",
    ),
    "fx_outcome_offline": (
        "De laadpaal is offline: {obj} is niet verstuurd.",
        "The station is offline: {obj} was not sent.",
    ),
    "fx_outcome_unknown": (
        "Onbekend of de laadpaal {obj} heeft uitgevoerd: de verbinding viel weg nadat de opdracht was "
        "verstuurd. Kijk in de tijdlijn voordat u het nog een keer probeert.",
        "Unknown whether the station carried out {obj}: the connection dropped after the command was sent. "
        "Check the timeline before you try again.",
    ),
    "fx_outcome_timeout": (
        "De laadpaal antwoordde niet op tijd. Misschien voert hij {obj} toch uit: kijk in de tijdlijn.",
        "The station did not answer in time. It may still carry out {obj}: check the timeline.",
    ),
    "fx_outcome_not_supported": (
        "Deze laadpaal kan {obj} niet uitvoeren met zijn OCPP-versie.",
        "This station cannot carry out {obj} with its OCPP version.",
    ),
    "fx_outcome_error": (
        "De laadpaal antwoordde met een foutmelding op {obj}.",
        "The station answered {obj} with an error.",
    ),
    # ---- the functions: name, what it does, and as the object of a sentence
    "fn_reset": ("Herstarten", "Reset"),
    "fn_reset_what": (
        "De laadpaal herstart: zacht sluit eerst netjes af, hard herstart meteen.",
        "The station restarts: soft shuts down properly first, hard restarts at once.",
    ),
    "fx_obj_reset": ("de herstart", "the reset"),
    "fn_unlock_connector": ("Kabel ontgrendelen", "Unlock the cable"),
    "fn_unlock_connector_what": (
        "De laadpaal laat de kabel in de aansluiting los.",
        "The station releases the cable in the connector.",
    ),
    "fx_obj_unlock_connector": ("het ontgrendelen", "the unlock"),
    "fn_remote_start": ("Laadsessie starten", "Start a session"),
    "fn_remote_start_what": (
        "De laadpaal start een laadsessie voor de laadpas (die wij eerst controleren).",
        "The station starts a session for the card (which we check first).",
    ),
    "fx_obj_remote_start": ("het starten van de laadsessie", "the start of the session"),
    "fn_remote_stop": ("Laadsessie stoppen", "Stop a session"),
    "fn_remote_stop_what": (
        "De laadpaal stopt de laadsessie: de bestuurder laadt niet verder. De kabel blijft mogelijk "
        "vergrendeld tot de bestuurder de auto opent; zit hij vast, gebruik dan bij de helpdesk "
        "stoppen en vrijgeven.",
        "The station stops the session: the driver charges no further. The cable may stay locked until "
        "the driver opens the car; if it is stuck, use stop and release at the helpdesk.",
    ),
    "fx_obj_remote_stop": ("het stoppen van de laadsessie", "the stop of the session"),
    "fn_reserve_now": ("Reserveren", "Reserve"),
    "fn_reserve_now_what": (
        "Houdt een laadpunt vrij voor een laadpas tot een tijdstip.",
        "Holds an EVSE for a card until a time.",
    ),
    "fx_obj_reserve_now": ("de reservering", "the reservation"),
    "fn_cancel_reservation": ("Reservering annuleren", "Cancel a reservation"),
    "fn_cancel_reservation_what": (
        "Het laadpunt is weer vrij voor iedereen.",
        "The EVSE is free for everybody again.",
    ),
    "fx_obj_cancel_reservation": ("het annuleren van de reservering", "the cancellation"),
    "fn_change_availability": ("Buiten of weer in gebruik", "Out of or back in service"),
    "fn_change_availability_what": (
        "Zet de laadpaal, een laadpunt of een aansluiting buiten of weer in gebruik. Buiten gebruik "
        "kan niemand er een nieuwe laadsessie starten.",
        "Takes the station, an EVSE or a connector out of service, or back in. Out of service, "
        "nobody can start a new session there.",
    ),
    "fx_obj_change_availability": ("de nieuwe stand", "the new state"),
    "fn_get_configuration": ("Instellingen opvragen", "Read settings"),
    "fn_get_configuration_what": (
        "Vraagt de configuratiesleutels van de laadpaal op; de antwoorden worden bewaard.",
        "Reads the station's configuration keys; the answers are stored.",
    ),
    "fx_obj_get_configuration": ("het opvragen van de instellingen", "the request for the settings"),
    "fn_change_configuration": ("Een instelling wijzigen", "Change a setting"),
    "fn_change_configuration_what": (
        "Wijzigt één configuratiesleutel van de laadpaal.",
        "Changes one configuration key of the station.",
    ),
    "fx_obj_change_configuration": ("de wijziging", "the change"),
    "fn_get_variables": ("Een waarde opvragen", "Read a value"),
    "fn_get_variables_what": (
        "Vraagt de waarde van een variabele op; het antwoord wordt bewaard.",
        "Reads the value of a variable; the answer is stored.",
    ),
    "fx_obj_get_variables": ("het opvragen van de waarde", "the request for the value"),
    "fn_set_variables": ("Een waarde wijzigen", "Change a value"),
    "fn_set_variables_what": (
        "Wijzigt de waarde van een variabele (vastgelegd in het logboek).",
        "Changes the value of a variable (recorded in the audit log).",
    ),
    "fx_obj_set_variables": ("de wijziging", "the change"),
    "fn_get_base_report": ("Alle instellingen opvragen", "Read all settings"),
    "fn_get_base_report_what": (
        "Vraagt de hele configuratie op; die komt daarna binnen en staat op het tabblad Configuratie.",
        "Asks for the whole configuration; it arrives afterwards and shows on the Configuration tab.",
    ),
    "fx_obj_get_base_report": ("het opvragen van de configuratie", "the request for the configuration"),
    "fn_sync_local_list": ("Lokale lijst met laadpassen bijwerken", "Update the local list of cards"),
    "fn_sync_local_list_what": (
        "Brengt de lijst met laadpassen die de laadpaal zelf kent gelijk met de onze.",
        "Brings the list of cards the station knows itself up to ours.",
    ),
    "fx_obj_sync_local_list": ("het bijwerken van de lokale lijst", "the update of the local list"),
    "fn_get_local_list_version": ("Versie van de lokale lijst", "Version of the local list"),
    "fn_get_local_list_version_what": (
        "Vraagt welke versie van de lijst met laadpassen de laadpaal heeft.",
        "Asks which version of the list of cards the station holds.",
    ),
    "fx_obj_get_local_list_version": ("de vraag naar de versie", "the question for the version"),
    "fn_clear_cache": ("Onthouden laadpassen vergeten", "Forget remembered cards"),
    "fn_clear_cache_what": (
        "De laadpaal vergeet de laadpassen die hij onthouden had en vraagt ze voortaan weer aan ons.",
        "The station forgets the cards it remembered and asks us about them again.",
    ),
    "fx_obj_clear_cache": ("het vergeten van de laadpassen", "forgetting the cards"),
    "fn_trigger_message": ("Een bericht opvragen", "Ask for a message"),
    "fn_trigger_message_what": (
        "De laadpaal stuurt nu een bericht, bijvoorbeeld de status of de meterstanden.",
        "The station sends a message now, for example its status or meter values.",
    ),
    "fx_obj_trigger_message": ("het verzoek om een bericht", "the request for a message"),
    "fn_get_diagnostics": ("Logbestanden ophalen", "Fetch log files"),
    "fn_get_diagnostics_what": (
        "De laadpaal uploadt zijn logbestanden naar ons; het bestand is daarna te downloaden.",
        "The station uploads its log files to us; the file can be downloaded afterwards.",
    ),
    "fx_obj_get_diagnostics": ("het uploaden van de logbestanden", "the log upload"),
    "fn_update_firmware": ("Firmware bijwerken", "Update firmware"),
    "fn_update_firmware_what": (
        "De laadpaal haalt firmware op van het adres, installeert die en herstart; "
        "de voortgang wordt gevolgd.",
        "The station downloads firmware from the address, installs it and restarts; progress is tracked.",
    ),
    "fx_obj_update_firmware": ("het bijwerken van de firmware", "the firmware update"),
    "fn_get_composite_schedule": ("Geldende laadgrenzen", "Charging limits in force"),
    "fn_get_composite_schedule_what": (
        "De grenzen die de laadpaal de komende periode toepast, alle laadprofielen samen.",
        "The limits the station will apply over the coming period, all charging profiles combined.",
    ),
    "fx_obj_get_composite_schedule": ("het opvragen van de laadgrenzen", "the request for the limits"),
    "fn_get_charging_profiles": ("Laadprofielen opvragen", "Read charging profiles"),
    "fn_get_charging_profiles_what": (
        "Vraagt welke laadprofielen de laadpaal heeft; ze komen daarna binnen in de tijdlijn.",
        "Asks which charging profiles the station has; they arrive afterwards on the timeline.",
    ),
    "fx_obj_get_charging_profiles": ("het opvragen van de laadprofielen", "the request for the profiles"),
    "fn_clear_charging_profile": ("Laadprofielen verwijderen", "Remove charging profiles"),
    "fn_clear_charging_profile_what": (
        "Verwijdert laadprofielen op nummer, of op laadpunt en soort.",
        "Removes charging profiles by number, or by EVSE and kind.",
    ),
    "fx_obj_clear_charging_profile": ("het verwijderen van de laadprofielen", "the removal of the profiles"),
    "fn_set_charging_profile": ("Laadprofiel instellen", "Set a charging profile"),
    "fn_set_charging_profile_what": (
        "Installeert een laadprofiel: een grens aan vermogen of stroom in de tijd.",
        "Installs a charging profile: a limit on power or current over time.",
    ),
    "fx_obj_set_charging_profile": ("het laadprofiel", "the charging profile"),
    "fn_data_transfer": ("Leveranciersgegevens sturen", "Send vendor data"),
    "fn_data_transfer_what": (
        "Stuurt gegevens die alleen deze leverancier kent; het antwoord bevat die van de laadpaal.",
        "Sends data only this vendor knows; the answer carries the station's data.",
    ),
    "fx_obj_data_transfer": ("de leveranciersgegevens", "the vendor data"),
    "fn_raw": ("Ruw OCPP-bericht", "Raw OCPP message"),
    "fn_raw_what": (
        "Stuurt elk OCPP-bericht van de versie van de laadpaal, zoals opgegeven (voor experts).",
        "Sends any OCPP action of the station's version, as given (expert tooling).",
    ),
    "fx_obj_raw": ("het bericht", "the message"),
    # ---- the session page
    "fx_stop_session": ("Laadsessie stoppen", "Stop session"),
    "fx_stop_session_hint": (
        "U ziet eerst wat er gebeurt; pas na uw bevestiging stopt de laadsessie.",
        "You first see what will happen; the session stops only after you confirm.",
    ),
    # ---- the helpdesk's confirmation before stop and release
    "fx_hd_confirm_title": ("Bevestigen: stoppen en vrijgeven", "Confirm: stop and release"),
    "fx_hd_session_what": (
        "De laadpaal stopt de laadsessie van deze bestuurder: die laadt niet verder. Daarna wordt de "
        "kabel ontgrendeld; lukt dat niet, dan herstart de laadpaal zo nodig. Elke stap ziet u gebeuren.",
        "The station stops this driver's session: the driver charges no further. Then the cable is "
        "unlocked; if that fails, the station restarts if needed. You see each step as it happens.",
    ),
    "fx_hd_no_session_what": (
        "Er loopt hier geen laadsessie: de laadpaal ontgrendelt alleen de kabel, zo nodig na een herstart.",
        "No session is running here: the station only unlocks the cable, after a restart if needed.",
    ),
    "fx_hd_do_it": ("Ja, stoppen en vrijgeven", "Yes, stop and release"),
    "fx_hd_release_do_it": ("Ja, stekker vrijgeven", "Yes, release the plug"),
    "fx_hd_connector": ("Laadpunt", "EVSE"),
}
