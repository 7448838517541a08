"""What subject rights read and write: a person's rows in every table of the registry of
personal data (:mod:`touchpoints.warehouse.personal`), found the way each table says, and
the privacy tables themselves (suppressions, requests, import rejects).

Rows are found through the subject's identifiers (``sids``), their ``values`` (type and
value), the ``seqs`` of the events that carry one of them, and the ``persons`` numbers the
journey tables last knew them by. One query per table and finder; the statements are built
from the registry, so a table added there is read and deleted here without a line more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import pyarrow as pa

from touchpoints.warehouse import Warehouse, utc_now
from touchpoints.warehouse.personal import PERSONAL, PersonalTable


@dataclass(frozen=True)
class Subject:
    """A person as the registry's tables know them."""

    person: int
    sids: tuple[int, ...]
    values: tuple[tuple[str, str], ...]  # (type, value) of each identifier
    seqs: tuple[int, ...]  # the events that carry one of the identifiers (any place)
    persons: tuple[int, ...]  # the person numbers journey tables may hold for them

    def key(self) -> str:
        return f"person:{self.person}"


class PrivacyStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    # -- the subject -------------------------------------------------------------------------
    def subject(self, person: int) -> Subject:
        """Every identifier of ``person`` (anonymous ones included) and what leads from them."""
        ids = self.warehouse.fetchall(
            "SELECT sid, type, value FROM identifiers WHERE person = ? ORDER BY sid", [person]
        )
        sids = [sid for sid, _, _ in ids]
        seqs = self.warehouse.fetchall(
            "SELECT DISTINCT seq FROM event_identifiers "
            "WHERE sid IN (SELECT unnest(?::BIGINT[])) ORDER BY seq",
            [sids],
        )
        seen = self.warehouse.fetchall(
            "SELECT DISTINCT person FROM journey_persons WHERE sid IN (SELECT unnest(?::BIGINT[]))",
            [sids],
        )
        return Subject(
            person=person,
            sids=tuple(sids),
            values=tuple((t, v) for _, t, v in ids),
            seqs=tuple(seq for (seq,) in seqs),
            persons=tuple(sorted({person} | {p for (p,) in seen})),
        )

    def persons_of(self, sids: Sequence[int]) -> dict[int, int]:
        """The person of each of ``sids`` (those still in the map)."""
        rows = self.warehouse.fetchall(
            "SELECT sid, person FROM identifiers WHERE sid IN (SELECT unnest(?::BIGINT[]))",
            [list(sids)],
        )
        return {sid: person for sid, person in rows}

    # -- the registry's rows ------------------------------------------------------------------
    def rows(self, table: PersonalTable, subject: Subject) -> pa.Table:
        """The subject's rows of ``table`` (for an export)."""
        where, params = _where(table, subject)
        return self.warehouse.fetch_arrow(f"SELECT * FROM {table.name} WHERE {where}", params)

    def delete(
        self, table: PersonalTable, subject: Subject, cursor: duckdb.DuckDBPyConnection
    ) -> int:
        """Delete the subject's rows of ``table`` in the transaction of ``cursor``; how many."""
        where, params = _where(table, subject)
        found = self.warehouse.run(
            f"DELETE FROM {table.name} WHERE {where} RETURNING 1", params, cursor=cursor
        ).fetchall()
        return len(found)

    def text_rows(self, table: PersonalTable) -> list[tuple[Any, ...]]:
        """(rowid, *documents) of a ``text`` table: the finder is the caller's (documents are
        read as JSON, or searched as text where they are not)."""
        columns = ", ".join(table.columns)
        return self.warehouse.fetchall(f"SELECT rowid, {columns} FROM {table.name}")

    def delete_rowids(
        self, table: PersonalTable, rowids: Sequence[int], cursor: duckdb.DuckDBPyConnection
    ) -> int:
        if not rowids:
            return 0
        self.warehouse.run(
            f"DELETE FROM {table.name} WHERE rowid IN (SELECT unnest(?::BIGINT[]))",
            [list(rowids)],
            cursor=cursor,
        )
        return len(rowids)

    def rows_by_rowid(self, table: PersonalTable, rowids: Sequence[int]) -> pa.Table:
        return self.warehouse.fetch_arrow(
            f"SELECT * FROM {table.name} WHERE rowid IN (SELECT unnest(?::BIGINT[]))",
            [list(rowids)],
        )

    # -- retention -----------------------------------------------------------------------------
    def events_older_than(
        self, before: datetime, event: str | None, kind: str | None, channel: str | None
    ) -> list[int]:
        """The seqs of events before ``before`` with the name, type and channel given."""
        clauses: list[str] = ['"timestamp" < ?']
        params: list[Any] = [before]
        for column, value in (("event", event), ("type", kind), ("channel", channel)):
            if value is not None:
                clauses.append(f'"{column}" = ?')
                params.append(value)
        rows = self.warehouse.fetchall(
            f"SELECT seq FROM events WHERE {' AND '.join(clauses)} ORDER BY seq", params
        )
        return [seq for (seq,) in rows]

    def sids_of_events(self, seqs: Sequence[int]) -> list[int]:
        """The identifiers the events ``seqs`` carry."""
        rows = self.warehouse.fetchall(
            "SELECT DISTINCT sid FROM event_identifiers WHERE seq IN (SELECT unnest(?::BIGINT[]))",
            [list(seqs)],
        )
        return [sid for (sid,) in rows]

    def quarantine_count_before(self, before: datetime) -> int:
        return int(
            self.warehouse.scalar("SELECT count(*) FROM quarantine WHERE received_at < ?", [before])
        )

    def delete_events(self, seqs: Sequence[int], cursor: duckdb.DuckDBPyConnection) -> int:
        """The events ``seqs`` out of every table that finds rows by event."""
        removed = 0
        for table in PERSONAL:
            if table.finds == "seq":
                found = self.warehouse.run(
                    f"DELETE FROM {table.name} WHERE {table.columns[0]} "
                    "IN (SELECT unnest(?::BIGINT[])) RETURNING 1",
                    [list(seqs)],
                    cursor=cursor,
                ).fetchall()
                removed += len(found) if table.name == "events" else 0
        return removed

    def eventless_identifiers(
        self, sids: Sequence[int], cursor: duckdb.DuckDBPyConnection | None = None
    ) -> list[int]:
        """Of ``sids``, the identifiers no event carries any more and no link in force
        names (what only deleted events knew)."""
        rows = self.warehouse.run(
            """
            SELECT i.sid FROM identifiers i
            WHERE i.sid IN (SELECT unnest(?::BIGINT[]))
              AND NOT EXISTS (SELECT 1 FROM event_identifiers ei WHERE ei.sid = i.sid)
              AND NOT EXISTS (
                SELECT 1 FROM identity_links l WHERE NOT l.removed
                  AND ((l.type_a = i.type AND l.value_a = i.value)
                    OR (l.type_b = i.type AND l.value_b = i.value)))
            ORDER BY i.sid
            """,
            [list(sids)],
            cursor=cursor,
        ).fetchall()
        return [sid for (sid,) in rows]

    def delete_identifiers(self, sids: Sequence[int], cursor: duckdb.DuckDBPyConnection) -> int:
        """Identifiers ``sids`` out of every table that finds rows by identifier surrogate."""
        removed = 0
        for table in PERSONAL:
            if table.finds == "sid":
                removed += len(
                    self.warehouse.run(
                        f"DELETE FROM {table.name} WHERE {table.columns[0]} "
                        "IN (SELECT unnest(?::BIGINT[])) RETURNING 1",
                        [list(sids)],
                        cursor=cursor,
                    ).fetchall()
                )
        return removed

    def quarantine_older_than(self, before: datetime, cursor: duckdb.DuckDBPyConnection) -> int:
        return len(
            self.warehouse.run(
                "DELETE FROM quarantine WHERE received_at < ? RETURNING 1", [before], cursor=cursor
            ).fetchall()
        )

    # -- suppressions ------------------------------------------------------------------------
    def suppression_hashes(self) -> set[str]:
        rows = self.warehouse.fetchall("SELECT hash FROM suppressions WHERE lifted_at IS NULL")
        return {digest for (digest,) in rows}

    def add_suppressions(self, hashes: Sequence[str], request_id: int | None) -> None:
        now = utc_now()
        known = self.suppression_hashes()
        fresh = sorted(set(hashes) - known)
        if fresh:
            self.warehouse.insert_arrow(
                "suppressions",
                "hash, request_id, created_at",
                pa.table(
                    {
                        "hash": pa.array(fresh, pa.string()),
                        "request_id": pa.array([request_id] * len(fresh), pa.int64()),
                        "created_at": pa.array([now] * len(fresh), pa.timestamp("us")),
                    }
                ),
            )

    def lift_suppressions(self, hashes: Sequence[str], by: str) -> int:
        found = self.warehouse.run(
            "UPDATE suppressions SET lifted_at = ?, lifted_by = ? "
            "WHERE lifted_at IS NULL AND hash IN (SELECT unnest(?::VARCHAR[])) RETURNING 1",
            [utc_now(), by, list(hashes)],
        ).fetchall()
        return len(found)

    def suppressions_of_request(self, request_id: int) -> list[str]:
        rows = self.warehouse.fetchall(
            "SELECT hash FROM suppressions WHERE request_id = ? AND lifted_at IS NULL",
            [request_id],
        )
        return [digest for (digest,) in rows]

    def count_suppressed(self, day: date, events: int) -> None:
        self.warehouse.run("INSERT INTO suppressed_events VALUES (?, ?)", [day, events])

    def suppressed_counts(self) -> tuple[int, int]:
        """(identifiers suppressed now, events dropped in all)."""
        active = self.warehouse.scalar("SELECT count(*) FROM suppressions WHERE lifted_at IS NULL")
        dropped = self.warehouse.scalar("SELECT coalesce(sum(events), 0) FROM suppressed_events")
        return int(active or 0), int(dropped or 0)

    # -- requests ------------------------------------------------------------------------------
    def open_request(
        self, kind: str, subject: str, due: datetime, by: str | None, note: str | None
    ) -> int:
        found = self.warehouse.scalar(
            "INSERT INTO privacy_requests "
            "(kind, subject, status, received_at, due_at, requested_by, note) "
            "VALUES (?, ?, 'received', ?, ?, ?, ?) RETURNING id",
            [kind, subject, utc_now(), due, by, note],
        )
        return int(found)

    def close_request(self, request_id: int, status: str, subject: str, outcome: str) -> None:
        self.warehouse.run(
            "UPDATE privacy_requests SET status = ?, subject = ?, done_at = ?, outcome = ? "
            "WHERE id = ?",
            [status, subject, utc_now(), outcome, request_id],
        )

    def requests(self, status: str | None, limit: int) -> list[tuple[Any, ...]]:
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        return self.warehouse.fetchall(
            "SELECT id, kind, subject, status, received_at, due_at, done_at, requested_by, "
            f"note, outcome FROM privacy_requests {where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        )

    def request(self, request_id: int) -> tuple[Any, ...] | None:
        rows = self.warehouse.fetchall(
            "SELECT id, kind, subject, status, received_at, due_at, done_at, requested_by, "
            "note, outcome FROM privacy_requests WHERE id = ?",
            [request_id],
        )
        return rows[0] if rows else None

    # -- import rejects --------------------------------------------------------------------------
    def add_reject_file(self, path: str) -> None:
        known = self.warehouse.scalar("SELECT count(*) FROM import_rejects WHERE path = ?", [path])
        if not known:
            self.warehouse.run("INSERT INTO import_rejects VALUES (?, ?)", [path, utc_now()])

    def reject_files(self) -> list[str]:
        return [path for (path,) in self.warehouse.fetchall("SELECT path FROM import_rejects")]


def _where(table: PersonalTable, subject: Subject) -> tuple[str, list[Any]]:
    """The WHERE clause that finds the subject's rows of ``table``, and its parameters."""
    if table.finds == "seq":
        return f"{table.columns[0]} IN (SELECT unnest(?::BIGINT[]))", [list(subject.seqs)]
    if table.finds == "sid":
        return f"{table.columns[0]} IN (SELECT unnest(?::BIGINT[]))", [list(subject.sids)]
    if table.finds == "person":
        return f"{table.columns[0]} IN (SELECT unnest(?::BIGINT[]))", [list(subject.persons)]
    if table.finds == "identifier":
        keys = [f"{t}:{v}" for t, v in subject.values]
        ends = [f"({t} || ':' || {v}) IN (SELECT unnest(?::VARCHAR[]))" for t, v in _pairs(table)]
        return " OR ".join(ends), [keys] * len(ends)
    raise ValueError(f"{table.name}: rows found by {table.finds} are not found by a query")


def _pairs(table: PersonalTable) -> list[tuple[str, str]]:
    """(type column, value column) pairs of an ``identifier`` table."""
    columns = table.columns
    return [(columns[i], columns[i + 1]) for i in range(0, len(columns), 2)]
