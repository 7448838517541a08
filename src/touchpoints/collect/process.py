"""One collector process of ``touchpoints serve --collectors N``, and what it shares with the
server: the event rules a data directory's settings define and the judging of a request.

Apart from the core on purpose: a collector process imports this module, the collector's
routes and their guards, not the whole application (which would load every part, the
analytics and their libraries, into each process for nothing)."""

from __future__ import annotations

from typing import Any

from touchpoints.access.keys import KeyFile
from touchpoints.channels import ChannelDetector
from touchpoints.collect.ingest import Outcome, split_request
from touchpoints.collect.spool import (
    KEYS_FILE,
    WATCHED_FILE,
    HeldSpool,
    SpoolWriter,
    WatchedNames,
    collector_dir,
    spool_root,
)
from touchpoints.config import Settings
from touchpoints.events import EventNormalizer, EventRow, Limits, now_micros


def build_normalizer(settings: Settings) -> EventNormalizer:
    """The event rules a data directory's settings define (the CLI needs them without a DB)."""
    return EventNormalizer(
        ChannelDetector(settings.channel_rules, settings.builtin_channel_rules),
        Limits(settings.max_event_bytes, settings.max_message_id_length),
    )


def judge(
    settings: Settings,
    normalizer: EventNormalizer,
    payload: Any,
    route: str,
    *,
    source: str,
    received_at: int | None,
    enforce_batch_limit: bool = True,
    default_id_prefix: str | None = None,
) -> Outcome:
    """``payload``, sent to ``route``, split into the events to store and the refusals, as
    the server and each collector process judge it (the settings' batch limit unless
    ``enforce_batch_limit`` is false)."""
    return split_request(
        payload,
        route,
        normalizer,
        received_at=received_at if received_at is not None else now_micros(),
        source=source,
        max_batch_events=settings.max_batch_events if enforce_batch_limit else None,
        default_id_prefix=default_id_prefix,
    )


class CollectorProcess:
    """One of the collector processes of ``touchpoints serve --collectors N``: it judges
    requests as the server does, logs what it accepts and answers, and never opens the
    database. Its log, and the refusals for the quarantine, go to the process that owns the
    warehouse (:mod:`touchpoints.collect.spool`); the keys come from the file that process
    keeps current. Of ``max_pending_events`` and the key rate, it takes its ``share``."""

    def __init__(self, settings: Settings, number: int, share: int) -> None:
        self.settings = settings
        self.normalizer = build_normalizer(settings)
        self.keys = KeyFile(spool_root(settings.wal_dir) / KEYS_FILE)
        # Events a trigger fires on are handed over at once, not at the next interval.
        self.watched = WatchedNames(spool_root(settings.wal_dir) / WATCHED_FILE)
        directory = collector_dir(settings.wal_dir, number)
        self.writer = SpoolWriter(
            directory,
            flush_interval_ms=settings.flush_interval_ms,
            flush_max_events=settings.flush_max_events,
            max_pending_events=max(1, settings.max_pending_events // share),
            fsync=settings.wal_fsync,
            fsync_interval_ms=settings.wal_fsync_interval_ms,
            urgent=self.watched.urgent,
        )
        self.quarantine = HeldSpool(directory)

    def judge(
        self, payload: Any, route: str, *, source: str, received_at: int | None = None
    ) -> Outcome:
        return judge(
            self.settings, self.normalizer, payload, route, source=source, received_at=received_at
        )

    def write_rows(self, rows: list[EventRow]) -> int:
        self.writer.submit(rows)
        return len(rows)
