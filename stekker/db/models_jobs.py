"""Tables of jobs (station management)."""

from __future__ import annotations
