"""A tariff version in force without the municipality's approval is recognised as such."""

from __future__ import annotations

import pytest

from stekker.domain.tariff_approval import never_approved, was_approved

APPROVED = [(None, "draft"), ("draft", "submitted"), ("submitted", "scheduled")]


def test_the_normal_workflow_is_approved() -> None:
    assert was_approved(APPROVED)
    for status in ("scheduled", "active", "superseded"):
        assert not never_approved(status, [*APPROVED, ("scheduled", status)])


def test_the_demo_tariff_went_straight_to_active() -> None:
    steps = [(None, "active")]
    assert not was_approved(steps)
    assert never_approved("active", steps)
    assert never_approved("superseded", [*steps, ("active", "superseded")])


@pytest.mark.parametrize("status", ["draft", "submitted", "rejected", "withdrawn"])
def test_versions_that_never_price_need_no_approval(status: str) -> None:
    assert not never_approved(status, [(None, status)])


def test_other_steps_are_not_an_approval() -> None:
    # scheduled without having been submitted (a repair), or a rejected proposal
    assert not was_approved([(None, "scheduled")])
    assert not was_approved([("draft", "submitted"), ("submitted", "rejected")])
    assert not was_approved([])
