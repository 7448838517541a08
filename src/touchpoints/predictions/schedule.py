"""Scoring on a schedule: a thread of the server scores everyone with the models in use
every ``predictions_score_interval_hours``, beside the writer (the collector answers from
the write-ahead log, so ingest never waits for it; scoring reads through its own cursor and
replaces the scores in one short transaction)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from touchpoints.errors import TouchpointsError
from touchpoints.predictions.results import ScoringRun

log = logging.getLogger("touchpoints.predictions")


class ScoringJob:
    """Runs ``score`` in a thread: ``first`` seconds after the server starts, then every
    ``interval`` seconds. Logs counts, never persons; a model not trained yet is noted at
    info level, any other failure logged and tried again at the next turn."""

    def __init__(
        self, score: Callable[[], ScoringRun], interval: float, first: float = 300
    ) -> None:
        self.score = score
        self.interval = interval
        self.first = min(first, interval)
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="touchpoints-scoring", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _loop(self) -> None:
        wait = self.first
        while not self._stop.wait(wait):
            wait = self.interval
            try:
                run = self.score()
            except TouchpointsError as exc:
                log.info("scheduled scoring skipped: %s", exc)
                continue
            except Exception as exc:  # noqa: BLE001 - a scheduled job must outlive one failure
                log.error("scoring failed (%s); tried again in %.0f s", type(exc).__name__, wait)
                continue
            self.runs += 1
            log.info(
                "scored lifetime value of %s persons, churn risk of %s persons",
                run.ltv.persons if run.ltv else "no",
                run.churn.persons if run.churn else "no",
            )
