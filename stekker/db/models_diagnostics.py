"""Tables of diagnostics (station management)."""

from __future__ import annotations
