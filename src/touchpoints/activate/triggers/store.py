"""What triggers read and write: their definitions, each firing per person, the delays
waiting, and how far they have read the journey facts and the audiences' changes.

A dispatch writes inside one transaction (``cursor``): the firings, the messages they put
in the outbox, the delays they start and the new reading position land together, or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from touchpoints.journeys.store import scalars_sql
from touchpoints.warehouse import Warehouse, registered, run_sql

WINDOW = "_tp_trigger_window"  # (low, high): the event seqs a dispatch reads
BATCH_EVENTS = "_tp_trigger_events"  # the window's events of an event trigger's names
BATCH_PROPERTIES = "_tp_trigger_properties"  # and their properties
_NAMES = "_tp_trigger_names"  # the names an event trigger is for, registered for a call
# The journey tables' narrow copy of an event (journeys/store.py), for the events that matter.
_BATCH_EVENTS_SQL = f"""
    CREATE OR REPLACE TEMP TABLE {BATCH_EVENTS} AS
    SELECT e.seq, e.timestamp AS ts, coalesce(e.event, e.name, e.type) AS event, e.channel
    FROM events e
    WHERE e.seq > {{low}} AND e.seq <= {{high}}
      AND coalesce(e.event, e.name, e.type) IN (SELECT name FROM {_NAMES})
