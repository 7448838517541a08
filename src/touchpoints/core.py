"""The one core object: ``Touchpoints(settings)`` owns the warehouse and the services.

The CLI builds it and hands ``app()`` to uvicorn; the API and the pages call it. It opens in
one of two modes: ``server`` (writes go through the write-ahead log and the buffered writer)
or ``local`` (the CLI working on the file directly while no server runs: writes go straight
to the warehouse).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from touchpoints.channels import ChannelDetector
from touchpoints.collect.ingest import Outcome, split_request
from touchpoints.collect.quarantine import Quarantine, ReplayResult
from touchpoints.collect.writer import BufferedWriter, replay_wal
from touchpoints.config import Settings
from touchpoints.events import EventNormalizer, Limits, now_micros
from touchpoints.identity.identifiers import IdentifierExtractor, IdentifierType, build_extractor
from touchpoints.identity.linking import Linker
from touchpoints.identity.resolver import IdentityResolver
from touchpoints.journeys.model import load_model
from touchpoints.journeys.service import Journeys
from touchpoints.privacy.keys import KeyStore
from touchpoints.profiles import Profiles
from touchpoints.warehouse import EventReader, EventStore, Warehouse

log = logging.getLogger("touchpoints")


def build_normalizer(settings: Settings) -> EventNormalizer:
    """The event rules a data directory's settings define (the CLI needs them without a DB)."""
    return EventNormalizer(
        ChannelDetector(settings.channel_rules, settings.builtin_channel_rules),
        Limits(settings.max_event_bytes, settings.max_message_id_length),
    )


def build_identity_extractor(settings: Settings) -> IdentifierExtractor:
    """The identifier types, block list and phone region a data directory's settings define."""
    return build_extractor(
        (
            IdentifierType(t.name, tuple(t.paths), t.normalise, t.limit, t.priority)
            for t in settings.identifier_types
        ),
        settings.identity_block_values,
        settings.identity_block_patterns,
        settings.phone_region,
    )


class Touchpoints:
    def __init__(self, settings: Settings, *, read_only: bool = False) -> None:
        self.settings = settings
        self.warehouse = Warehouse(settings.database_path, read_only=read_only)
        self.keys = KeyStore(self.warehouse)
        self.events = EventReader(self.warehouse)
        self.store = EventStore(self.warehouse)
        self.quarantine = Quarantine(self.warehouse)
        self.identity = IdentityResolver(self.warehouse, build_identity_extractor(settings))
        self.profiles = Profiles(self.warehouse, self.identity, settings.trait_source_priority)
        self.linker = Linker(
            self.identity,
            tuple(settings.match_comparisons),
            settings.match_threshold,
            settings.match_review_from,
            settings.phone_region,
        )
        self.journeys = Journeys(self.warehouse, load_model(settings.stage_model_path))
        self.normalizer = build_normalizer(settings)
        self.writer: BufferedWriter | None = None
        self.started_at = datetime.now(UTC)

    # -- lifecycle ---------------------------------------------------------------------------
    def start_writer(self) -> int:
        """Replay what a killed server left in the log, then start the buffered writer."""
        replayed = replay_wal(self.settings.wal_dir, self.store)
        self.identity.catch_up()
        self.writer = BufferedWriter(
            self.store,
            self.settings.wal_dir,
            flush_interval_ms=self.settings.flush_interval_ms,
            flush_max_events=self.settings.flush_max_events,
            max_pending_events=self.settings.max_pending_events,
            fsync=self.settings.wal_fsync,
            fsync_interval_ms=self.settings.wal_fsync_interval_ms,
            after_write=self.identity.catch_up,
        )
        self.writer.start()
        return replayed

    def close(self) -> None:
        if self.writer is not None:
            self.writer.stop()
            self.writer = None
        self.warehouse.close()

    def __enter__(self) -> Touchpoints:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collecting --------------------------------------------------------------------------
    def judge(
        self,
        payload: Any,
        route: str,
        *,
        source: str,
        received_at: int | None = None,
        enforce_batch_limit: bool = True,
        default_id_prefix: str | None = None,
    ) -> Outcome:
        """Validate a request body without storing anything."""
        return split_request(
            payload,
            route,
            self.normalizer,
            received_at=received_at if received_at is not None else now_micros(),
            source=source,
            max_batch_events=self.settings.max_batch_events if enforce_batch_limit else None,
            default_id_prefix=default_id_prefix,
        )

    def write_rows(self, rows: list[tuple[Any, ...]]) -> int:
        """Store rows now (local mode, replay, import); return how many were new."""
        if self.writer is not None:
            self.writer.submit(rows)
            return len(rows)
        inserted = self.store.append(rows).inserted
        self.identity.catch_up()
        return inserted

    def replay_quarantine(self, ids: list[int] | None = None) -> ReplayResult:
        return self.quarantine.replay(self.normalizer, self.write_rows, ids)

    # -- faces -------------------------------------------------------------------------------
    def app(self, on_started: Callable[[], None] | None = None) -> Any:
        from touchpoints.api.app import create_app

        return create_app(self, on_started=on_started)
