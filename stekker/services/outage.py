"""One log line when the database becomes unreachable and one when it is back, instead of a
traceback per message (an outage of 20 s logged 697 of them)."""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError


def database_unavailable(exc: BaseException) -> bool:
    """Whether a failure says the database cannot be reached (refused or dropped connection,
    timeout), as opposed to a statement it refused."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current, OSError | TimeoutError | OperationalError | InterfaceError | DisconnectionError
        ):
            return True
        if getattr(current, "connection_invalidated", False):
            return True
        current = current.__cause__ or current.__context__
    return False


class OutageLog:
    """Logs the start of an outage (once, without traceback) and its end with how many
    operations failed meanwhile. `what` names who noticed it, e.g. "OCPP handlers"."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self._log = logger
        self.since: float | None = None  # monotonic time of the first failure
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            self._log.warning("%s: the database is unavailable (%s: %s)", self.what, type(exc).__name__, exc)

    def failed_or_log(self, exc: BaseException, message: str, *args: object) -> None:
        """For a loop that retries: an unreachable database counts toward the outage (one
        line for all of it); any other failure is a bug worth its traceback."""
        if database_unavailable(exc):
            self.failed(exc)
        else:
            self._log.error(message, *args, exc_info=exc)

    def ok(self) -> None:
        if self.since is None:
            return
        self._log.warning(
            "%s: the database is back after %.1f s; %d operations failed meanwhile",
            self.what,
            time.monotonic() - self.since,
            self.failures,
        )
        self.since = None
        self.failures = 0
