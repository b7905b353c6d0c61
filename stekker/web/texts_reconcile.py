"""Console texts for sessions reconciled when a station (re)connects (Dutch, English): the
station timeline's events of `stekker.services.reconcile`; merged into `i18n.CATALOGUE`."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    "w_ev_session_reconciled": (
        "laadsessie {session} afgesloten: loopt niet meer op de laadpaal",
        "session {session} closed: no longer running at the station",
    ),
    "w_ev_session_stop_reported_late": (
        "laadsessie {session}: de laadpaal meldde later het echte einde, dat nu geldt",
        "session {session}: the station later reported its real end, which now counts",
    ),
}
