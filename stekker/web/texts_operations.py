"""Console texts for stations' configuration, timeline and remote functions; the helpdesk screen; the map
(Dutch, English): merged into `i18n.CATALOGUE`."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {}
