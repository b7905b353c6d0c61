"""Console texts of the real map on the stations list and of the layout on a phone (Dutch,
English): merged into `i18n.CATALOGUE`. The fallback drawing's texts (map_title, map_point,
...) are in texts_operations."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    # the button that opens the main menu on a phone
    "menu_toggle": ("Menu", "Menu"),
    "map_live_label": ("Kaart met de laadpalen", "Map of the stations"),
    "map_live_hint": (
        "Elke stip is een laadpaal in de kleur van zijn status; een cirkel met een getal is een groep "
        "laadpalen dicht bij elkaar, in de kleur van de dringendste status erin. Kies een groep om in te "
        "zoomen en een laadpaal voor zijn status en pagina.",
        "Each dot is a station in the colour of its status; a circle with a number is a group of stations "
        "close together, in the colour of the most urgent status in it. Choose a group to zoom in and a "
        "station for its status and page.",
    ),
    "map_colours": ("Kleuren op de kaart", "Colours on the map"),
    "map_station_label": ("Laadpaal {id}: {status}", "Station {id}: {status}"),
    "map_cluster_label": ("Groep van {count} laadpalen", "Group of {count} stations"),
    "map_open_station": ("Naar de laadpaal", "Open the station"),
    "map_close_popup": ("Sluiten", "Close"),
    # OpenStreetMap's credit line as its attribution guidelines word it in each language
    "map_osm_credit": ("© OpenStreetMap-bijdragers", "© OpenStreetMap contributors"),
    "map_zoom_in": ("Inzoomen", "Zoom in"),
    "map_zoom_out": ("Uitzoomen", "Zoom out"),
    "map_failed": (
        "De kaart kon niet laden (geen verbinding met de kaartserver); hieronder de eenvoudige kaart "
        "van de locaties.",
        "The map could not load (no connection to the map server); below is the simple map of the locations.",
    ),
    "map_live_truncated": (
        "De kaart toont de eerste {count} laadpalen; verfijn de filters om de rest te zien.",
        "The map shows the first {count} stations; narrow the filters to see the rest.",
    ),
}
