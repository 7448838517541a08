"""Keeping audiences live: a thread of the server that evaluates the persons the identity
map reports changed (each written batch of events, a merge, an unmerge) at once, and
everyone on a schedule, every ``audiences_interval_minutes`` and just after each midnight
(UTC), so an audience with a window of days never goes stale. It also drops entries and
exits older than ``audiences_keep_days``.

It evaluates beside the writer: the collector answers from the write-ahead log and the
writer only sets an event, so evaluating never slows ingest. While events keep coming, each
live turn waits as long as the last one took (at least 50 ms), taking together what arrived
meanwhile: evaluating uses at most about half of one core, however busy the collector.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from touchpoints.activate.audiences.evaluation import Evaluation
from touchpoints.warehouse import utc_now

log = logging.getLogger("touchpoints.audiences")

_SETTLE = 0.05  # seconds to let a burst of batches arrive before evaluating them together


def next_full(now: datetime, interval_minutes: float) -> datetime:
    """When everyone is evaluated next: after the interval (none: 0), or just after the
    coming midnight, whichever comes first."""
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())
    after_midnight = midnight + timedelta(seconds=1)
    if interval_minutes <= 0:
        return after_midnight
    return min(now + timedelta(minutes=interval_minutes), after_midnight)


class LiveAudiences:
    def __init__(
        self,
        evaluation: Evaluation,
        *,
        interval_minutes: float,
        live: bool = True,
        keep_days: float = 365,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.evaluation = evaluation
        self.interval = interval_minutes
        self.live = live
        self.keep = timedelta(days=keep_days)
        self.clock = clock
        self.rounds = 0
        self.failures = 0
        self._next: datetime | None = None  # None: evaluate everyone first
        self._busy = 0.0  # seconds the last live evaluation took
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="touchpoints-audiences", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.evaluation.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            self._thread = None

    def run_once(self) -> bool:
        """One turn: everyone when due, else the persons that changed (if live and woken);
        whether it evaluated."""
        now = self.clock()
        woken = self.evaluation.wake.is_set()
        self.evaluation.wake.clear()  # touches from now on wake the next turn
        if self._next is None or now >= self._next:
            done = self.evaluation.evaluate_all()
            self._next = next_full(self.clock(), self.interval)
            pruned = self.evaluation.store.prune_history(now - self.keep)
            log.info(
                "evaluated everyone: %d audiences, %d computed traits, %d entered, %d exited, "
                "%d messages, %d old entries and exits dropped, in %.2f s",
                done.audiences,
                done.traits,
                done.entered,
                done.exited,
                done.messages,
                pruned,
                done.seconds,
            )
            return True
        if self.live and woken:
            started = time.perf_counter()
            self.evaluation.catch_up()
            self._busy = time.perf_counter() - started
            return True
        return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self.rounds += 1
            except Exception as exc:  # noqa: BLE001 - the thread must outlive one failure
                self.failures += 1
                log.error(
                    "evaluating audiences failed (%s); trying again in 5 s", type(exc).__name__
                )
                self._stop.wait(5)
                continue
            wait = 60.0
            if self._next is not None:
                wait = max(0.0, min(wait, (self._next - self.clock()).total_seconds()))
            if self.evaluation.wake.wait(wait) and not self._stop.is_set():
                # Events arriving while it evaluated are taken together: a turn waits at least
                # as long as the last one took, so evaluating takes at most half the time.
                self._stop.wait(max(_SETTLE, self._busy))