"""
_DEFINITION = "id, key, name, definition, enabled, created_at, changed_at"
_FIRING = (
    "f.id, t.key, f.person, f.cause, f.fired_at, f.state, f.steps_done, f.detail, f.changed_at"
)


class TriggerStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.changes = 0  # triggers added, changed or removed through this store (after each)
        # The earliest delay's due time, kept while only this store changes the delays
        # (None: read it again; (None,): no delay waits). An erasure deleting a person's
        # delays leaves it early at worst: a turn then finds nothing due and reads again.
        self._next_due: tuple[datetime | None] | None = None
        # What triggers have read up to, kept once read (only this store moves it), and
        # what the table holds (the position is written with firings, else at times).
        self._position: tuple[int, int] | None = None
        self._saved: tuple[int, int] | None = None

    # -- definitions -----------------------------------------------------------------------------
    def add(self, key: str, name: str, definition: str, enabled: bool, now: datetime) -> int:
        with self.warehouse.transaction() as cursor:
            (new_id,) = run_sql(cursor, "SELECT nextval('trigger_id')").fetchone() or (0,)
            run_sql(
                cursor,
                f"INSERT INTO triggers ({_DEFINITION}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [new_id, key, name, definition, enabled, now, now],
            )
        self.changes += 1
        return int(new_id)

    def definitions(self, cursor: duckdb.DuckDBPyConnection | None = None) -> list[tuple[Any, ...]]:
        sql = f"SELECT {_DEFINITION} FROM triggers ORDER BY id"
        if cursor is not None:
            return run_sql(cursor, sql).fetchall()
        return self.warehouse.fetchall(sql)

    def definition(self, key: str) -> tuple[Any, ...] | None:
        rows = self.warehouse.fetchall(f"SELECT {_DEFINITION} FROM triggers WHERE key = ?", [key])
        return rows[0] if rows else None

    def change(self, key: str, name: str, definition: str, enabled: bool, now: datetime) -> None:
        self.warehouse.run(
            "UPDATE triggers SET name = ?, definition = ?, enabled = ?, changed_at = ? "
            "WHERE key = ?",
            [name, definition, enabled, now, key],
        )
        self.changes += 1

    def remove(self, trigger_id: int) -> None:
        """The trigger, its firings and its delays."""
        with self.warehouse.transaction() as cursor:
            for table in ("trigger_delays", "trigger_firings"):
                run_sql(cursor, f"DELETE FROM {table} WHERE trigger_id = ?", [trigger_id])
            run_sql(cursor, "DELETE FROM triggers WHERE id = ?", [trigger_id])
        self.changes += 1
        self._next_due = None

    # -- reading position ------------------------------------------------------------------------
    def position(self, cursor: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        """(events_seq, audience_seq): what triggers have read up to (the table may hold
        an earlier position: see :meth:`passed`)."""
        if self._position is None:
            # Fetched to the end: DuckDB 2 keeps a cursor busy until then.
            rows = run_sql(cursor, "SELECT events_seq, audience_seq FROM trigger_state").fetchall()
            self._position = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
            self._saved = self._position
        return self._position

    def moved(self, events_seq: int, audience_seq: int, cursor: duckdb.DuckDBPyConnection) -> None:
        """Move the position, inside the dispatch's transaction (kept from now on: a
        transaction that fails after this must call :meth:`forget`)."""
        run_sql(
            cursor,
            "UPDATE trigger_state SET events_seq = ?, audience_seq = ?",
            [events_seq, audience_seq],
        )
        self._position = self._saved = (events_seq, audience_seq)

    def passed(self, events_seq: int, audience_seq: int) -> None:
        """Move the position in memory only (see Dispatch.run: what has not been saved is
        read again after a restart, and finds nothing to fire)."""
        self._position = (events_seq, audience_seq)

    def save(self) -> None:
        """Write the position to the table, if it moved past it."""
        if self._position is not None and self._position != self._saved:
            with self.warehouse.using():
                self.moved(*self._position, self.warehouse.cursor())

    def forget(self) -> None:
        """Read the position and the delays' next due time again (a transaction failed)."""
        self._position = self._saved = None
        self._next_due = None

    def facts_head(self, cursor: duckdb.DuckDBPyConnection) -> int:
        """The last event the derived facts and stage entries hold."""
        facts = run_sql(cursor, "SELECT max(facts_seq) FROM journey_state").fetchall()
        return int(facts[0][0] or 0) if facts else 0

    def changes_head(self, cursor: duckdb.DuckDBPyConnection) -> int:
        """The last audience change."""
        changes = run_sql(cursor, "SELECT max(seq) FROM audience_changes").fetchall()
        return int(changes[0][0] or 0) if changes else 0

    def batch(
        self,
        window: tuple[int, int],
        names: list[str],
        properties: bool,
        cursor: duckdb.DuckDBPyConnection,
        select: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """The temporary tables an event trigger's query reads: :data:`WINDOW` (low, high],
        the window's events named ``names`` (:data:`BATCH_EVENTS`) and, with
        ``properties``, their properties (:data:`BATCH_PROPERTIES`, else empty); then the
        rows of ``select`` over them, if given. All in one call to DuckDB: each call waits
        for the interpreter under load (Warehouse.script)."""
        low, high = int(window[0]), int(window[1])
        statements = [
            f"CREATE OR REPLACE TEMP TABLE {WINDOW} AS "
            f"SELECT {low}::BIGINT AS low, {high}::BIGINT AS high",
            _BATCH_EVENTS_SQL.format(low=low, high=high),
            f"CREATE OR REPLACE TEMP TABLE {BATCH_PROPERTIES} "
            "(seq BIGINT, key VARCHAR, text_value VARCHAR, number_value DOUBLE)",
        ]
        if properties:
            among = f"seq IN (SELECT seq FROM {BATCH_EVENTS})"
            bounds = f"seq > {low} AND seq <= {high}"
            statements.append(scalars_sql(BATCH_PROPERTIES, "properties", among, bounds))
        if select is not None:
            statements.append(select)
        with registered(cursor, _NAMES, pa.table({"name": pa.array(names, pa.string())})):
            found = run_sql(cursor, ";\n".join(statements))
            return found.fetchall() if select is not None else []

    def applied(self) -> int:
        """The last event the identity map has applied (the journey facts follow it)."""
        return int(self.warehouse.scalar("SELECT processed_seq FROM identity_state") or 0)

    # -- causes ----------------------------------------------------------------------------------
    def stage_entries(
        self, stage: str, low: int, high: int, cursor: duckdb.DuckDBPyConnection
    ) -> list[tuple[int, int]]:
        """(person, seq of the event) of entries into ``stage`` by events in (low, high]."""
        return run_sql(
            cursor,
            "SELECT person, entered_seq FROM journey_stage_entries "
            "WHERE stage = ? AND entered_seq > ? AND entered_seq <= ? ORDER BY entered_seq",
            [stage, low, high],
        ).fetchall()

    def audience_changes(
        self, audience_id: int, change: str, low: int, high: int, cursor: duckdb.DuckDBPyConnection
    ) -> list[tuple[int, int]]:
        """(person, seq) of entries (or exits) of ``audience_id`` with seq in (low, high]."""
        return run_sql(
            cursor,
            "SELECT person, seq FROM audience_changes WHERE audience_id = ? AND change = ? "
            "AND seq > ? AND seq <= ? ORDER BY seq",
            [audience_id, change, low, high],
        ).fetchall()

    def audience_ids(self, cursor: duckdb.DuckDBPyConnection) -> dict[str, int]:
        return dict(run_sql(cursor, "SELECT key, id FROM audiences").fetchall())

    def event_properties(
        self, seqs: Sequence[int], cursor: duckdb.DuckDBPyConnection
    ) -> dict[int, tuple[str | None, str, str | None]]:
        """Per event seq: (its name, its messageId, its properties as JSON)."""
        if not seqs:
            return {}
        rows = run_sql(
            cursor,
            "SELECT seq, coalesce(event, name, type), message_id, properties FROM events "
            "WHERE seq IN (SELECT unnest(?::BIGINT[]))",
            [list(seqs)],
        ).fetchall()
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    # -- firings ---------------------------------------------------------------------------------
    def fired_since(
        self, trigger_id: int, persons: Sequence[int], since: datetime, cursor: Any
    ) -> dict[int, int]:
        """Per person (as the identity map has them now), how many times ``trigger_id`` fired
        for them since ``since``, counting the firings of every person merged into them."""
        if not persons:
            return {}
        rows = run_sql(
            cursor,
            "SELECT coalesce(i.person, f.person) AS now_person, count(*) "
            "FROM trigger_firings f LEFT JOIN identifiers i ON i.sid = f.person "
            "WHERE f.trigger_id = ? AND f.fired_at >= ? "
            "AND coalesce(i.person, f.person) IN (SELECT unnest(?::BIGINT[])) GROUP BY 1",
            [trigger_id, since, list(persons)],
        ).fetchall()
        return {int(person): int(n) for person, n in rows}

    def new_firing_ids(self, count: int, cursor: duckdb.DuckDBPyConnection) -> list[int]:
        if count <= 0:
            return []
        rows = run_sql(
            cursor, "SELECT nextval('trigger_firing_id') FROM range(?)", [count]
        ).fetchall()
        return [int(row[0]) for row in rows]

    def add_firings(self, rows: list[tuple[Any, ...]], cursor: duckdb.DuckDBPyConnection) -> None:
        """Rows of (id, trigger_id, person, cause, cause_seq, fired_at, state, steps_done,
        detail, changed_at)."""
        if rows:
            cursor.executemany(
                "INSERT INTO trigger_firings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def update_firing(
        self,
        firing_id: int,
        state: str,
        steps_done: int,
        detail: str | None,
        now: datetime,
        cursor: duckdb.DuckDBPyConnection,
    ) -> None:
        run_sql(
            cursor,
            "UPDATE trigger_firings SET state = ?, steps_done = ?, detail = ?, changed_at = ? "
            "WHERE id = ?",
            [state, steps_done, detail, now, firing_id],
        )

    def add_delays(self, rows: list[tuple[Any, ...]], cursor: duckdb.DuckDBPyConnection) -> None:
        """Rows of (firing_id, trigger_id, person, step, due_at)."""
        if rows:
            cursor.executemany("INSERT INTO trigger_delays VALUES (?, ?, ?, ?, ?)", rows)
            if self._next_due is not None:  # earlier at worst, should the transaction fail
                known = [d for d in (self._next_due[0], *(row[4] for row in rows)) if d]
                self._next_due = (min(known),)

    def due_delays(
        self, now: datetime, limit: int, cursor: duckdb.DuckDBPyConnection
    ) -> list[tuple[int, int, int, int, str | None]]:
        """Delays past due: (firing_id, trigger_id, person now, step, the firing's cause),
        the oldest first."""
        return run_sql(
            cursor,
            "SELECT d.firing_id, d.trigger_id, coalesce(i.person, d.person), d.step, f.cause "
            "FROM trigger_delays d LEFT JOIN identifiers i ON i.sid = d.person "
            "LEFT JOIN trigger_firings f ON f.id = d.firing_id "
            "WHERE d.due_at <= ? ORDER BY d.due_at, d.firing_id LIMIT ?",
            [now, limit],
        ).fetchall()

    def drop_delays(self, firing_ids: Sequence[int], cursor: duckdb.DuckDBPyConnection) -> None:
        run_sql(
            cursor,
            "DELETE FROM trigger_delays WHERE firing_id IN (SELECT unnest(?::BIGINT[]))",
            [list(firing_ids)],
        )
        self._next_due = None

    def next_due(self) -> datetime | None:
        """When the earliest delay falls due (None: none waits)."""
        if self._next_due is None:
            found = self.warehouse.scalar("SELECT min(due_at) FROM trigger_delays")
            self._next_due = (found if isinstance(found, datetime) else None,)
        return self._next_due[0]

    def waiting(self) -> dict[int, int]:
        """Per trigger, how many delays are waiting."""
        rows = self.warehouse.fetchall("SELECT trigger_id, count(*) FROM trigger_delays GROUP BY 1")
        return {int(t): int(n) for t, n in rows}

    def counts(self, since: datetime) -> dict[int, tuple[int, int]]:
        """Per trigger: (firings in all, firings since ``since``)."""
        rows = self.warehouse.fetchall(
            "SELECT trigger_id, count(*), count(*) FILTER (WHERE fired_at >= ?) "
            "FROM trigger_firings GROUP BY 1",
            [since],
        )
        return {int(t): (int(a), int(b)) for t, a, b in rows}

    def firings(
        self, trigger_id: int | None, person: int | None, limit: int
    ) -> list[tuple[Any, ...]]:
        """Firings, newest first (of one trigger, or all; of one person, or all)."""
        tests, params = [], []
        if trigger_id is not None:
            tests.append("f.trigger_id = ?")
            params.append(trigger_id)
        if person is not None:
            tests.append("f.person IN (SELECT sid FROM identifiers WHERE person = ?)")
            params.append(person)
        where = f"WHERE {' AND '.join(tests)}" if tests else ""
        return self.warehouse.fetchall(
            f"SELECT {_FIRING} FROM trigger_firings f JOIN triggers t ON t.id = f.trigger_id "
            f"{where} ORDER BY f.fired_at DESC, f.id DESC LIMIT ?",
            [*params, limit],
        )
