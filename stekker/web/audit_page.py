"""The audit log: who did what to which object, with filters.

For the roles that read `GET /api/audit` (`AUDIT`: the operator's managers, the client's
auditor; admin). Filters as the API's: actor (exact), action (a prefix, e.g. `user.`), object
type and id, and a period of whole days in home time. Paging is by key (the entry id, newest
first), so the millionth entry costs what the first does. Details are shown as escaped JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import ColumnElement, and_, select

from stekker.api.deps import AUDIT, Role
from stekker.db.models import AuditEntry
from stekker.services import redaction
from stekker.web import auth, i18n
from stekker.web.format import HOME
from stekker.web.templating import ConsoleRoute, language, render

router = APIRouter(prefix="/console/audit", route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
MAX_DETAIL = 4000


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    occurred_at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    result: str
    detail: str


def detail_text(detail: Any) -> str:
    """The detail as readable JSON (cut when very long); the template escapes it."""
    try:
        text = json.dumps(detail, ensure_ascii=False, indent=1, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(detail)
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL] + " …"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def filters(
    actor: str, action: str, object_type: str, object_id: str, since: date | None, until: date | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if actor:
        where.append(AuditEntry.actor == actor)
    if action:
        where.append(AuditEntry.action.startswith(action, autoescape=True))
    if object_type:
        where.append(AuditEntry.object_type == object_type)
    if object_id:
        where.append(AuditEntry.object_id == object_id)
    if since is not None:
        where.append(AuditEntry.occurred_at >= _utc(datetime.combine(since, time(0), tzinfo=HOME)))
    if until is not None:  # the whole last day
        end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=HOME)
        where.append(AuditEntry.occurred_at < _utc(end))
    return where


async def read_page(
    request: Request,
    where: list[ColumnElement[bool]],
    before: int | None,
    after: int | None,
    role: Role = Role.READ_ONLY,
) -> tuple[list[AuditRow], bool, bool]:
    """A page, newest first: (rows, older ones exist, newer ones exist)."""
    query = select(AuditEntry)
    if where:
        query = query.where(and_(*where))
    if after is not None:  # going back towards the newest
        query = query.where(AuditEntry.id > after).order_by(AuditEntry.id.asc())
    else:
        if before is not None:
            query = query.where(AuditEntry.id < before)
        query = query.order_by(AuditEntry.id.desc())
    async with auth.get_ctx(request).db() as db:
        found = list((await db.execute(query.limit(PAGE_SIZE + 1))).scalars())
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    if after is not None:
        found.reverse()
        older, newer = True, more
    else:
        older, newer = more, before is not None
    redactor = await redaction.redactor_for(auth.get_ctx(request), role)
    rows = []
    for e in found:
        # card numbers in a detail (or named by it as the object) as the reader's role may see them
        shown = redactor.value({"object_id": e.object_id, "detail": e.detail})
        rows.append(
            AuditRow(
                e.id,
                e.occurred_at,
                e.actor,
                e.action,
                e.object_type,
                shown["object_id"],
                e.result,
                detail_text(shown["detail"]),
            )
        )
    return rows, older, newer


_Text = Annotated[str, Query(max_length=100)]
_Day = Annotated[str, Query(max_length=10)]
_Key = Annotated[int | None, Query(ge=0, le=2**63 - 1)]


def _day(text: str) -> date | None:
    text = text.strip()
    return date.fromisoformat(text) if text else None


@router.get("", response_class=HTMLResponse)
async def audit_log(
    request: Request,
    user: auth.ConsoleUser = Depends(auth.console(*AUDIT)),
    actor: _Text = "",
    action: _Text = "",
    object_type: Annotated[str, Query(max_length=50)] = "",
    object_id: _Text = "",
    since: Annotated[str, Query(alias="from", max_length=10)] = "",
    until: Annotated[str, Query(alias="to", max_length=10)] = "",
    before: _Key = None,
    after: _Key = None,
) -> Response:
    shown = {
        "actor": actor.strip(),
        "action": action.strip(),
        "object_type": object_type.strip(),
        "object_id": object_id.strip(),
        "from": since.strip(),
        "to": until.strip(),
    }
    error = None
    try:
        start, end = _day(since), _day(until)
    except ValueError:
        error = i18n.translate(language(request), "aud_bad_date")
        start = end = None
    if error is None and start is not None and end is not None and start > end:
        error = i18n.translate(language(request), "aud_bad_period")
    if error is not None:
        return render(
            request, "audit.html", 400, user=user, rows=[], older=False, newer=False, f=shown, error=error
        )
    where = filters(shown["actor"], shown["action"], shown["object_type"], shown["object_id"], start, end)
    rows, older, newer = await read_page(request, where, before, after, user.role)
    return render(request, "audit.html", user=user, rows=rows, older=older, newer=newer, f=shown, error=None)
