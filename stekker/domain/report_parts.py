"""Whether a configuration report sent in parts arrived whole. Pure rules, no I/O.

A 2.0.1 station answers GetBaseReport/GetReport with NotifyReport messages numbered seqNo
0, 1, 2...; the last says `tbc` false. A part can be lost (a reconnect between parts) or
sent twice (a retransmission), so the report is whole only when the last part came and every
seqNo before it too, each counted once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: The most parts a report may have (seqNo 0..9999). Real reports have a few dozen; the cap
#: keeps what we record of one report, and the list of missing parts, small.
MAX_REPORT_PARTS = 10_000

#: requestId is stored as a 32-bit integer; the station echoes ours, which fits.
MAX_REQUEST_ID = 2**31 - 1


def report_part_problem(request_id: int, seq_no: int) -> str | None:
    """Why a NotifyReport part cannot be recorded, or None."""
    if not 0 <= seq_no < MAX_REPORT_PARTS:
        return f"seqNo {seq_no} is out of range: a report has at most {MAX_REPORT_PARTS} parts"
    if not -MAX_REQUEST_ID - 1 <= request_id <= MAX_REQUEST_ID:
        return f"requestId {request_id} is out of range (32-bit)"
    return None


@dataclass(frozen=True, slots=True)
class ReportParts:
    """The parts of one report that arrived: `received` (distinct seqNos, sorted), `last`
    (the seqNo of the part with tbc false, None while more are to come)."""

    received: tuple[int, ...]
    last: int | None

    @property
    def finished(self) -> bool:
        """The station said nothing follows."""
        return self.last is not None

    @property
    def missing(self) -> tuple[int, ...]:
        """The seqNos that never arrived, below the last part (or, while the report is still
        coming, below the highest part seen so far)."""
        top = self.last if self.last is not None else (max(self.received) if self.received else -1)
        have = set(self.received)
        return tuple(n for n in range(top + 1) if n not in have)

    @property
    def complete(self) -> bool:
        """Finished and nothing missing."""
        return self.finished and not self.missing


def add_part(received: Iterable[int], seq_no: int) -> list[int]:
    """The distinct seqNos after one more part arrived (a retransmitted part counts once)."""
    return sorted(set(received) | {seq_no})
