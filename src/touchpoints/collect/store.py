"""The quarantine table: refused events and bodies, kept with their reasons.

The collect part's storage; what to hold and how to replay it is
:mod:`touchpoints.collect.quarantine`'s business. (The events themselves are stored by
:mod:`touchpoints.warehouse.events`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from touchpoints.warehouse import Warehouse, utc_now


class HeldRow(NamedTuple):
    """A new quarantine item; ``reasons``, ``raw`` and ``envelope`` are JSON text."""

    received_at: datetime
    source: str
    route: str
    kind: str  # "event" or "body"
    reasons: str
    raw: str
    envelope: str | None


class StoredItem(NamedTuple):
    id: int
    received_at: datetime
    source: str
    route: str
    kind: str
    reasons: str
    raw: str
    envelope: str | None
    status: str
    replayed_at: datetime | None


_COLUMNS = ", ".join(StoredItem._fields)


class QuarantineStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def insert(self, rows: Sequence[HeldRow]) -> list[int]:
        """Hold ``rows``; their ids, in order."""
        return [
            int(
                self.warehouse.scalar(
                    "INSERT INTO quarantine (received_at, source, route, kind, reasons, raw, "
                    "envelope) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    list(row),
                )
            )
            for row in rows
        ]

    def count(self, status: str | None) -> int:
        """Items with ``status`` (None: all)."""
        if status is None:
            return int(self.warehouse.scalar("SELECT count(*) FROM quarantine"))
        return int(
            self.warehouse.scalar("SELECT count(*) FROM quarantine WHERE status = ?", [status])
        )

    def list(self, status: str | None, limit: int) -> list[StoredItem]:
        """The first ``limit`` items with ``status`` (None: all), oldest first."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self.warehouse.fetchall(
            f"SELECT {_COLUMNS} FROM quarantine {where} ORDER BY id LIMIT {int(limit)}", params
        )
        return [StoredItem(*row) for row in rows]

    def get(self, item_id: int) -> StoredItem | None:
        rows = self.warehouse.fetchall(f"SELECT {_COLUMNS} FROM quarantine WHERE id = ?", [item_id])
        return StoredItem(*rows[0]) if rows else None

    def delete(self, item_id: int) -> None:
        self.warehouse.run("DELETE FROM quarantine WHERE id = ?", [item_id])

    def set_reasons(self, item_id: int, reasons: str) -> None:
        """Today's reasons (JSON text) for an item still held."""
        self.warehouse.run("UPDATE quarantine SET reasons = ? WHERE id = ?", [reasons, item_id])

    def mark_replayed(self, item_id: int) -> None:
        self.warehouse.run(
            "UPDATE quarantine SET status = 'replayed', replayed_at = ? WHERE id = ?",
            [utc_now(), item_id],
        )
