"""Console texts for bulk jobs, diagnostics, tokens, users, audit log and exports
(Dutch, English): merged into `i18n.CATALOGUE`."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {}
