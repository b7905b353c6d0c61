"""Console texts for station status, badges and each role's dashboard (Dutch, English):
merged into `i18n.CATALOGUE`."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    # the derived station status (stekker.domain.station_status); the OCPP words are in i18n
    "status_Offline": ("Offline", "Offline"),
    "status_Unknown": ("Onbekend", "Unknown"),
    "station_status": ("Status", "Status"),
    "st_status_stale": (
        "De laadpaal is offline: de statussen van de aansluitingen hieronder zijn de laatst gemelde.",
        "The station is offline: the connector statuses below are the last it reported.",
    ),
    "station_status_hint": (
        "Eén status per laadpaal: offline, storing, aan het laden, bezet, gereserveerd, beschikbaar.",
        "One status per station: offline, faulted, charging, occupied, reserved, available.",
    ),
    # what waits for the user's role (stekker.web.waiting), first on the dashboard
    "wait_title": ("Wacht op u", "Waiting for you"),
    "wait_nothing": ("Er wacht nu niets op u.", "Nothing waits for you now."),
    "wait_more": ("en nog {count}", "and {count} more"),
    "wait_in_api": ("(te regelen via de API)", "(handled through the API)"),
    "wait_faulted_one": ("1 laadpaal in storing", "1 station faulted"),
    "wait_faulted_many": ("{count} laadpalen in storing", "{count} stations faulted"),
    "wait_problems_one": ("1 probleemmelding van een bestuurder", "1 problem reported by a driver"),
    "wait_problems_many": (
        "{count} probleemmeldingen van bestuurders",
        "{count} problems reported by drivers",
    ),
    "wait_offline_one": ("1 laadpaal offline", "1 station offline"),
    "wait_offline_many": ("{count} laadpalen offline", "{count} stations offline"),
    "wait_tariff_decide_one": ("1 tarief wacht op uw besluit", "1 tariff awaits your decision"),
    "wait_tariff_decide_many": (
        "{count} tarieven wachten op uw besluit",
        "{count} tariffs await your decision",
    ),
    "wait_tariff_unapproved_one": (
        "1 tarief geldt zonder goedkeuring van de gemeente",
        "1 tariff is in force without the municipality's approval",
    ),
    "wait_tariff_unapproved_many": (
        "{count} tarieven gelden zonder goedkeuring van de gemeente",
        "{count} tariffs are in force without the municipality's approval",
    ),
    "wait_jobs_failed_one": (
        "1 bulktaak met mislukte laadpalen (afgelopen 7 dagen)",
        "1 bulk job with failed stations (last 7 days)",
    ),
    "wait_jobs_failed_many": (
        "{count} bulktaken met mislukte laadpalen (afgelopen 7 dagen)",
        "{count} bulk jobs with failed stations (last 7 days)",
    ),
    "wait_ocpi_dead_one": ("1 OCPI-bericht aan een partner opgegeven", "1 OCPI push to a partner given up"),
    "wait_ocpi_dead_many": (
        "{count} OCPI-berichten aan partners opgegeven",
        "{count} OCPI pushes to partners given up",
    ),
    "wait_users_new_one": (
        "1 gebruiker heeft nog nooit ingelogd",
        "1 user has never logged in",
    ),
    "wait_users_new_many": (
        "{count} gebruikers hebben nog nooit ingelogd",
        "{count} users have never logged in",
    ),
    "wait_partners_pending_one": (
        "1 roamingpartner heeft de registratie nog niet afgerond",
        "1 roaming partner has not finished registering",
    ),
    "wait_partners_pending_many": (
        "{count} roamingpartners hebben de registratie nog niet afgerond",
        "{count} roaming partners have not finished registering",
    ),
    # a tariff in force without approval (stekker.domain.tariff_approval)
    "tariff_never_approved": ("nooit goedgekeurd", "never approved"),
    "tariff_never_approved_note": (
        "Deze versie bepaalt de prijs van laadsessies, maar de gemeente heeft haar nooit goedgekeurd.",
        "This version prices sessions, but the municipality never approved it.",
    ),
}
