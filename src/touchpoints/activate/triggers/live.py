"""Triggers, live: a thread of the server that dispatches as soon as the writer has
committed a batch of events (the identity map's listener wakes it) or audiences changed,
and goes on with delayed firings when they fall due (kept in the warehouse, so a restart
loses none: they are taken up at the first turn).

It runs beside the writer, as the audiences do: the collector answers from the write-ahead
log and the writer only sets an event, so dispatching never slows ingest.
"""

from __future__ import annotations

import logging

from touchpoints.activate.triggers.dispatch import Dispatch
from touchpoints.jobs import ContinuousJob
from touchpoints.warehouse import utc_now

log = logging.getLogger("touchpoints.triggers")

_IDLE = 5.0  # seconds between looks at the delays when nothing wakes the thread


class LiveTriggers:
    def __init__(self, dispatch: Dispatch) -> None:
        self.dispatch = dispatch
        self.job = ContinuousJob(
            "triggers",
            self.run_once,
            wake=dispatch.wake,
            pause=self._pause,
            doing="dispatching triggers",
            retry=1,
            log=log,
        )

    def start(self) -> None:
        self.job.start()

    def stop(self) -> None:
        self.job.stop()
        try:
            self.dispatch.save()
        except Exception:  # noqa: BLE001 - read again after the restart, finding nothing again
            log.exception("saving the triggers' reading position failed")

    def run_once(self) -> None:
        self.dispatch.wake.clear()  # what is committed from now on wakes the next turn
        self.dispatch.run()
        self.dispatch.run_delays()

    def _pause(self) -> float:
        """Until the next delayed firing falls due, at most ``_IDLE``."""
        due = self.dispatch.store.next_due()
        if due is None:
            return _IDLE
        return max(0.0, min(_IDLE, (due - utc_now()).total_seconds()))
