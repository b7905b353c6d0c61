"""Key-set paging: one shape for every operator-API list that can grow.

A page is `limit` rows in the list's fixed order (newest first, or by id); the cursor that
continues it is the last row's `id`. The next page holds the rows strictly after that row in
the list's order, so rows inserted between fetches (new ones land at the head of a
newest-first list) neither repeat nor shift the pages, as offsets would. One row past the
page (`PEEK`) tells whether there is a next page at all, so the last page has no cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")
Key = int | str

MAX_ID = 2**53  # ids are JSON numbers: beyond this a client cannot hold one exactly
PEEK = 1  # rows read past the page: is there a next one?


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """The rows of one page, and the cursor of the next page (None: this is the last)."""

    rows: list[T]
    next_after: Key | None


def cut(rows: Sequence[T], limit: int, key: Callable[[T], Key]) -> Page[T]:
    """`rows` read with `limit + PEEK`: the page, and the cursor if more rows followed."""
    page = list(rows[:limit])
    more = len(rows) > limit and bool(page)
    return Page(page, key(page[-1]) if more else None)


def by_id(
    query: Select[Any],
    column: InstrumentedAttribute[Any],
    after: Key | None,
    *,
    newest_first: bool,
    limit: int,
) -> Select[Any]:
    """`query` ordered by `column` (unique), continuing after the row whose key is `after`,
    reading `limit + PEEK` rows."""
    if after is not None:
        query = query.where(column < after if newest_first else column > after)
    order = column.desc() if newest_first else column.asc()
    return query.order_by(order).limit(limit + PEEK)
