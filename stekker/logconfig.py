"""Logging: one line per event, UTC timestamps, level from STEKKER_LOG_LEVEL.

Two forms (STEKKER_LOG_FORMAT): `text` for a person at a terminal, and `json`, one JSON object
per line for a log collector (Loki, Elasticsearch, journald with a JSON parser):

    {"ts": "2026-12-07T22:01:33.120Z", "level": "WARNING", "logger": "stekker.ocpp.connection",
     "msg": "...", "node_id": "gw1-4711-ab12", "station_id": "NL*ABC*E1", "correlation_id": "..."}

`station_id` and `correlation_id` come from context variables: the gateway sets the station's
id for everything its connection's task logs (`STATION_ID`), the API sets a correlation id per
request (`CorrelateRequests`), the OCPI edge has its own (X-Correlation-ID of the partner's
request), and a remote command carries one across processes (`CORRELATION_ID`). Tasks started
inside inherit them (asyncio copies the context).

A log line never fails: arguments that do not format, or values JSON cannot hold, end up as
text, never as an exception in the code that logged.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

#: the station whose connection (or work) this task serves
STATION_ID: ContextVar[str | None] = ContextVar("stekker_station_id", default=None)
#: the request or remote command this task works for (follows a command across processes)
CORRELATION_ID: ContextVar[str | None] = ContextVar("stekker_correlation_id", default=None)

FORMATS = ("text", "json")

# what every LogRecord has: anything else on a record came from `extra=` and goes into the line
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
}


def _other_correlation() -> Callable[[], str | None]:
    """The OCPI edge's correlation id (X-Correlation-ID of the partner's request), when in force.
    Imported late: logging is set up before the rest of the application is imported."""
    try:
        from stekker.services.partner_http import current_correlation
    except Exception:  # pragma: no cover - a broken import must not break logging
        return lambda: None
    return current_correlation


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring); `node_id` names this process."""

    def __init__(self, node_id: str | None = None) -> None:
        super().__init__()
        self.node_id = node_id
        self._ocpi_correlation = _other_correlation()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": _message(record),
        }
        if self.node_id is not None:
            line["node_id"] = self.node_id
        station = STATION_ID.get() or getattr(record, "station_id", None)
        if station is not None:
            line["station_id"] = station
        correlation = CORRELATION_ID.get() or getattr(record, "correlation_id", None)
        if correlation is None:
            correlation = self._ocpi_correlation()
        if correlation is not None:
            line["correlation_id"] = correlation
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in line:
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        try:
            return orjson.dumps(line, default=_text).decode()
        except Exception:  # e.g. a key that is not a string, a value whose str() raises
            safe = {str(k): _text(v) for k, v in line.items()}
            return orjson.dumps(safe).decode()


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # "%d" given a word, too few arguments: the words are still worth having
        return f"{_text(record.msg)} (arguments that did not format: {_text(record.args)})"


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return f"<unprintable {type(value).__name__}>"


def setup_logging(level: str, fmt: str = "text", node_id: str | None = None) -> None:
    """Log at `level` to stderr in `fmt` ("text" or "json"); `node_id` goes into every JSON line.

    With json, run uvicorn with `log_config=None`, so that its lines come here too."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: choose text or json")
    logging.Formatter.converter = time.gmtime
    if fmt == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter(node_id))
        logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    else:
        logging.basicConfig(
            level=level.upper(),
            format="%(asctime)sZ %(levelname)-7s %(name)s: %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
            force=True,
        )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


# ---- a correlation id per HTTP request -------------------------------------------------------------

_MAX_ID = 128
_OWN_IDS = ("/ocpi",)  # the OCPI edge keeps the partner's ids itself (stekker.ocpi.request_ids)


def _given_id(scope: Scope) -> str | None:
    """The caller's X-Correlation-ID when it is one we may log (short, printable ASCII)."""
    for name, value in scope.get("headers", ()):
        if name == b"x-correlation-id":
            if 0 < len(value) <= _MAX_ID and all(0x21 <= b <= 0x7E for b in value):
                return bytes(value).decode("ascii")
            return None
    return None


class CorrelateRequests:
    """ASGI middleware: every line logged while an HTTP request is handled (and by the tasks it
    starts, e.g. a remote command) carries one correlation id: the caller's X-Correlation-ID
    when it sent a usable one, else a new one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(_OWN_IDS):
            await self.app(scope, receive, send)
            return
        token = CORRELATION_ID.set(_given_id(scope) or uuid.uuid4().hex)
        try:
            await self.app(scope, receive, send)
        finally:
            CORRELATION_ID.reset(token)
