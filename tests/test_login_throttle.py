"""The login throttle's rule (`stekker.domain.login_throttle`), with a clock moved by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stekker.domain.login_throttle import LoginThrottle, delay_after

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_delay_doubles_after_the_free_failures_up_to_the_cap() -> None:
    base, cap = timedelta(seconds=1), timedelta(minutes=15)
    delays = [delay_after(n, 3, base, cap).total_seconds() for n in range(13)]
    assert delays == [0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert delay_after(13, 3, base, cap) == cap and delay_after(10_000, 3, base, cap) == cap


def test_a_pair_waits_longer_after_each_failure_and_early_attempts_do_not_count() -> None:
    throttle = LoginThrottle(free_failures=3)
    for _ in range(3):
        assert throttle.admit("Admin", "10.0.0.1", T0) is None
    assert throttle.retry_after("admin", "10.0.0.1", T0) == 1
    assert throttle.admit("ADMIN", "10.0.0.1", at(0.5)) == 1  # refused, not counted
    assert throttle.admit("admin", "10.0.0.1", at(1)) is None  # the 4th failure
    assert throttle.retry_after("admin", "10.0.0.1", at(1)) == 2
    assert throttle.admit("admin", "10.0.0.1", at(3)) is None
    assert throttle.retry_after("admin", "10.0.0.1", at(3)) == 4
    # nobody else is slowed: not the same name from elsewhere, not another name from here
    assert throttle.admit("admin", "10.0.0.2", at(3)) is None
    assert throttle.admit("bob", "10.0.0.1", at(3)) is None
    # the right password clears the pair
    throttle.succeeded("admin", "10.0.0.1")
    assert throttle.retry_after("admin", "10.0.0.1", at(3)) is None


def test_an_address_is_slowed_across_names_and_a_success_does_not_clear_it() -> None:
    throttle = LoginThrottle(free_failures=3, address_free_failures=5)
    for n in range(5):
        assert throttle.admit(f"user{n}", "10.0.0.9", T0) is None
    assert throttle.admit("user99", "10.0.0.9", T0) == 1
    assert throttle.admit("user99", "10.0.0.8", T0) is None
    assert throttle.admit("mine", "10.0.0.9", at(1)) is None  # the attacker's own account...
    throttle.succeeded("mine", "10.0.0.9")  # ...logs in: only that attempt is taken back
    assert throttle.retry_after("user99", "10.0.0.9", at(1)) == 1


def test_quiet_records_are_forgotten_and_memory_is_bounded() -> None:
    throttle = LoginThrottle(free_failures=1, max_delay=timedelta(seconds=60))
    assert throttle.admit("a", "10.0.0.1", T0) is None
    assert throttle.retry_after("a", "10.0.0.1", T0) == 1
    assert throttle.retry_after("a", "10.0.0.1", at(120)) is None  # forgotten after 2 x max_delay
    assert throttle._pairs == {} and throttle._addresses == {}
    bounded = LoginThrottle(max_keys=3)
    for n in range(10):
        bounded.admit(f"user{n}", f"10.0.0.{n}", T0)
    assert len(bounded._pairs) == 3 and len(bounded._addresses) == 3
    assert ("user9", "10.0.0.9") in bounded._pairs  # the newest stay
