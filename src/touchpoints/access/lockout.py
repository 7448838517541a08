"""Refusing sign-ins after too many failures: per user name and per client address.

After ``max_failures`` failed sign-ins within ``window`` seconds for one user name (whether
the name exists or not, so the refusal tells nothing about it), or from one client address,
further attempts are refused without checking the password until the oldest of those
failures is ``window`` seconds old: the answer is 429 with ``Retry-After``. A successful
sign-in clears the name's failures, not the address's. Kept in memory (a restart forgets),
bounded in size: a flood of made-up names cannot grow it without limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60
_MAX_ENTRIES = 50_000


class SignInLimiter:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], deque[float]] = {}

    @staticmethod
    def _keys(name: str | None, client: str | None) -> list[tuple[str, str]]:
        keys = []
        if name:
            keys.append(("name", name.strip().lower()[:200]))
        if client:
            keys.append(("client", client))
        return keys

    def retry_after(self, name: str | None, client: str | None) -> int | None:
        """Seconds until a sign-in for ``name`` from ``client`` is taken again; None: now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in self._keys(name, client):
                times = self._recent(key, now)
                if times is not None and len(times) >= self.max_failures:
                    wait = max(wait, times[-self.max_failures] + self.window - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, name: str | None, client: str | None) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= _MAX_ENTRIES:
                self._forget(now)
            for key in self._keys(name, client):
                times = self._failures.setdefault(key, deque(maxlen=self.max_failures))
                times.append(now)

    def succeeded(self, name: str | None) -> None:
        with self._lock:
            for key in self._keys(name, None):
                self._failures.pop(key, None)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is not None:
            while times and times[0] <= now - self.window:
                times.popleft()
            if not times:
                del self._failures[key]
                return None
        return times

    def _forget(self, now: float) -> None:
        """Drop what is past the window; if that is not enough, the oldest half."""
        for key in list(self._failures):
            self._recent(key, now)
        if len(self._failures) >= _MAX_ENTRIES:
            oldest = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in oldest[: len(oldest) // 2]:
                del self._failures[key]
