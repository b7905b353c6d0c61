"""Whether a tariff version took effect with the municipality's approval. Pure rules, no I/O.

Every tariff version that prices sessions should have gone draft → submitted → scheduled:
the step submitted → scheduled is the municipality's approval. A version can be in force
without it only when it was put there outside the workflow (`stekker demo` seeds an active
tariff; an import or a database repair could do the same). Such a version still prices
sessions, so hiding it would be worse than showing it: everywhere a tariff in force is shown
(console, API, CLI, the municipality's dashboard) it says that it was never approved.
"""

from __future__ import annotations

from collections.abc import Iterable

#: the statuses of a version that prices (or priced, or will price) sessions
IN_FORCE = frozenset({"scheduled", "active", "superseded"})
#: the workflow step that is the municipality's approval (from, to)
APPROVAL_STEP = ("submitted", "scheduled")


def was_approved(steps: Iterable[tuple[str | None, str]]) -> bool:
    """True when a version's transitions (from_status, to_status) include the approval."""
    return any((before, after) == APPROVAL_STEP for before, after in steps)


def never_approved(status: str, steps: Iterable[tuple[str | None, str]]) -> bool:
    """True for a version that is (or was, or is about to be) in force without approval;
    a draft, a proposal, a rejected or withdrawn version needs no approval to be what it is."""
    return status in IN_FORCE and not was_approved(steps)
