"""OCPI pagination: `offset`, `limit`, `date_from`, `date_to` in; `X-Total-Count`, `X-Limit` and
a `Link: <...>; rel="next"` header out (OCPI 2.2.1, transport and format)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from stekker.domain.iso_params import IsoDateTime
from stekker.ocpi.envelope import INVALID_PARAMETERS, OcpiError, ocpi_response

MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class PageQuery:
    """One page of a list: `limit` is already capped at what we serve (reported in X-Limit)."""

    offset: int
    limit: int
    date_from: datetime | None
    date_to: datetime | None


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # OCPI times are UTC
    return value.astimezone(UTC)


def page_query(
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    date_from: Annotated[IsoDateTime | None, Query(description="last_updated at or after (UTC)")] = None,
    date_to: Annotated[IsoDateTime | None, Query(description="last_updated before (UTC)")] = None,
) -> PageQuery:
    start, end = _utc(date_from, "date_from"), _utc(date_to, "date_to")
    if start is not None and end is not None and end < start:
        raise OcpiError(INVALID_PARAMETERS, "date_to is before date_from")
    return PageQuery(offset, min(limit or MAX_LIMIT, MAX_LIMIT), start, end)


def paged_response(request: Request, items: list[Any], total: int, page: PageQuery) -> JSONResponse:
    """The page in the envelope, with the headers a partner pages on."""
    headers = {"X-Total-Count": str(total), "X-Limit": str(page.limit)}
    following = page.offset + len(items)
    if items and following < total:
        url = request.url.include_query_params(offset=following, limit=page.limit)
        headers["Link"] = f'<{url}>; rel="next"'
    return ocpi_response(items, headers=headers)
