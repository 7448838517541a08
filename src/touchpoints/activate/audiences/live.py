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
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from touchpoints.activate.audiences.evaluation import Evaluation
from touchpoints.jobs import ContinuousJob
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
        self._next: datetime | None = None  # None: evaluate everyone first
        self._busy = 0.0  # seconds the last live evaluation took
        self.job = ContinuousJob(
            "audiences",
            self.run_once,
            wake=evaluation.wake,
            pause=self._pause,
            settle=self._settle,
            doing="evaluating audiences",
            retry=5,
            log=log,
        )

    def start(self) -> None:
        self.job.start()

    def stop(self) -> None:
        self.job.stop()

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

    def _pause(self) -> float:
        """Until everyone is due next, at most a minute."""
        if self._next is None:
            return 60.0
        return max(0.0, min(60.0, (self._next - self.clock()).total_seconds()))

    def _settle(self) -> float:
        # Events arriving while it evaluated are taken together: a turn waits at least as
        # long as the last one took, so evaluating takes at most half the time.
        return max(_SETTLE, self._busy)
