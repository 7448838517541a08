"""Rate limits per key: a token bucket for each key that makes requests.

Each key may make ``rate`` requests a second on average and ``burst`` at once: its bucket
holds up to ``burst`` tokens, refills at ``rate`` a second, and each request takes one. A
request that finds the bucket empty is refused with the seconds until a token is back (the
``Retry-After`` of the 429). Buckets are kept for keys that verified only (a key id, not a
secret), so their number is bounded by the keys there are. Keys that live only in the
server's memory (``ApiKey.ephemeral``: the CLI's token, the demo loader's) are never limited:
they are the server's own tools.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from touchpoints.access.keys import ApiKey


class RateLimiter:
    """Token buckets by key id; ``rate`` 0 means no limit."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key id → (tokens, when)

    def wait(self, key: ApiKey) -> int:
        """Take a token for ``key``: 0 if the request may go on, else the whole seconds to
        wait before one is back."""
        if self.rate <= 0 or key.ephemeral:
            return 0
        now = self._clock()
        with self._lock:
            tokens, when = self._buckets.get(key.id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - when) * self.rate)
            if tokens >= 1:
                self._buckets[key.id] = (tokens - 1, now)
                return 0
            self._buckets[key.id] = (tokens, now)
        return max(1, math.ceil((1 - tokens) / self.rate))

    def message(self, retry_after: int) -> str:
        return (
            f"this key sent more than {self.rate:g} requests a second (at most {self.burst} "
            f"at once); retry in {retry_after} s"
        )
