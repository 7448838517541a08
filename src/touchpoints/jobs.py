"""Jobs of the server: retention, scoring and the continuous export each run a function in a
thread of their own every so often (:class:`PeriodicJob`); the live audiences and triggers
run theirs again as soon as new events wake them (:class:`ContinuousJob`). All run beside the
writer (the collector answers from the write-ahead log, so ingest never waits for them).

One class for each kind, so each job starts, stops, counts its runs and outlives a failure
the same way. A job logs what its ``describe`` makes of the result: counts, never rows or
persons (or nothing, for a turn that had nothing to do). A :class:`TouchpointsError` is an
expected refusal (a model not trained yet, an export directory that went away) and is logged
with its message, which is ours; any other failure is logged by its type only, since a
library's message may quote the data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from touchpoints.errors import TouchpointsError

T = TypeVar("T")


class _JobThread:
    """What every job does alike: its thread ``touchpoints-<name>``, started, and stopped
    after the turn in progress (at most ``timeout`` seconds later)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name=f"touchpoints-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 60) -> None:
        """Stop after the run in progress, if any (waiting at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _loop(self) -> None:
        raise NotImplementedError


class PeriodicJob(_JobThread, Generic[T]):
    """Runs ``work`` in a thread named ``touchpoints-<name>``: ``first`` seconds after
    :meth:`start` (never later than ``interval``), then every ``interval`` seconds; a failure is
    logged and tried again at the next turn."""

    def __init__(
        self,
        name: str,
        work: Callable[[], T],
        describe: Callable[[T], str | None],
        *,
        interval: float,
        first: float,
        log: logging.Logger,
        refusal_level: int = logging.ERROR,
    ) -> None:
        super().__init__(name)
        self.work = work
        self.describe = describe
        self.interval = interval
        self.first = min(first, interval)
        self.log = log
        self.refusal_level = refusal_level
        self.runs = 0

    def _loop(self) -> None:
        wait = self.first
        while not self._stop.wait(wait):
            wait = self.interval
            self.run_once()

    def run_once(self) -> bool:
        """One turn, as the thread runs it; whether it succeeded."""
        try:
            result = self.work()
        except TouchpointsError as exc:
            self.failures += 1
            self.log.log(
                self.refusal_level,
                "%s not done: %s; tried again in %.0f s",
                self.name,
                exc,
                self.interval,
            )
            return False
        except Exception as exc:  # noqa: BLE001 - a scheduled job must outlive one failure
            self.failures += 1
            self.log.error(
                "%s failed (%s); tried again in %.0f s",
                self.name,
                type(exc).__name__,
                self.interval,
            )
            return False
        self.runs += 1
        described = self.describe(result)
        if described is not None:  # None: nothing worth a line (a turn with nothing to do)
            self.log.info("%s: %s", self.name, described)
        return True


class ContinuousJob(_JobThread):
    """Runs ``turn`` again and again in a thread named ``touchpoints-<name>``: after each turn
    it waits until ``wake`` is set (new events committed: the turn clears it when it takes
    them) or ``pause()`` seconds have passed, and once woken ``settle()`` seconds more, so a
    burst is taken together. A failure is counted and logged by its type only, as
    ``"<doing> failed (<type>)"`` (a library's message may quote the data), and the turn is
    tried again after ``retry`` seconds. :meth:`stop` sets ``wake`` so the thread stops at
    once rather than at the end of its pause."""

    def __init__(
        self,
        name: str,
        turn: Callable[[], object],
        *,
        wake: threading.Event,
        pause: Callable[[], float],
        doing: str,
        retry: float,
        log: logging.Logger,
        settle: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(name)
        self.turn = turn
        self.wake = wake
        self.pause = pause
        self.doing = doing
        self.retry = retry
        self.log = log
        self.settle = settle
        self.rounds = 0

    def stop(self, timeout: float = 120) -> None:
        """Stop after the turn in progress, if any (waiting at most ``timeout`` seconds)."""
        self._stop.set()
        self.wake.set()  # not at the end of the pause
        super().stop(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.turn()
                self.rounds += 1
                wait = self.pause()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive one failure
                self.failures += 1
                self.log.error(
                    "%s failed (%s); trying again in %.0f s",
                    self.doing,
                    type(exc).__name__,
                    self.retry,
                )
                self._stop.wait(self.retry)
                continue
            if self.wake.wait(wait) and self.settle is not None and not self._stop.is_set():
                self._stop.wait(self.settle())
