"""Tables of users (station management)."""

from __future__ import annotations
