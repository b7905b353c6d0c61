"""The operator API's side of key-set paging (see stekker.services.paging): the `after`
parameter and the RFC 8288 `Link: <...>; rel="next"` header, the same on every list."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import HTTPException, Query, Request, Response

from stekker.services import paging

AFTER = (
    "Key-set paging: the `id` of the last row of the page before; this page starts right after "
    'it in the list\'s order. Follow the `Link: <...>; rel="next"` header rather than building it; '
    "no `Link`: the last page."
)
# the parameters the next page's URL must not carry over: the cursor replaces them
_POSITION = frozenset({"after", "offset", "before_id"})

LINK: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "Link": {
                "description": 'RFC 8288 `<url>; rel="next"`: the next page, with the same filters and '
                "limit (a URL relative to this one). Absent on the last page.",
                "schema": {"type": "string"},
            }
        }
    }
}


def after_id() -> Any:
    """The `after` query parameter of a list keyed by an integer id."""
    return Query(None, ge=1, le=paging.MAX_ID, description=AFTER)


def position(after: object | None, offset: int) -> None:
    """A page starts at a cursor or (the old way, kept for compatibility) at an offset, not both."""
    if after is not None and offset:
        raise HTTPException(422, "give after or offset, not both (after is the key-set cursor)")


def link_next(request: Request, response: Response, page: paging.Page[Any]) -> None:
    """Point at the next page, keeping every other query parameter; nothing on the last page."""
    if page.next_after is None:
        return
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in _POSITION]
    query = urlencode([*kept, ("after", str(page.next_after))])
    response.headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'


def old_offset() -> Any:
    """The `offset` parameter lists had before the cursor: still honoured, not for new clients."""
    return Query(0, ge=0, le=10_000_000, description="Old paging, kept for compatibility: use `after`.")
