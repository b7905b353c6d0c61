"""Console texts for sessions, CDRs and tariffs
(Dutch, English): merged into `i18n.CATALOGUE`."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {}
