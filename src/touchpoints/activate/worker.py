"""The delivery worker: a thread of the server that sends what the outbox holds.

Each round claims the due messages (only the oldest pending message of each ordering key
per destination: a person's messages arrive in order, and one failing person does not hold
up the others), sends them side by side (a slow receiver holds up its own messages, never
the collector: nothing of the database is held while sending), then records every attempt
and each message's new state. A message is marked delivered only after its receiver
answered, so a process killed in between sends it again, with the same ``webhook-id``:
at-least-once delivery.

Retries follow ``destinations_retry_schedule`` (seconds before each attempt, with up to
20 % jitter added; a ``Retry-After`` longer than that is waited instead); after its last
attempt a message is a dead letter. 408, 429, 5xx, timeouts and refused connections are
retried; another 4xx makes a dead letter at once; 410 also disables the destination.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from touchpoints.activate.senders import Outcome, Senders, Target
from touchpoints.activate.service import Destinations
from touchpoints.warehouse import utc_now

log = logging.getLogger("touchpoints.activate")

_MAX_WAIT = timedelta(days=1)  # a Retry-After is honoured up to a day


class DeliveryWorker:
    def __init__(
        self,
        destinations: Destinations,
        senders: Senders,
        schedule: Sequence[float],
        *,
        clock: Callable[[], datetime] = utc_now,
        jitter: Callable[[], float] = random.random,
        batch: int = 64,
        parallel: int = 8,
        keep_days: float = 30,
    ) -> None:
        self.destinations = destinations
        self.senders = senders
        self.schedule = list(schedule)
        self.clock = clock
        self.jitter = jitter
        self.batch = batch
        self.keep = timedelta(days=keep_days)
        self._pruned: datetime | None = None
        self._pool = ThreadPoolExecutor(parallel, thread_name_prefix="touchpoints-delivery")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one round ---------------------------------------------------------------------------
    def run_once(self) -> int:
        """Send the due messages once; return how many were attempted."""
        store = self.destinations.store
        with self.destinations.writing:
            self._prune()
            self.destinations.forward()  # collected events into the outbox first
            due = store.due(self.clock(), self.batch)
        if not due:
            return 0
        targets: dict[int, Target] = {}
        for row in due:
            if row[2] not in targets:
                kind, config, secrets = self.destinations.target(row[2])
                targets[row[2]] = Target(row[2], kind, config, secrets)
        jobs = _jobs(due, targets)
        sent = list(self._pool.map(lambda job: self._send(job[0], job[1]), jobs))
        with self.destinations.writing:
            for (_, rows), (outcome, at, latency) in zip(jobs, sent, strict=True):
                for row in rows:
                    self._record(row, outcome, at, latency)
        return len(due)

    def _prune(self) -> None:
        """Hourly: what is done and older than ``keep_days`` leaves the outbox and the log."""
        now = self.clock()
        if self._pruned is not None and now - self._pruned < timedelta(hours=1):
            return
        self._pruned = now
        messages, attempts = self.destinations.store.prune(now - self.keep)
        if messages or attempts:
            log.info("pruned %d delivered or dead messages and %d attempts", messages, attempts)

    def _send(self, target: Target, rows: list[tuple[Any, ...]]) -> tuple[Outcome, datetime, float]:
        at = self.clock()
        started = time.perf_counter()
        try:
            outcome = self.senders.send_many(target, [(row[1], row[5].encode()) for row in rows])
        except Exception as exc:  # noqa: BLE001 - a bad message must not stop the worker
            outcome = Outcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
        return outcome, at, round((time.perf_counter() - started) * 1000, 3)

    def _record(self, row: tuple[Any, ...], outcome: Outcome, at: datetime, ms: float) -> None:
        seq, message_id, destination, person = row[:4]
        number = row[8] + 1
        now = self.clock()
        if outcome.ok:
            state, result, when = "delivered", "delivered", now
        elif outcome.gone:
            state, result, when = "dead", "disabled", now
            self.destinations.disable(
                destination, f"the receiver answered 410 Gone at {now:%Y-%m-%d %H:%M} UTC"
            )
        elif outcome.retry and number < len(self.schedule):
            state, result, when = "pending", "retry", now + self._delay(number, outcome)
        else:
            state, result, when = "dead", "dead", now
        self.destinations.store.record(
            (seq, message_id, destination, person),
            (number, at, outcome.status, result, ms, outcome.error),
            state,
            when,
        )
        if result != "delivered":
            log.info(
                "delivery to destination %d: attempt %d %s (%s)",
                destination,
                number,
                result,
                outcome.error,
            )

    def _delay(self, attempts: int, outcome: Outcome) -> timedelta:
        """Before attempt ``attempts + 1``: the schedule's wait plus up to 20 % jitter, or the
        receiver's Retry-After if that is longer (up to a day)."""
        wait = self.schedule[attempts] * (1 + 0.2 * self.jitter())
        if outcome.retry_after is not None:
            wait = max(wait, outcome.retry_after)
        return min(timedelta(seconds=wait), _MAX_WAIT)

    # -- the thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="touchpoints-destinations", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.destinations.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.senders.timeout + 30)  # a round ends within it
            self._thread = None
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.senders.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.destinations.wake.clear()
            try:
                if self.run_once():
                    continue
                wait = self._idle()
            except Exception as exc:  # noqa: BLE001 - the worker must outlive one failure
                log.error("delivery round failed (%s); trying again in 1 s", type(exc).__name__)
                wait = 1.0
            self.destinations.wake.wait(wait)

    def _idle(self) -> float:
        """Seconds until the next message is due (at most one: a replay or an enable from
        another process wakes no event)."""
        due = self.destinations.store.next_due()
        if due is None:
            return 1.0
        return min(1.0, max(0.02, (due - self.clock()).total_seconds()))


_BATCH = 100  # messages in one request to a collector's /v1/batch


def _jobs(
    due: list[tuple[Any, ...]], targets: dict[int, Target]
) -> list[tuple[Target, list[tuple[Any, ...]]]]:
    """What to send in one request each: a collector's due messages together (up to
    ``_BATCH``: they are of different ordering keys, since only a key's oldest is due),
    every other message alone."""
    jobs: list[tuple[Target, list[tuple[Any, ...]]]] = []
    batches: dict[int, list[tuple[Any, ...]]] = {}
    for row in due:
        target = targets[row[2]]
        if target.kind != "segment":
            jobs.append((target, [row]))
            continue
        batch = batches.get(target.id)
        if batch is None or len(batch) >= _BATCH:
            batch = batches[target.id] = []
            jobs.append((target, batch))
        batch.append(row)
    return jobs
