"""Quarantine: every refused event is kept with its reasons, listable and replayable.

Like Snowplow's bad rows: a sender's mistake must never silently lose data. An item is either
one ``event`` (with the batch ``envelope`` it came in: context, integrations, sentAt and the
original receipt time) or a whole ``body`` that could not be split into events (bad JSON, a
batch that is not an array). Once the cause is fixed (a setting raised, a channel rule added,
the sender's bug understood), ``replay`` runs the items through today's rules: what passes is
stored (exactly once, thanks to messageIds) and marked replayed; the rest stays held with its
new reasons.

The quarantine keeps no secret: a write key in what it holds (a ``writeKey`` field, or
anything shaped like a key, in a body that is not JSON or in an event) is replaced by
``[removed]`` before it is stored.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import Field

from touchpoints.answers import Answer
from touchpoints.collect.ingest import BATCH_ROUTES, Rejected, normalize_events, split_request
from touchpoints.collect.store import HeldRow, QuarantineStore, StoredItem
from touchpoints.errors import NotFound
from touchpoints.events import EventNormalizer, EventRow, Problem, json_text, micros
from touchpoints.times import UtcTime
from touchpoints.warehouse import Warehouse


class QuarantineItem(Answer):
    """A refused event (``kind`` event) or request body (``kind`` body), with its reasons."""

    id: int
    received_at: UtcTime
    source: str = Field(
        description="The source of the key that sent it: the one it was made for, else its id"
    )
    route: str
    kind: str = Field(description="event or body")
    reasons: list[dict[str, Any]] = Field(description="field, message and index of each")
    status: str = Field(description="held or replayed")
    replayed_at: UtcTime | None
    raw: str = Field(description="What was sent")
    envelope: dict[str, Any] | None = Field(
        default=None, description="The batch's context, integrations and sentAt, for an event"
    )


class QuarantinePage(Answer):
    count: int = Field(description="Items with the status asked for, not only this page")
    items: list[QuarantineItem] = Field(description="Oldest first")


class ReplayResult(Answer):
    replayed: int
    still_held: int
    events_stored: int


class Deleted(Answer):
    deleted: int


# "writeKey": "…" (also cut short, in a body that is not JSON), and any key's secret.
_WRITE_KEY_FIELD = re.compile(r'("writeKey"\s*:\s*)"(?:[^"\\]|\\.)*(?:"|$)')
_SECRET = re.compile(r"tp_(?:write|read|admin)_[0-9a-fA-F]{6,}")
REMOVED = "[removed]"


def held_event_rows(
    rejected: Sequence[Rejected],
    source: str,
    route: str,
    envelope: dict[str, Any],
    received_at: datetime,
) -> list[HeldRow]:
    """The quarantine's rows for refused events."""
    return [
        HeldRow(
            received_at,
            source,
            route,
            "event",
            orjson.dumps([p.as_dict() for p in item.problems]).decode(),
            scrubbed(json_text(item.event).decode()),
            scrubbed(json_text(envelope).decode()),
        )
        for item in rejected
    ]


def held_body_row(
    body: bytes, problems: Sequence[Problem], source: str, route: str, received_at: datetime
) -> HeldRow:
    """The quarantine's row for a body that could not be read as events."""
    return HeldRow(
        received_at,
        source,
        route,
        "body",
        orjson.dumps([p.as_dict() for p in problems]).decode(),
        scrubbed(body.decode("utf-8", errors="replace")),
        None,
    )


def scrubbed(text: str) -> str:
    """``text`` without write keys: the value of every ``writeKey`` field, and anything
    shaped like a key's secret (``tp_<role>_`` and hex digits), become ``[removed]``."""
    text = _WRITE_KEY_FIELD.sub(lambda found: f'{found.group(1)}"{REMOVED}"', text)
    return _SECRET.sub(REMOVED, text)


def _item(row: StoredItem) -> QuarantineItem:
    return QuarantineItem(
        id=row.id,
        received_at=row.received_at,
        source=row.source,
        route=row.route,
        kind=row.kind,
        reasons=orjson.loads(row.reasons),
        raw=row.raw,
        envelope=orjson.loads(row.envelope) if row.envelope else None,
        status=row.status,
        replayed_at=row.replayed_at,
    )


