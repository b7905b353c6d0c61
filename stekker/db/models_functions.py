"""Tables of functions (station management)."""

from __future__ import annotations
