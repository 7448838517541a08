"""Triggers, live: a thread of the server that dispatches as soon as the writer has
committed a batch of events (the identity map's listener wakes it) or audiences changed,
and goes on with delayed firings when they fall due (kept in the warehouse, so a restart
loses none: they are taken up at the first turn).

It runs beside the writer, as the audiences do: the collector answers from the write-ahead
log and the writer only sets an event, so dispatching never slows ingest.
"""

from __future__ import annotations

import logging
import threading

from touchpoints.activate.triggers.dispatch import Dispatch
from touchpoints.warehouse import utc_now

log = logging.getLogger("touchpoints.triggers")

_IDLE = 5.0  # seconds between looks at the delays when nothing wakes the thread


class LiveTriggers:
    def __init__(self, dispatch: Dispatch) -> None:
        self.dispatch = dispatch
        self.rounds = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="touchpoints-triggers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.dispatch.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            self._thread = None

    def run_once(self) -> None:
        self.dispatch.wake.clear()  # what is committed from now on wakes the next turn
        self.dispatch.run()
        self.dispatch.run_delays()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self.rounds += 1
            except Exception as exc:  # noqa: BLE001 - the thread must outlive one failure
                self.failures += 1
                log.error(
                    "dispatching triggers failed (%s); trying again in 1 s", type(exc).__name__
                )
                self._stop.wait(1)
                continue
            due = self.dispatch.store.next_due()
            wait = _IDLE
            if due is not None:
                wait = max(0.0, min(_IDLE, (due - utc_now()).total_seconds()))
            self.dispatch.wake.wait(wait)
