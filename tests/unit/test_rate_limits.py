"""Per-key token buckets (access/limits.py): burst, refill, Retry-After, keys apart."""

from __future__ import annotations

from datetime import UTC, datetime

from touchpoints.access.keys import ApiKey
from touchpoints.access.limits import RateLimiter


def _key(key_id: str, ephemeral: bool = False) -> ApiKey:
    return ApiKey(key_id, "read", "k", "tp_read_0000", datetime.now(UTC), ephemeral=ephemeral)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_may_burst_then_waits_for_its_rate() -> None:
    clock = _Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    key = _key("key_a")
    assert [limiter.wait(key) for _ in range(3)] == [0, 0, 0]
    assert limiter.wait(key) == 1  # half a second to the next token: one whole second
    clock.now += 0.5
    assert limiter.wait(key) == 0
    assert limiter.wait(key) >= 1


def test_retry_after_is_the_whole_seconds_to_the_next_token() -> None:
    clock = _Clock()
    limiter = RateLimiter(rate=0.1, burst=1, clock=clock)
    key = _key("key_a")
    assert limiter.wait(key) == 0
    assert limiter.wait(key) == 10


def test_keys_have_their_own_buckets_and_ephemeral_keys_none() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=_Clock())
    assert limiter.wait(_key("key_a")) == 0
    assert limiter.wait(_key("key_a")) > 0
    assert limiter.wait(_key("key_b")) == 0
    cli = _key("cli", ephemeral=True)
    assert all(limiter.wait(cli) == 0 for _ in range(100))


def test_rate_zero_means_no_limit() -> None:
    limiter = RateLimiter(rate=0, burst=1, clock=_Clock())
    assert all(limiter.wait(_key("key_a")) == 0 for _ in range(100))
