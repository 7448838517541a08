"""Sign-in limits: after ``max_failures`` failures within the window, for a name (known or
not) or from an address, sign-ins wait until the oldest of them leaves the window; a success
clears the name's failures but not the address's."""

from __future__ import annotations

from touchpoints.access.lockout import SignInLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_name_waits_until_its_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    limits = SignInLimiter(max_failures=3, window=60, clock=clock)
    for _ in range(3):
        assert limits.retry_after("anna", None) is None
        limits.failed("anna", None)
        clock.now += 10
    assert limits.retry_after("ANNA ", None) == 30  # names in any letter case
    assert limits.retry_after("bert", None) is None
    clock.now += 30
    assert limits.retry_after("anna", None) is None


def test_an_address_is_limited_across_names_and_a_success_clears_only_the_name() -> None:
    clock = Clock()
    limits = SignInLimiter(max_failures=3, window=60, clock=clock)
    for name in ("anna", "bert", "carla"):
        limits.failed(name, "203.0.113.9")
    assert limits.retry_after("dora", "203.0.113.9") == 60
    assert limits.retry_after("dora", "198.51.100.1") is None
    limits.failed("anna", "198.51.100.1")
    limits.failed("anna", "198.51.100.2")
    limits.succeeded("anna")
    assert limits.retry_after("anna", "198.51.100.3") is None
    assert limits.retry_after("anna", "203.0.113.9") == 60