class Quarantine:
    """Refused events and bodies: held with their reasons, listed, replayed."""

    def __init__(self, warehouse: Warehouse) -> None:
        self._store = QuarantineStore(warehouse)
        # Whether a refused document carries an erased identifier (then it is not held:
        # the core sets privacy's suppressions here, as for the events); None: none is.
        self.withhold: Callable[[str], bool] | None = None

    def hold_events(
        self,
        rejected: Sequence[Rejected],
        *,
        source: str,
        route: str,
        envelope: dict[str, Any],
        received_at: datetime,
    ) -> list[int]:
        return self._insert(held_event_rows(rejected, source, route, envelope, received_at))

    def hold_body(
        self,
        body: bytes,
        problems: Sequence[Problem],
        *,
        source: str,
        route: str,
        received_at: datetime,
    ) -> int | None:
        """Hold a body that could not be read as events; its id (None: not held, it
        carries an erased identifier)."""
        held = self._insert([held_body_row(body, problems, source, route, received_at)])
        return held[0] if held else None

    def hold_rows(self, rows: list[HeldRow]) -> list[int]:
        """Hold rows made by :func:`held_event_rows` and :func:`held_body_row` elsewhere (a
        collector process's, :mod:`touchpoints.collect.spool`)."""
        return self._insert(rows)

    def _insert(self, rows: list[HeldRow]) -> list[int]:
        if self.withhold is not None:
            rows = [row for row in rows if not self.withhold(row.raw)]
        return self._store.insert(rows)

    def count(self, status: str | None = "held") -> int:
        return self._store.count(status)

    def list(self, status: str | None = "held", limit: int = 50) -> builtins.list[QuarantineItem]:
        return [_item(row) for row in self._store.list(status, limit)]

    def page(self, status: str | None = "held", limit: int = 50) -> QuarantinePage:
        """Items with a status (None: all), oldest first."""
        return QuarantinePage(count=self.count(status), items=self.list(status, limit))

    def item(self, item_id: int) -> QuarantineItem:
        """One item with what was sent; :class:`NotFound` when there is none."""
        found = self.get(item_id)
        if found is None:
            raise NotFound(f"no quarantined item {item_id}")
        return found

    def remove(self, item_id: int) -> Deleted:
        """Delete an item for good (:class:`NotFound` when there is none)."""
        if not self.delete(item_id):
            raise NotFound(f"no quarantined item {item_id}")
        return Deleted(deleted=item_id)

    def get(self, item_id: int) -> QuarantineItem | None:
        row = self._store.get(item_id)
        return _item(row) if row is not None else None

    def delete(self, item_id: int) -> bool:
        found = self.get(item_id)
        if found is None:
            return False
        self._store.delete(item_id)
        return True

    def replay(
        self,
        normalizer: EventNormalizer,
        store: Callable[[builtins.list[EventRow]], int],
        ids: Sequence[int] | None = None,
    ) -> ReplayResult:
        """Run held items (all, or ``ids``) through today's rules; ``store`` writes rows."""
        if ids is not None:  # an empty list replays nothing, not everything
            items = [item for item in (self.get(i) for i in ids) if item is not None]
            items = [item for item in items if item.status == "held"]
        else:
            items = self.list("held", limit=1_000_000)
        replayed = still = stored = 0
        for item in items:
            rows, problems = self._judge(item, normalizer)
            if problems:
                still += 1
                self._store.set_reasons(item.id, orjson.dumps(problems).decode())
                continue
            stored += store(rows)
            replayed += 1
            self._store.mark_replayed(item.id)
        return ReplayResult(replayed=replayed, still_held=still, events_stored=stored)

    @staticmethod
    def _judge(
        item: QuarantineItem, normalizer: EventNormalizer
    ) -> tuple[builtins.list[EventRow], builtins.list[dict[str, Any]]]:
        """Rows if the whole item now passes, else today's problems (nothing stored)."""
        received_at = micros(item.received_at)
        prefix = f"quarantine-{item.id}"
        try:
            payload = orjson.loads(item.raw)
        except orjson.JSONDecodeError as exc:
            return [], [{"field": "", "message": f"body is not valid JSON: {exc}"}]
        if item.kind == "body":
            outcome = split_request(
                payload,
                item.route,
                normalizer,
                received_at=received_at,
                source=item.source,
                max_batch_events=None,
                default_id_prefix=prefix,
            )
            problems = [p.as_dict() for p in outcome.body_problems] + [
                error for rejected in outcome.rejected for error in rejected.as_dict()["errors"]
            ]
            return outcome.rows, problems
        route_type = None if item.route in BATCH_ROUTES else item.route
        rows, rejected = normalize_events(
            [payload],
            normalizer,
            route_type=route_type,
            envelope=item.envelope or {},
            received_at=received_at,
            source=item.source,
            default_id_prefix=prefix,
            indexed=False,
            historical=item.route == "import",
        )
        return rows, [error for r in rejected for error in r.as_dict()["errors"]]
