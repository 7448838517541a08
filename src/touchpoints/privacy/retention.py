"""Retention: events past the period their rule keeps them (``retention`` in the settings: per
event name, type or channel), and refused events past ``quarantine_retention_days``, leave
every table of the registry; identifiers no event carries any more leave with them, and what
the identity map built on those events is computed again.

A rule matches an event when each condition it gives does; the first rule an event matches
decides (put the longer periods for the narrower rules first: orders 10 years, then every
web event 13 months). An event no rule matches is kept. The server runs this once a day;
``touchpoints privacy retention --dry-run`` shows what it would remove.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from touchpoints.config import RetentionRule
from touchpoints.export.results import ExportsReached
from touchpoints.identity.resolver import IdentityResolver
from touchpoints.journeys.store import derive_again
from touchpoints.privacy.results import RetentionRun
from touchpoints.privacy.store import PrivacyStore
from touchpoints.warehouse import Warehouse

log = logging.getLogger("touchpoints.privacy")


class Retention:
    def __init__(
        self,
        warehouse: Warehouse,
        identity: IdentityResolver,
        rules: Sequence[RetentionRule],
        quarantine_days: int | None,
        reach_exports: Callable[[], ExportsReached] | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.store = PrivacyStore(warehouse)
        self.identity = identity
        self.rules = list(rules)
        self.quarantine_days = quarantine_days
        self.reach_exports = reach_exports

    def due(self, now: datetime | None = None) -> list[list[int]]:
        """Per rule, the seqs of the events it removes (an event only for the first rule
        that matches it)."""
        now = now or datetime.now(UTC).replace(tzinfo=None)
        claimed: set[int] = set()
        out = []
        for rule in self.rules:
            # Every event the rule matches, old or not: a younger one is kept by this rule
            # and must not fall to a later, shorter one.
            matches = self.store.events_older_than(
                datetime.max, rule.event, rule.type, rule.channel
            )
            old = set(
                self.store.events_older_than(
                    now - timedelta(days=rule.days), rule.event, rule.type, rule.channel
                )
            )
            out.append([seq for seq in matches if seq in old and seq not in claimed])
            claimed.update(matches)
        return out

    def run(self, dry_run: bool = False, now: datetime | None = None) -> RetentionRun:
        started = time.perf_counter()
        now = now or datetime.now(UTC).replace(tzinfo=None)
        per_rule = self.due(now)
        seqs = sorted({seq for found in per_rule for seq in found})
        quarantine_before = (
            now - timedelta(days=self.quarantine_days) if self.quarantine_days else None
        )
        if dry_run:
            return RetentionRun(
                dry_run=True,
                events=len(seqs),
                per_rule=[len(found) for found in per_rule],
                quarantine=self._quarantined_before(quarantine_before),
                identifiers=0,
                seconds=round(time.perf_counter() - started, 3),
            )
        with self.identity.lock():
            self.identity.catch_up()
            touched = set(self.store.sids_of_events(seqs))
            component = self.identity.candidate_component(touched) if touched else set()
            derive_again(self.warehouse, sorted(component))  # before the rows go
            with self.warehouse.transaction() as cursor:
                events = self.store.delete_events(seqs, cursor) if seqs else 0
                quarantined = (
                    self.store.quarantine_older_than(quarantine_before, cursor)
                    if quarantine_before
                    else 0
                )
                gone = self.store.eventless_identifiers(sorted(component), cursor)
                if gone:
                    self.store.delete_identifiers(gone, cursor)
            left = sorted(component - set(gone))
            if left:
                self.identity.recompute(left)
        exports = self.reach_exports() if events and self.reach_exports is not None else None
        return RetentionRun(
            dry_run=False,
            events=events,
            per_rule=[len(found) for found in per_rule],
            quarantine=quarantined,
            identifiers=len(gone),
            export_files=exports.files_changed if exports else 0,
            seconds=round(time.perf_counter() - started, 3),
        )

    def _quarantined_before(self, before: datetime | None) -> int:
        return self.store.quarantine_count_before(before) if before else 0


class RetentionJob:
    """Runs :meth:`Retention.run` in a thread of the server: a minute after it starts (what
    accumulated while it was down), then every ``interval`` seconds (a day). Logs counts, never
    rows; a failure is logged and tried again at the next turn."""

    def __init__(self, retention: Retention, interval: float = 86_400, first: float = 60) -> None:
        self.retention = retention
        self.interval = interval
        self.first = first
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="touchpoints-retention", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        wait = self.first
        while not self._stop.wait(wait):
            wait = self.interval
            try:
                done = self.retention.run()
            except Exception as exc:  # noqa: BLE001 - a daily job must outlive one failure
                log.error("retention failed (%s); tried again in %.0f s", type(exc).__name__, wait)
                continue
            self.runs += 1
            log.info(
                "retention removed %d events, %d quarantined items, %d identifiers in %.1f s",
                done.events,
                done.quarantine,
                done.identifiers,
                done.seconds,
            )
