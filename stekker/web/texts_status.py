"""Console texts for station status, badges and each role's dashboard (Dutch, English):
merged into `i18n.CATALOGUE`."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    # the derived station status (stekker.domain.station_status); the OCPP words are in i18n
    "status_Offline": ("Offline", "Offline"),
    "status_Unknown": ("Onbekend", "Unknown"),
    "station_status": ("Status", "Status"),
    "station_status_hint": (
        "Eén status per laadpaal: offline, storing, aan het laden, bezet, gereserveerd, beschikbaar.",
        "One status per station: offline, faulted, charging, occupied, reserved, available.",
    ),
}
