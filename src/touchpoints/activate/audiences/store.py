"""What audiences and computed traits read and write: their definitions, each person's trait
values, each audience's members with the history of entries and exits and its size per day,
the destinations an audience is sent to, and the identity map as the last evaluation saw it.

An evaluation writes inside one transaction (``cursor``): the persons to evaluate are put in
a temporary table (``_tp_scope``), values and members are replaced for them only, and the
differences (who entered, who exited) are computed here, set-based, however many persons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import pyarrow as pa

from touchpoints.activate.audiences.compile import CLOCK
from touchpoints.warehouse import Warehouse, arrow_sql, registered, run_sql

SCOPE = "_tp_scope"
_NEW = "_tp_members"
_DEFINITION = "id, key, name, definition, created_at, changed_at, evaluated_at"


@dataclass(frozen=True)
class Changed:
    """What a live evaluation must look at: the persons to evaluate (in ``_tp_scope``),
    how many, the moves of identifiers between persons (before, after), and the last
    event the journey tables hold."""

    persons: int
    moves: list[tuple[int, int]]
    facts_seq: int
    persons_hash: int  # the checksum of the map it saw


@dataclass(frozen=True)
class MemberChanges:
    entered: list[int]
    exited: list[int]
    size: int


class AudienceStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        # Definitions added, changed or removed through this store (after each), and the
        # definitions as last read with that count: the live evaluation asks for them on
        # every batch of events, a statement each that waits for the interpreter under load.
        self.changes = 0
        self._current: dict[str, tuple[int, list[tuple[Any, ...]]]] = {}

    # -- definitions ---------------------------------------------------------------------------
    def add(self, table: str, key: str, name: str, definition: str, now: datetime) -> int:
        """A new computed trait (``computed_traits``) or audience (``audiences``)."""
        sequence = {"computed_traits": "computed_trait_id", "audiences": "audience_id"}[table]
        with self.warehouse.transaction() as cursor:
            (new_id,) = run_sql(cursor, f"SELECT nextval('{sequence}')").fetchall()[0]
            run_sql(
                cursor,
                f"INSERT INTO {table} ({_DEFINITION}) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                [new_id, key, name, definition, now, now],
            )
        self.changes += 1
        return int(new_id)

    def definitions(self, table: str) -> list[tuple[Any, ...]]:
        return self.warehouse.fetchall(f"SELECT {_DEFINITION} FROM {_table(table)} ORDER BY id")

    def current(self, table: str) -> list[tuple[Any, ...]]:
        """:meth:`definitions`, read again only after a change through this store (the
        ``evaluated_at`` of each may then be older than the table's)."""
        changes = self.changes
        kept = self._current.get(table)
        if kept is not None and kept[0] == changes:
            return kept[1]
        rows = self.definitions(table)
        self._current[table] = (changes, rows)  # a change meanwhile outdates it
        return rows

    def definition(self, table: str, key: str) -> tuple[Any, ...] | None:
        rows = self.warehouse.fetchall(
            f"SELECT {_DEFINITION} FROM {_table(table)} WHERE key = ?", [key]
        )
        return rows[0] if rows else None

    def change(self, table: str, key: str, name: str, definition: str, now: datetime) -> None:
        self.warehouse.run(
            f"UPDATE {_table(table)} SET name = ?, definition = ?, changed_at = ? WHERE key = ?",
            [name, definition, now, key],
        )
        self.changes += 1

    def evaluated(
        self, table: str, ids: Sequence[int], now: datetime, cursor: duckdb.DuckDBPyConnection
    ) -> None:
        run_sql(
            cursor,
            f"UPDATE {_table(table)} SET evaluated_at = ? WHERE id IN (SELECT unnest(?::BIGINT[]))",
            [now, list(ids)],
        )

    def remove_trait(self, trait_id: int) -> None:
        with self.warehouse.transaction() as cursor:
            run_sql(cursor, "DELETE FROM computed_trait_values WHERE trait_id = ?", [trait_id])
            run_sql(cursor, "DELETE FROM computed_traits WHERE id = ?", [trait_id])
        self.changes += 1

    def remove_audience(self, audience_id: int) -> None:
        """The audience and everything kept about it: members, history, sizes, links."""
        with self.warehouse.transaction() as cursor:
            for table in ("audience_members", "audience_changes", "audience_sizes"):
                run_sql(cursor, f"DELETE FROM {table} WHERE audience_id = ?", [audience_id])
            run_sql(
                cursor, "DELETE FROM audience_destinations WHERE audience_id = ?", [audience_id]
            )
            run_sql(cursor, "DELETE FROM audiences WHERE id = ?", [audience_id])
        self.changes += 1

    # -- what changed since the last evaluation ------------------------------------------------
    def changed(self, cursor: duckdb.DuckDBPyConnection, everyone: bool = False) -> Changed:
        """The persons the journey tables moved identifiers to or from, or gave new events,
        since the last evaluation, into ``_tp_scope`` (read in the caller's transaction, so
        they agree with the journey tables it reads); with ``everyone``, only the moves and
        the last event (everyone is evaluated). The moves are kept in ``_tp_moves`` for
        :meth:`seen`; when the map's checksum is the one the last evaluation saw, nothing
        moved and the map is not compared."""
        seen, known_hash = run_sql(
            cursor, "SELECT evaluated_seq, persons_hash FROM activation_state"
        ).fetchall()[0]
        (upto,) = run_sql(
            cursor, "SELECT coalesce(max(facts_seq), 0) FROM journey_state"
        ).fetchall()[0]
        (now_hash,) = run_sql(cursor, _HASH_SQL).fetchall()[0]
        run_sql(
            cursor,
            "CREATE OR REPLACE TEMP TABLE _tp_moves (sid BIGINT, before BIGINT, after BIGINT)",
        )
        if known_hash is None or int(known_hash) != int(now_hash):
            run_sql(cursor, f"INSERT INTO _tp_moves {_MOVES_SQL}")
        moves = run_sql(
            cursor,
            "SELECT DISTINCT before, after FROM _tp_moves "
            "WHERE before IS NOT NULL AND after IS NOT NULL ORDER BY 1, 2",
        ).fetchall()
        persons = 0
        if not everyone:
            self._scope(cursor)
            run_sql(
                cursor,
                f"INSERT INTO {SCOPE} SELECT before FROM _tp_moves WHERE before IS NOT NULL "
                "UNION SELECT after FROM _tp_moves WHERE after IS NOT NULL "
                "UNION SELECT person FROM journey_facts WHERE seq > ? AND seq <= ?",
                [seen, upto],
            )
            (persons,) = run_sql(cursor, f"SELECT count(*) FROM {SCOPE}").fetchall()[0]
        return Changed(int(persons), [(b, a) for b, a in moves], int(upto), int(now_hash))

    def _scope(self, cursor: duckdb.DuckDBPyConnection) -> None:
        run_sql(cursor, f"CREATE OR REPLACE TEMP TABLE {SCOPE} (person BIGINT)")

    def persons_table(
        self, name: str, persons: Sequence[int], cursor: duckdb.DuckDBPyConnection
    ) -> None:
        """A temporary table ``name`` (person) holding ``persons``."""
        run_sql(cursor, f"CREATE OR REPLACE TEMP TABLE {name} (person BIGINT)")
        table = pa.table({"person": pa.array(list(persons), pa.int64())})
        with registered(cursor, "_tp_person_rows", table):
            run_sql(cursor, f"INSERT INTO {name} SELECT person FROM _tp_person_rows")

    def scope(self, cursor: duckdb.DuckDBPyConnection) -> set[int]:
        """The persons in ``_tp_scope``."""
        return {int(p) for (p,) in run_sql(cursor, f"SELECT person FROM {SCOPE}").fetchall()}

    def drop_scope(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """The temporary tables of an evaluation dropped."""
        for name in (SCOPE, _NEW):
            run_sql(cursor, f"DROP TABLE IF EXISTS {name}")

    def clock(self, now: datetime, cursor: duckdb.DuckDBPyConnection) -> None:
        """``_tp_clock``: the moment the windows of days end at, for the queries that follow."""
        run_sql(
            cursor, f"CREATE OR REPLACE TEMP TABLE {CLOCK} AS SELECT ?::TIMESTAMP AS now", [now]
        )

    def rows(self, select: str, cursor: duckdb.DuckDBPyConnection) -> pa.Table:
        """The rows of ``select`` (a query compiled by Ibis)."""
        return arrow_sql(cursor, select, inline_values=True)

    def seen(self, changed: Changed, now: datetime, cursor: duckdb.DuckDBPyConnection) -> None:
        """The identity map and the events as this evaluation saw them (the moves
        :meth:`changed` found applied): the next one looks at what changed after."""
        run_sql(
            cursor,
            "UPDATE activation_persons AS a SET person = m.after FROM _tp_moves m "
            "WHERE m.sid = a.sid AND m.before IS NOT NULL AND m.after IS NOT NULL",
        )
        run_sql(
            cursor,
            "DELETE FROM activation_persons "
            "WHERE sid IN (SELECT sid FROM _tp_moves WHERE after IS NULL)",
        )
        run_sql(
            cursor,
            "INSERT INTO activation_persons SELECT sid, after FROM _tp_moves WHERE before IS NULL",
        )
        run_sql(
            cursor,
            "UPDATE activation_state SET evaluated_seq = greatest(evaluated_seq, ?), "
            "evaluated_at = ?, persons_hash = ?",
            [changed.facts_seq, now, changed.persons_hash],
        )
        run_sql(cursor, "DROP TABLE IF EXISTS _tp_moves")

    # -- computed trait values -----------------------------------------------------------------
    def replace_values(
        self,
        trait_id: int,
        rows: pa.Table,
        scoped: bool,
        cursor: duckdb.DuckDBPyConnection,
    ) -> None:
        """``rows`` (person, value, number_value, text_value, computed_at) as the values of
        ``trait_id`` for the persons in scope (``scoped``) or for everyone."""
        where = f" AND person IN (SELECT person FROM {SCOPE})" if scoped else ""
        run_sql(cursor, f"DELETE FROM computed_trait_values WHERE trait_id = ?{where}", [trait_id])
        with registered(cursor, "_tp_values", rows):
            run_sql(
                cursor,
                "INSERT INTO computed_trait_values "
                "(trait_id, person, value, number_value, text_value, computed_at) "
                "SELECT ?, person, value, number_value, text_value, computed_at FROM _tp_values",
                [trait_id],
            )

    def values_of(self, person: int) -> list[tuple[Any, ...]]:
        """(trait id, value, computed_at) of each computed trait ``person`` has."""
        return self.warehouse.fetchall(
            "SELECT trait_id, value, computed_at FROM computed_trait_values WHERE person = ?",
            [person],
        )

    def values(self, trait_id: int, limit: int, offset: int) -> tuple[int, list[tuple[Any, ...]]]:
        """How many persons have a value of ``trait_id``, and a page of them (person, value,
        computed_at), largest numbers first."""
        total = self.warehouse.scalar(
            "SELECT count(*) FROM computed_trait_values WHERE trait_id = ?", [trait_id]
        )
        rows = self.warehouse.fetchall(
            "SELECT person, value, computed_at FROM computed_trait_values WHERE trait_id = ? "
            "ORDER BY number_value DESC NULLS LAST, text_value, person LIMIT ? OFFSET ?",
            [trait_id, limit, offset],
        )
        return int(total or 0), rows

    def value_counts(self) -> dict[int, int]:
        return dict(
            self.warehouse.fetchall(
                "SELECT trait_id, count(*) FROM computed_trait_values GROUP BY trait_id"
            )
        )

    # -- members -------------------------------------------------------------------------------
    def replace_members(
        self,
        audience_id: int,
        select: str,
        scoped: bool,
        now: datetime,
        cursor: duckdb.DuckDBPyConnection,
    ) -> MemberChanges:
        """The persons of ``select`` (a query compiled by Ibis: one column, person) as the
        members of ``audience_id`` among the persons in scope (or all); who entered and who
        exited are written to the history and answered (``size``: -1 when nobody did and
        the evaluation is scoped, as nothing then needs it)."""
        run_sql(cursor, f"CREATE OR REPLACE TEMP TABLE {_NEW} AS {select}", inline_values=True)
        where = f" AND person IN (SELECT person FROM {SCOPE})" if scoped else ""
        old = f"SELECT person FROM audience_members WHERE audience_id = ?{where}"
        found = run_sql(
            cursor,
            f"(SELECT person, true FROM (SELECT person FROM {_NEW} EXCEPT {old})) UNION ALL "
            f"(SELECT person, false FROM ({old} EXCEPT SELECT person FROM {_NEW})) ORDER BY 1",
            [audience_id, audience_id],
        ).fetchall()
        entered = [person for person, entering in found if entering]
        exited = [person for person, entering in found if not entering]
        if not found:
            return MemberChanges([], [], -1 if scoped else self._size(audience_id, cursor))
        if exited:
            run_sql(
                cursor,
                "DELETE FROM audience_members WHERE audience_id = ? "
                "AND person IN (SELECT unnest(?::BIGINT[]))",
                [audience_id, exited],
            )
        changes = pa.table(
            {
                "person": pa.array(entered + exited, pa.int64()),
                "change": pa.array(["entered"] * len(entered) + ["exited"] * len(exited)),
            }
        )
        with registered(cursor, "_tp_changes", changes):
            if entered:
                run_sql(
                    cursor,
                    "INSERT INTO audience_members (audience_id, person, entered_at) "
                    "SELECT ?, person, ? FROM _tp_changes WHERE change = 'entered'",
                    [audience_id, now],
                )
            run_sql(
                cursor,
                "INSERT INTO audience_changes (seq, audience_id, person, change, changed_at) "
                "SELECT nextval('audience_change_seq'), ?, person, change, ? FROM _tp_changes "
                "ORDER BY change DESC, person",
                [audience_id, now],
            )
        return MemberChanges(entered, exited, self._size(audience_id, cursor))

    def _size(self, audience_id: int, cursor: duckdb.DuckDBPyConnection) -> int:
        (size,) = run_sql(
            cursor, "SELECT count(*) FROM audience_members WHERE audience_id = ?", [audience_id]
        ).fetchall()[0]
        return int(size)

    def members_among(
        self, audience_id: int, persons: Sequence[int], cursor: duckdb.DuckDBPyConnection
    ) -> set[int]:
        """Of ``persons``, those who are members of ``audience_id``."""
        if not persons:
            return set()
        rows = run_sql(
            cursor,
            "SELECT person FROM audience_members WHERE audience_id = ? "
            "AND person IN (SELECT unnest(?::BIGINT[]))",
            [audience_id, list(persons)],
        ).fetchall()
        return {p for (p,) in rows}

    def known(self, persons: Sequence[int], cursor: duckdb.DuckDBPyConnection) -> list[int]:
        """Of ``persons``, those the journey tables still know (not merged away or erased)."""
        if not persons:
            return []
        return [
            p
            for (p,) in run_sql(
                cursor,
                "SELECT DISTINCT person FROM journey_persons "
                "WHERE person IN (SELECT unnest(?::BIGINT[])) ORDER BY 1",
                [list(persons)],
            ).fetchall()
        ]

    def count_day(
        self,
        audience_id: int,
        day: date,
        size: int,
        entered: int,
        exited: int,
        cursor: duckdb.DuckDBPyConnection,
    ) -> None:
        """The audience's size on ``day``, its entries and exits that day added to."""
        found = run_sql(
            cursor,
            "UPDATE audience_sizes SET size = ?, entered = entered + ?, exited = exited + ? "
            "WHERE audience_id = ? AND day = ? RETURNING size",
            [size, entered, exited, audience_id, day],
        ).fetchall()
        if not found:
            run_sql(
                cursor,
                "INSERT INTO audience_sizes VALUES (?, ?, ?, ?, ?)",
                [audience_id, day, size, entered, exited],
            )

    def sizes(self, audience_id: int, since: date) -> list[tuple[date, int, int, int]]:
        return self.warehouse.fetchall(
            "SELECT day, size, entered, exited FROM audience_sizes "
            "WHERE audience_id = ? AND day >= ? ORDER BY day",
            [audience_id, since],
        )

    def member_counts(self) -> dict[int, int]:
        return dict(
            self.warehouse.fetchall(
                "SELECT audience_id, count(*) FROM audience_members GROUP BY audience_id"
            )
        )

    def members(
        self,
        audience_id: int,
        limit: int,
        offset: int,
        cursor: duckdb.DuckDBPyConnection | None = None,
    ) -> list[tuple[int, datetime]]:
        """(person, entered_at), longest members first."""
        return self.warehouse.run(
            "SELECT person, entered_at FROM audience_members WHERE audience_id = ? "
            "ORDER BY entered_at, person LIMIT ? OFFSET ?",
            [audience_id, limit, offset],
            cursor=cursor,
        ).fetchall()

    def all_members(self, audience_id: int, cursor: duckdb.DuckDBPyConnection) -> list[int]:
        return [
            p
            for (p,) in run_sql(
                cursor,
                "SELECT person FROM audience_members WHERE audience_id = ? ORDER BY person",
                [audience_id],
            ).fetchall()
        ]

    def history(
        self, audience_id: int | None, person: int | None, limit: int
    ) -> list[tuple[int, int, str, datetime]]:
        """(audience id, person, change, at), newest first."""
        clauses, params = ["TRUE"], []
        if audience_id is not None:
            clauses.append("audience_id = ?")
            params.append(audience_id)
        if person is not None:
            clauses.append("person = ?")
            params.append(person)
        return self.warehouse.fetchall(
            "SELECT audience_id, person, change, changed_at FROM audience_changes "
            f"WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT ?",
            [*params, limit],
        )

    def memberships(self, person: int) -> list[tuple[int, datetime]]:
        """(audience id, entered_at) of the audiences ``person`` is in."""
        return self.warehouse.fetchall(
            "SELECT audience_id, entered_at FROM audience_members WHERE person = ? "
            "ORDER BY audience_id",
            [person],
        )

    def prune_history(self, before: datetime) -> int:
        return len(
            self.warehouse.fetchall(
                "DELETE FROM audience_changes WHERE changed_at < ? RETURNING person", [before]
            )
        )

    # -- destinations --------------------------------------------------------------------------
    def links(
        self, audience_id: int | None = None, cursor: duckdb.DuckDBPyConnection | None = None
    ) -> list[tuple[Any, ...]]:
        """(audience id, destination id, mode, linked_at, synced_at, sent, schedule,
        next_run_at, last_rows); the last three for a file link only."""
        where = "WHERE audience_id = ?" if audience_id is not None else ""
        return self.warehouse.run(
            "SELECT audience_id, destination_id, mode, linked_at, synced_at, sent, schedule, "
            "next_run_at, last_rows "
            f"FROM audience_destinations {where} ORDER BY audience_id, destination_id",
            [audience_id] if audience_id is not None else [],
            cursor=cursor,
        ).fetchall()

    def link(
        self,
        audience_id: int,
        destination_id: int,
        mode: str,
        now: datetime,
        cursor: duckdb.DuckDBPyConnection,
        schedule: str | None = None,
    ) -> None:
        run_sql(
            cursor,
            "INSERT INTO audience_destinations "
            "(audience_id, destination_id, mode, linked_at, synced_at, sent, schedule) "
            "VALUES (?, ?, ?, ?, ?, 0, ?)",
            [audience_id, destination_id, mode, now, now, schedule],
        )

    # -- files ---------------------------------------------------------------------------------
    def file_links(
        self, due: datetime | None = None, cursor: duckdb.DuckDBPyConnection | None = None
    ) -> list[tuple[Any, ...]]:
        """Links of mode ``file`` (those whose next run is at or before ``due``, if given):
        (audience id, audience key, destination id, the destination's config, schedule,
        linked_at), oldest due first."""
        where = " AND l.next_run_at <= ?" if due is not None else ""
        return self.warehouse.run(
            "SELECT l.audience_id, a.key, l.destination_id, d.config, l.schedule, l.linked_at "
            "FROM audience_destinations l JOIN audiences a ON a.id = l.audience_id "
            "JOIN destinations d ON d.id = l.destination_id "
            f"WHERE l.mode = 'file'{where} ORDER BY l.next_run_at, l.audience_id, l.destination_id",
            [due] if due is not None else [],
            cursor=cursor,
        ).fetchall()

    def member_rows(
        self, audience_id: int, cursor: duckdb.DuckDBPyConnection
    ) -> list[tuple[int, datetime]]:
        """Every member (person, entered_at), longest members first."""
        return run_sql(
            cursor,
            "SELECT person, entered_at FROM audience_members WHERE audience_id = ? "
            "ORDER BY entered_at, person",
            [audience_id],
        ).fetchall()

    def ran(
        self,
        audience_id: int,
        destination_id: int,
        rows: int,
        now: datetime,
        next_run: datetime,
        cursor: duckdb.DuckDBPyConnection,
    ) -> None:
        """A file link's run written to the outbox: its rows, and when the next one is due."""
        run_sql(
            cursor,
            "UPDATE audience_destinations SET synced_at = ?, sent = sent + 1, last_rows = ?, "
            "next_run_at = ? WHERE audience_id = ? AND destination_id = ?",
            [now, rows, next_run, audience_id, destination_id],
        )

    def unlink(self, audience_id: int, destination_id: int) -> int:
        return len(
            self.warehouse.fetchall(
                "DELETE FROM audience_destinations WHERE audience_id = ? AND destination_id = ? "
                "RETURNING mode",
                [audience_id, destination_id],
            )
        )

    def synced(
        self,
        audience_id: int,
        destination_id: int,
        sent: int,
        now: datetime,
        cursor: duckdb.DuckDBPyConnection,
    ) -> None:
        run_sql(
            cursor,
            "UPDATE audience_destinations SET synced_at = ?, sent = sent + ? "
            "WHERE audience_id = ? AND destination_id = ?",
            [now, sent, audience_id, destination_id],
        )

    def identifiers_of(
        self, persons: Sequence[int], cursor: duckdb.DuckDBPyConnection
    ) -> dict[int, dict[str, str]]:
        """Per person: their first user id, anonymous or device id and e-mail address (by
        when they were first seen), what a message about them names them by."""
        rows = run_sql(
            cursor,
            "SELECT person, type, arg_min(value, first_seq) FROM identifiers "
            "WHERE person IN (SELECT unnest(?::BIGINT[])) "
            "AND type IN ('user_id', 'anonymous_id', 'device_id', 'email') GROUP BY ALL",
            [list(persons)],
        ).fetchall()
        out: dict[int, dict[str, str]] = {}
        for person, kind, value in rows:
            out.setdefault(person, {})[kind] = value
        return out


def _table(name: str) -> str:
    if name not in ("computed_traits", "audiences"):
        raise ValueError(f"not a table of definitions: {name}")
    return name


# Identifiers whose person changed since the last evaluation (sid, before, after); NULL
# before: a new identifier; NULL after: one that is gone (erased, or no event carries it).
_MOVES_SQL = """
    SELECT coalesce(a.sid, j.sid), a.person AS before, j.person AS after
    FROM activation_persons a FULL JOIN journey_persons j ON j.sid = a.sid
    WHERE a.person IS DISTINCT FROM j.person
"""
# The checksum of the identity map the journey tables hold: a change of any identifier's
# person changes it. A sum, not an xor: DuckDB combines the hashes of several values with an
# xor, so the person's part of two identifiers of one person would cancel out. Kept below
# 2^62, so it fits a BIGINT.
_HASH_SQL = (
    "SELECT (coalesce(sum((hash(sid, person) >> 2)::HUGEINT), 0) % 4611686018427387904)"
    "::BIGINT FROM journey_persons"
)
