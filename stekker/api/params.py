"""Query parameter types of the operator API that pydantic alone would take too loosely."""

from __future__ import annotations

from stekker.domain.iso_params import IsoAwareDateTime, IsoDateTime

__all__ = ["IsoAwareDateTime", "IsoDateTime"]
