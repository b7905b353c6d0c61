"""The console's two languages: Dutch (default) and English, chosen by the user with
`?lang=` (remembered in a cookie).

The catalogue is a dict of message keys to their Dutch and English text, kept in one module
so a translator sees every sentence at once. Templates call `t("key", name=...)`; a key
missing from the catalogue shows the key itself (visible in review, never a crash), and a
test checks that every key used in the templates is in the catalogue in both languages.
"""

from __future__ import annotations

from typing import Literal

from stekker.web import (
    texts_admin,
    texts_events,
    texts_export,
    texts_functions,
    texts_map,
    texts_operations,
    texts_public,
    texts_reconcile,
    texts_records,
    texts_status,
)

Lang = Literal["nl", "en"]
LANGUAGES: tuple[Lang, ...] = ("nl", "en")
DEFAULT: Lang = "nl"
COOKIE = "stekker_lang"

CATALOGUE: dict[str, tuple[str, str]] = {
    # layout
    "skip": ("Naar de inhoud", "Skip to content"),
    "app_name": ("Stekker", "Stekker"),
    "console": ("Beheer", "Console"),
    "nav_label": ("Hoofdmenu", "Main menu"),
    "nav_dashboard": ("Overzicht", "Dashboard"),
    "nav_stations": ("Laadpalen", "Stations"),
    "nav_users": ("Gebruikers", "Users"),
    "nav_helpdesk": ("Helpdesk", "Helpdesk"),
    "nav_sessions": ("Laadsessies", "Sessions"),
    "nav_cdrs": ("Afrekeningen", "CDRs"),
    "nav_tariffs": ("Tarieven", "Tariffs"),
    "nav_jobs": ("Bulktaken", "Bulk jobs"),
    "nav_tokens": ("Laadpassen", "Tokens"),
    "nav_audit": ("Logboek", "Audit log"),
    "nav_exports": ("Exporteren", "Export"),
    "language": ("Taal", "Language"),
    "logged_in_as": ("Ingelogd als {name} ({role})", "Logged in as {name} ({role})"),
    "logout": ("Uitloggen", "Log out"),
    "footer": ("Stekker, open-source laadpaalbeheer", "Stekker, open-source charge point management"),
    # roles
    "role_admin": ("beheerder", "admin"),
    "role_operator": ("exploitant", "operator"),
    "role_helpdesk": ("helpdesk", "helpdesk"),
    "role_municipality": ("gemeente", "municipality"),
    "role_read-only": ("alleen lezen", "read-only"),
    # login
    "login_title": ("Inloggen", "Log in"),
    "username": ("Gebruikersnaam", "User name"),
    "password": ("Wachtwoord", "Password"),
    "login_button": ("Inloggen", "Log in"),
    "login_failed": ("Onjuiste gebruikersnaam of wachtwoord.", "Wrong user name or password."),
    "login_locked": (
        "Te veel mislukte pogingen. Probeer het over {minutes} minuten opnieuw.",
        "Too many failed attempts. Try again in {minutes} minutes.",
    ),
    "login_wait": (
        "Te veel mislukte pogingen. Probeer het over {seconds} seconden opnieuw.",
        "Too many failed attempts. Try again in {seconds} seconds.",
    ),
    "login_disabled": (
        "Dit account is uitgeschakeld. Vraag een beheerder om het weer aan te zetten.",
        "This account is disabled. Ask an admin to enable it.",
    ),
    "login_no_users": (
        "Er zijn nog geen gebruikers. Maak de eerste aan met: {command} user add NAAM --role admin",
        "There are no users yet. Create the first with: {command} user add NAME --role admin",
    ),
    "login_missing": ("Vul gebruikersnaam en wachtwoord in.", "Fill in user name and password."),
    "logged_out": ("U bent uitgelogd.", "You are logged out."),
    "session_expired": ("Uw sessie is verlopen; log opnieuw in.", "Your session expired; log in again."),
    # errors
    "error_title": ("Er ging iets mis", "Something went wrong"),
    "forbidden": (
        "U mag deze pagina niet bekijken met de rol {role}.",
        "Your role ({role}) may not see this page.",
    ),
    "forbidden_title": ("Geen toegang", "No access"),
    "csrf_failed": (
        "Het formulier was verlopen of kwam niet van deze site. "
        "Laad de pagina opnieuw en probeer het nog eens.",
        "The form expired or did not come from this site. Reload the page and try again.",
    ),
    "not_found": ("Niet gevonden", "Not found"),
    "bad_request": ("Ongeldige invoer: {detail}", "Invalid input: {detail}"),
    "back_home": ("Naar het overzicht", "Back to the dashboard"),
    # dashboard
    "dashboard_title": ("Overzicht", "Dashboard"),
    "live_hint": ("Deze pagina werkt zichzelf bij.", "This page updates itself."),
    "stations_online": ("Online", "Online"),
    "stations_offline": ("Offline", "Offline"),
    "stations_faulted": ("Storing", "Faulted"),
    "stations_total": ("Laadpalen", "Stations"),
    "active_sessions": ("Actieve laadsessies", "Active sessions"),
    "energy_today": ("Energie vandaag", "Energy today"),
    "energy_today_hint": ("sessies die vandaag begonnen", "sessions started today"),
    "offline_long": (
        "Langer dan {minutes} minuten offline",
        "Offline longer than {minutes} minutes",
    ),
    "offline_since": ("Offline sinds", "Offline since"),
    "never_connected": ("nooit verbonden", "never connected"),
    "none": ("Geen.", "None."),
    "failed_jobs": ("Bulkopdrachten met fouten (7 dagen)", "Bulk jobs with failures (7 days)"),
    "job": ("Opdracht", "Job"),
    "function": ("Functie", "Function"),
    "failures": ("Mislukt", "Failed"),
    "created": ("Aangemaakt", "Created"),
    "dead_deliveries": ("Niet afgeleverde OCPI-berichten", "Undelivered OCPI messages"),
    "partner": ("Partner", "Partner"),
    "count": ("Aantal", "Count"),
    "updated_at": ("Bijgewerkt om {time}", "Updated at {time}"),
    # stations
    "stations_title": ("Laadpalen", "Stations"),
    "filters": ("Filters", "Filters"),
    "search": ("Zoeken", "Search"),
    "search_hint": ("laadpaal-id of EVSE-id", "station id or EVSE id"),
    "location": ("Locatie", "Location"),
    "location_hint": ("naam, adres of plaats", "name, address or city"),
    "status": ("Status", "Status"),
    "any": ("Alle", "Any"),
    "apply": ("Toepassen", "Apply"),
    "station": ("Laadpaal", "Station"),
    "connection": ("Verbinding", "Connection"),
    "last_seen": ("Laatst gezien", "Last seen"),
    "evses": ("EVSE's", "EVSEs"),
    "results": ("{count} laadpalen", "{count} stations"),
    "no_results": ("Geen laadpalen gevonden.", "No stations found."),
    "next_page": ("Volgende", "Next"),
    "previous_page": ("Vorige", "Previous"),
    "first_page": ("Eerste", "First"),
    "paging": ("Paginering", "Paging"),
    # station detail
    "station_title": ("Laadpaal {id}", "Station {id}"),
    "details": ("Gegevens", "Details"),
    "vendor_model": ("Merk en type", "Vendor and model"),
    "firmware": ("Firmware", "Firmware"),
    "ocpp_version": ("OCPP-versie", "OCPP version"),
    "connectors": ("Aansluitingen", "Connectors"),
    "connector": ("Aansluiting", "Connector"),
    "standard": ("Stekker", "Plug"),
    "assumed": ("aangenomen", "assumed"),
    "assumed_hint": (
        "Niet door het laadstation gemeld: vul stekker en vermogen in",
        "Not reported by the station: fill in plug and power",
    ),
    "power": ("Vermogen", "Power"),
    "recent_status": ("Recente statusmeldingen", "Recent status notifications"),
    "time": ("Tijd", "Time"),
    "error_code": ("Foutcode", "Error code"),
    "recent_sessions": ("Recente laadsessies", "Recent sessions"),
    "session": ("Sessie", "Session"),
    "started": ("Begonnen", "Started"),
    "stopped": ("Gestopt", "Stopped"),
    "energy": ("Energie", "Energy"),
    "public_page": ("Openbare pagina", "Public page"),
    # statuses (OCPP)
    "status_Available": ("Beschikbaar", "Available"),
    "status_Occupied": ("Bezet", "Occupied"),
    "status_Charging": ("Aan het laden", "Charging"),
    "status_Preparing": ("Wordt voorbereid", "Preparing"),
    "status_SuspendedEV": ("Gepauzeerd door de auto", "Paused by the car"),
    "status_SuspendedEVSE": ("Gepauzeerd door de laadpaal", "Paused by the station"),
    "status_Finishing": ("Wordt afgerond", "Finishing"),
    "status_Reserved": ("Gereserveerd", "Reserved"),
    "status_Unavailable": ("Niet beschikbaar", "Unavailable"),
    "status_Faulted": ("Storing", "Faulted"),
    "status_unknown": ("Onbekend", "Unknown"),
    "status_online": ("Online", "Online"),
    "status_offline": ("Offline", "Offline"),
    # public page
    "evse_title": ("Laadpunt {id}", "Charge point {id}"),
    "current_status": ("Status nu", "Status now"),
    "station_offline_public": (
        "Deze laadpaal heeft nu geen verbinding met ons systeem. "
        "Laden kan misschien toch; lukt het niet, bel de helpdesk.",
        "This station is not connected to our system right now. "
        "Charging may still work; if it does not, call the helpdesk.",
    ),
    "price": ("Prijs", "Price"),
    "price_now": ("Wat laden hier nu kost", "What charging here costs now"),
    "price_table": ("Prijzen in cijfers", "Prices in numbers"),
    "price_item": ("Onderdeel", "Item"),
    "price_incl": ("Incl. btw", "Incl. VAT"),
    "price_excl": ("Excl. btw", "Excl. VAT"),
    "kind_energy": ("Energie", "Energy"),
    "kind_charging_time": ("Laadtijd", "Charging time"),
    "kind_parking_time": ("Parkeertijd", "Parking time"),
    "kind_start_fee": ("Starttarief", "Start fee"),
    "unit_kWh": ("per kWh", "per kWh"),
    "unit_hour": ("per uur", "per hour"),
    "unit_session": ("per sessie", "per session"),
    "when": ("Wanneer", "When"),
    "when_always": ("altijd", "always"),
    "price_change": ("Vanaf {date} verandert de prijs:", "From {date} the price changes:"),
    "opening_hours": ("Openingstijden", "Opening hours"),
    "open_24_7": (
        "Altijd open (24 uur per dag, 7 dagen per week).",
        "Always open (24 hours a day, 7 days a week).",
    ),
    "hours_unknown": ("Niet bekend.", "Not known."),
    "helpdesk": ("Helpdesk", "Helpdesk"),
    "helpdesk_call": ("Bel de helpdesk: {phone}", "Call the helpdesk: {phone}"),
    "helpdesk_unknown": (
        "Het telefoonnummer van de helpdesk staat op de laadpaal.",
        "The helpdesk's phone number is on the station.",
    ),
    "address": ("Adres", "Address"),
    "evse_not_found": (
        "Dit laadpunt bestaat niet. Controleer het nummer op de sticker.",
        "There is no such charge point. Check the number on the sticker.",
    ),
    "weekday_1": ("maandag", "Monday"),
    "weekday_2": ("dinsdag", "Tuesday"),
    "weekday_3": ("woensdag", "Wednesday"),
    "weekday_4": ("donderdag", "Thursday"),
    "weekday_5": ("vrijdag", "Friday"),
    "weekday_6": ("zaterdag", "Saturday"),
    "weekday_7": ("zondag", "Sunday"),
    # users
    "users_title": ("Gebruikers", "Users"),
    "display_name": ("Naam", "Name"),
    "role": ("Rol", "Role"),
    "active": ("Actief", "Active"),
    "yes": ("ja", "yes"),
    "no": ("nee", "no"),
    "last_login": ("Laatst ingelogd", "Last login"),
}


def _merge(*areas: dict[str, tuple[str, str]]) -> None:
    """Each area of the console keeps its texts in a module of its own; a key may exist once."""
    for texts in areas:
        clash = sorted(set(texts) & set(CATALOGUE))
        if clash:
            raise RuntimeError(f"console text keys defined twice: {', '.join(clash)}")
        CATALOGUE.update(texts)


_merge(texts_operations.TEXTS, texts_records.TEXTS, texts_admin.TEXTS)
_merge(texts_public.TEXTS)
_merge(texts_functions.TEXTS)
_merge(texts_status.TEXTS)
_merge(texts_map.TEXTS)
_merge(texts_events.TEXTS)
_merge(texts_export.TEXTS)
_merge(texts_reconcile.TEXTS)


def pick(value: str | None) -> Lang:
    """A supported language from a query parameter or cookie value, else the default."""
    return "en" if value == "en" else DEFAULT if value != "nl" else "nl"


def translate(lang: Lang, key: str, **values: object) -> str:
    """The message in `lang` with `{name}` placeholders filled; the key itself if unknown."""
    texts = CATALOGUE.get(key)
    if texts is None:
        return key
    text = texts[0] if lang == "nl" else texts[1]
    return text.format(**values) if values else text
