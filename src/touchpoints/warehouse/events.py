"""The events table: appending Arrow batches with deduplication, and the queries that read it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
from pydantic import Field

from touchpoints.answers import Answer
from touchpoints.events import COLUMNS, EventRow
from touchpoints.warehouse.connection import Warehouse
from touchpoints.warehouse.dedup import MessageIdIndex, id_hash
from touchpoints.warehouse.schema import CONSENT_CHOICES_SQL

_TIME_COLUMNS = frozenset({"timestamp", "original_timestamp", "sent_at", "received_at"})
_ARROW_SCHEMA = pa.schema(
    [pa.field("seq", pa.int64()), pa.field("id_hash", pa.int64())]
    + [
        pa.field(name, pa.timestamp("us") if name in _TIME_COLUMNS else pa.string())
        for name in COLUMNS
    ]
)
_CHOICES = "categoryPreferences"  # in every context the consent query reads (its LIKE)
_INSERT_COLUMNS = ", ".join(f'"{name}"' for name in _ARROW_SCHEMA.names)


@dataclass(frozen=True)
class AppendResult:
    inserted: int
    duplicates: int
    suppressed: int = 0  # dropped for carrying an erased identifier


class EventStore:
    """Appends events exactly once per messageId. One writer at a time (the caller's lock)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse
        self._index: MessageIdIndex | None = None
        self._next_seq: int | None = None
        self._lock = threading.Lock()
        self._fresh: list[tuple[int, str, str]] = []  # see take_fresh
        # Rows to keep of a batch (None: all); set by the core (privacy's suppressions).
        self.row_filter: Callable[[Sequence[EventRow]], list[EventRow]] | None = None
        # Told of each append once committed: (the first seq given, the rows stored, which
        # have that seq and the ones after it). Called under the store's lock: be quick.
        self.listeners: list[Callable[[int, Sequence[EventRow]], None]] = []

    def _load(self) -> MessageIdIndex:
        if self._index is None:
            cursor = self._warehouse.run("SELECT id_hash FROM events")
            hashes = cursor.fetchnumpy()["id_hash"]
            self._index = MessageIdIndex(hashes)
            # Past every seq given before, the deleted newest ones too (event_sequence).
            self._next_seq = (
                int(
                    self._warehouse.scalar(
                        "SELECT greatest((SELECT coalesce(max(seq), 0) FROM events), "
                        "(SELECT max(last_seq) FROM event_sequence))"
                    )
                )
                + 1
            )
        return self._index

    def append(self, rows: Sequence[EventRow]) -> AppendResult:
        """Insert the rows whose messageId is new (the first of several with one id), and
        that the ``row_filter`` keeps (the core sets it: events that carry an erased
        identifier are dropped on their way in, whichever way they came)."""
        with self._lock:
            if self.row_filter is not None and rows:
                kept = self.row_filter(rows)
                dropped = len(rows) - len(kept)
                result = self._append(kept)
                return AppendResult(result.inserted, result.duplicates, dropped)
            return self._append(rows)

    def take_fresh(self) -> list[tuple[int, str, str]]:
        """What the last append stored, once: (seq, messageId, the event as sent) of each
        event, in seq order. The identity map catches up from these rather than reading
        them back (IdentityResolver.catch_up)."""
        with self._lock:
            fresh, self._fresh = self._fresh, []
        return fresh

    def _append(self, rows: Sequence[EventRow]) -> AppendResult:
        index = self._load()
        unique: dict[str, EventRow] = {}
        for row in rows:
            unique.setdefault(row.message_id, row)
        ids = list(unique)
        hashes = [id_hash(message_id) for message_id in ids]
        maybe = index.candidates(hashes)
        suspects = [h for h, hit in zip(hashes, maybe, strict=True) if hit]
        stored: set[str] = set()
        if suspects:
            stored = {
                found
                for (found,) in self._warehouse.fetchall(
                    "SELECT message_id FROM events WHERE id_hash IN (SELECT unnest(?::BIGINT[]))",
                    [suspects],
                )
            }
        keep = [i for i, message_id in enumerate(ids) if message_id not in stored]
        if keep:
            assert self._next_seq is not None
            fresh = [unique[ids[i]] for i in keep]
            columns: dict[str, list[Any]] = {
                "seq": list(range(self._next_seq, self._next_seq + len(fresh))),
                "id_hash": [hashes[i] for i in keep],
            }
            for name, values in zip(COLUMNS, zip(*fresh, strict=True), strict=True):
                columns[name] = list(values)
            first = self._next_seq
            statements = [f"INSERT INTO events ({_INSERT_COLUMNS}) SELECT * FROM _arrow_batch"]
            # The consent query's own first test, made here: most batches carry no choice.
            if any(_CHOICES in (row.context or "") for row in fresh):
                statements.append(
                    f"INSERT INTO consent_choices {CONSENT_CHOICES_SQL} AND e.seq >= {int(first)}"
                )
            statements.append(f"UPDATE event_sequence SET last_seq = {int(first + len(fresh) - 1)}")
            # One call for the batch's transaction (Warehouse.script: each call waits for the
            # interpreter under load).
            self._warehouse.script(
                statements, {"_arrow_batch": pa.table(columns, schema=_ARROW_SCHEMA)}
            )
            self._next_seq += len(fresh)
            index.add(columns["id_hash"])
            self._fresh = [(first + i, row.message_id, row.raw) for i, row in enumerate(fresh)]
            for listener in self.listeners:
                listener(first, fresh)
        return AppendResult(inserted=len(keep), duplicates=len(rows) - len(keep))


@dataclass
class EventFilter:
    """What ``touchpoints events`` and ``GET /v1/events`` can ask for. Times are naive UTC."""

    type: str | None = None
    event: str | None = None
    channel: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int | None = None

    def where_sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("type", "event", "channel", "user_id", "anonymous_id", "source"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f'"{column}" = ?')
                params.append(value)
        if self.since is not None:
            clauses.append('"timestamp" >= ?')
            params.append(self.since)
        if self.until is not None:
            clauses.append('"timestamp" < ?')
            params.append(self.until)
        if self.after_seq is not None:
            clauses.append("seq > ?")
            params.append(self.after_seq)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def count_sql(flt: EventFilter) -> tuple[str, list[Any]]:
    where, params = flt.where_sql()
    return f"SELECT count(*) FROM events{where}", params


def list_sql(flt: EventFilter, limit: int, newest_first: bool) -> tuple[str, list[Any]]:
    where, params = flt.where_sql()
    order = "DESC" if newest_first else "ASC"
    return f"SELECT * FROM events{where} ORDER BY seq {order} LIMIT {int(limit)}", params


def count_by_sql(column: str) -> str:
    if column not in {"type", "channel", "source", "event"}:
        raise ValueError(f"cannot group events by {column!r}")
    return f'SELECT "{column}", count(*) AS n FROM events GROUP BY 1 ORDER BY n DESC, 1'


class EventStats(Answer):
    total: int
    by_channel: dict[str, int] = Field(description="Most events first")
    by_type: dict[str, int]
    by_source: dict[str, int] = Field(description="Per key id")


class EventReader:
    """Read-only queries over events, shared by the API and the CLI."""

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse

    def count(self, flt: EventFilter | None = None) -> int:
        sql, params = count_sql(flt or EventFilter())
        return int(self._warehouse.scalar(sql, params))

    def list(
        self, flt: EventFilter | None = None, limit: int = 20, newest_first: bool = True
    ) -> list[dict[str, Any]]:
        sql, params = list_sql(flt or EventFilter(), limit, newest_first)
        cursor = self._warehouse.run(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    def stats(self) -> EventStats:
        return EventStats(
            total=self.count(),
            by_channel=self.count_by("channel"),
            by_type=self.count_by("type"),
            by_source=self.count_by("source"),
        )

    def count_by(self, column: str) -> dict[str, int]:
        return {key: int(n) for key, n in self._warehouse.fetchall(count_by_sql(column))}
