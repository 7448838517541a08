"""What activation reads and writes: the destinations, the outbox and the delivery log.

The outbox is the one source of truth about a message: it is written in the caller's
transaction (``cursor``), and the worker moves it from ``pending`` to ``delivered`` or
``dead``. Only the head of an ordering key (the oldest pending message of a person, per
destination) is ever due, so a person's messages arrive in order while other persons'
messages pass a failing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb

from touchpoints.warehouse import Warehouse

_DESTINATION = (
    "id, kind, name, config, secrets, purposes, state, state_reason, created_at, changed_at"
)
_MESSAGE = (
    "seq, message_id, destination, person, ordering_key, payload, created_at, "
    "next_attempt_at, attempts, state, last_status, last_error, done_at"
)
_ATTEMPT = (
    "message_id, destination, person, attempt, attempted_at, status, outcome, latency_ms, error"
)


class ActivationStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    # -- destinations ------------------------------------------------------------------------
    def add_destination(
        self, kind: str, name: str, config: str, secrets: str, purposes: str, now: datetime
    ) -> int:
        with self.warehouse.transaction() as cursor:
            (new_id,) = self.warehouse.run(
                "SELECT nextval('destination_id_seq')", cursor=cursor
            ).fetchall()[0]
            self.warehouse.run(
                f"INSERT INTO destinations ({_DESTINATION}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [new_id, kind, name, config, secrets, purposes, "enabled", None, now, now],
                cursor=cursor,
            )
        return int(new_id)

    def start_forwarding(self, destination_id: int) -> None:
        """Forward the events collected from now on (not the history) to ``destination_id``."""
        self.warehouse.run(
            "UPDATE destinations SET forwarded_seq = "
            "(SELECT coalesce(max(seq), 0) FROM events) WHERE id = ?",
            [destination_id],
        )

    def forwarding(self) -> list[tuple[Any, ...]]:
        """Enabled destinations that collected events are forwarded to: id, config,
        purposes, and the last event forwarded."""
        return self.warehouse.fetchall(
            "SELECT id, config, purposes, forwarded_seq FROM destinations "
            "WHERE state = 'enabled' AND forwarded_seq IS NOT NULL ORDER BY id"
        )

    def events_to_forward(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        """Events after ``after`` that the identity map has read (so their person is known):
        seq, type, message id, the event as sent, and its person."""
        return self.warehouse.fetchall(
            """
            SELECT e.seq, e.type, e.message_id, e.raw,
                   (SELECT min(i.person) FROM event_identifiers ei
                    JOIN identifiers i ON i.sid = ei.sid WHERE ei.seq = e.seq)
            FROM events e
            WHERE e.seq > ? AND e.seq <= (SELECT processed_seq FROM identity_state)
            ORDER BY e.seq
            LIMIT ?
            """,
            [after, limit],
        )

    def forwarded(self, destination_id: int, seq: int, cursor: duckdb.DuckDBPyConnection) -> None:
        self.warehouse.run(
            "UPDATE destinations SET forwarded_seq = ? WHERE id = ?",
            [seq, destination_id],
            cursor=cursor,
        )

    def destinations(self) -> list[tuple[Any, ...]]:
        return self.warehouse.fetchall(f"SELECT {_DESTINATION} FROM destinations ORDER BY id")

    def destination(
        self, destination_id: int, cursor: duckdb.DuckDBPyConnection | None = None
    ) -> tuple[Any, ...] | None:
        rows = self.warehouse.run(
            f"SELECT {_DESTINATION} FROM destinations WHERE id = ?", [destination_id], cursor=cursor
        ).fetchall()
        return rows[0] if rows else None

    def set_state(self, destination_id: int, state: str, reason: str | None, now: datetime) -> int:
        return _count(
            self.warehouse.fetchall(
                "UPDATE destinations SET state = ?, state_reason = ?, changed_at = ? "
                "WHERE id = ? RETURNING id",
                [state, reason, now, destination_id],
            )
        )

    # -- the outbox --------------------------------------------------------------------------
    def enqueue(
        self,
        rows: Sequence[tuple[str, int, int | None, str, str]],
        now: datetime,
        due: datetime,
        cursor: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        """Write messages ``(message_id, destination, person, ordering_key, payload)``, due
        at ``due``, through ``cursor`` (the caller's transaction) or in one of their own."""
        sql = (
            f"INSERT INTO outbox ({_MESSAGE}) VALUES "
            "(nextval('outbox_seq'), ?, ?, ?, ?, ?, ?, ?, 0, 'pending', NULL, NULL, NULL)"
        )
        params = [[*row, now, due] for row in rows]
        if cursor is not None:
            cursor.executemany(sql, params)
            return
        with self.warehouse.transaction() as own:
            own.executemany(sql, params)

    def due(self, now: datetime, limit: int) -> list[tuple[Any, ...]]:
        """Messages to send now: pending, due, of an enabled destination, and the oldest
        pending message of their ordering key at their destination."""
        return self.warehouse.fetchall(
            f"""
            SELECT {", ".join("o." + c.strip() for c in _MESSAGE.split(","))}
            FROM outbox o JOIN destinations d ON d.id = o.destination
            WHERE o.state = 'pending' AND d.state = 'enabled' AND o.next_attempt_at <= ?
              AND NOT EXISTS (
                SELECT 1 FROM outbox p
                WHERE p.destination = o.destination AND p.ordering_key = o.ordering_key
                  AND p.state = 'pending' AND p.seq < o.seq)
            ORDER BY o.next_attempt_at, o.seq
            LIMIT ?
            """,
            [now, limit],
        )

    def next_due(self) -> datetime | None:
        value = self.warehouse.scalar(
            "SELECT min(o.next_attempt_at) FROM outbox o JOIN destinations d "
            "ON d.id = o.destination WHERE o.state = 'pending' AND d.state = 'enabled'"
        )
        return value if isinstance(value, datetime) else None

    def record(
        self,
        message: tuple[Any, ...],
        attempt: tuple[int, datetime, int | None, str, float, str | None],
        state: str,
        next_attempt_at: datetime,
    ) -> None:
        """An attempt of ``message`` (its seq, message id, destination, person) in the log,
        and the message's new state, together."""
        seq, message_id, destination, person = message
        number, at, status, outcome, latency_ms, error = attempt
        with self.warehouse.transaction() as cursor:
            # Only while the message exists: one erased during its attempt leaves no line.
            self.warehouse.run(
                f"INSERT INTO delivery_attempts ({_ATTEMPT}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM outbox WHERE seq = ?)",
                [
                    message_id,
                    destination,
                    person,
                    number,
                    at,
                    status,
                    outcome,
                    latency_ms,
                    error,
                    seq,
                ],
                cursor=cursor,
            )
            self.warehouse.run(
                "UPDATE outbox SET attempts = ?, state = ?, next_attempt_at = ?, "
                "last_status = ?, last_error = ?, done_at = ? WHERE seq = ?",
                [
                    number,
                    state,
                    next_attempt_at,
                    status,
                    error,
                    at if state != "pending" else None,
                    seq,
                ],
                cursor=cursor,
            )

    def messages(
        self, destination: int | None, state: str | None, limit: int
    ) -> list[tuple[Any, ...]]:
        where, params = _filters(destination, state)
        return self.warehouse.fetchall(
            f"SELECT {_MESSAGE} FROM outbox {where} ORDER BY seq DESC LIMIT ?", [*params, limit]
        )

    def message(self, message_id: str) -> tuple[Any, ...] | None:
        rows = self.warehouse.fetchall(
            f"SELECT {_MESSAGE} FROM outbox WHERE message_id = ?", [message_id]
        )
        return rows[0] if rows else None

    def replay(self, destination: int | None, message_ids: Sequence[str], now: datetime) -> int:
        """Dead letters back to pending, due now, with their attempts counted from zero."""
        where, params = _filters(destination, "dead")
        if message_ids:
            where += " AND message_id IN (SELECT unnest(?::VARCHAR[]))"
            params.append(list(message_ids))
        return _count(
            self.warehouse.fetchall(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, "
                f"done_at = NULL {where} RETURNING seq",
                [now, *params],
            )
        )

    def payloads_of(
        self, ordering: str, cursor: duckdb.DuckDBPyConnection
    ) -> list[tuple[int, str]]:
        """(seq, payload) of every message (any state) whose ordering key is LIKE ``ordering``."""
        return self.warehouse.run(
            "SELECT seq, payload FROM outbox WHERE ordering_key LIKE ? ORDER BY seq",
            [ordering],
            cursor=cursor,
        ).fetchall()

    def set_payload(self, seq: int, payload: str, cursor: duckdb.DuckDBPyConnection) -> None:
        """A message's payload written again (an erasure took a person's rows out of it)."""
        self.warehouse.run(
            "UPDATE outbox SET payload = ? WHERE seq = ?", [payload, seq], cursor=cursor
        )

    def remove_ordered(self, ordering_key: str, cursor: duckdb.DuckDBPyConnection) -> int:
        """Every message of ``ordering_key`` (any state) and its attempts deleted; how many."""
        self.warehouse.run(
            "DELETE FROM delivery_attempts WHERE message_id IN "
            "(SELECT message_id FROM outbox WHERE ordering_key = ?)",
            [ordering_key],
            cursor=cursor,
        )
        return _count(
            self.warehouse.run(
                "DELETE FROM outbox WHERE ordering_key = ? RETURNING seq",
                [ordering_key],
                cursor=cursor,
            ).fetchall()
        )

    def attempts(self, destination: int | None, limit: int) -> list[tuple[Any, ...]]:
        where, params = _filters(destination, None)
        return self.warehouse.fetchall(
            f"SELECT {_ATTEMPT} FROM delivery_attempts {where} ORDER BY attempted_at DESC LIMIT ?",
            [*params, limit],
        )

    def prune(self, before: datetime) -> tuple[int, int]:
        """Delivered and dead messages done before ``before``, and attempts made before it
        of messages no longer pending, deleted; how many of each."""
        with self.warehouse.transaction() as cursor:
            messages = self.warehouse.run(
                "DELETE FROM outbox WHERE state <> 'pending' AND done_at < ? RETURNING seq",
                [before],
                cursor=cursor,
            ).fetchall()
            attempts = self.warehouse.run(
                "DELETE FROM delivery_attempts WHERE attempted_at < ? AND message_id NOT IN "
                "(SELECT message_id FROM outbox WHERE state = 'pending') RETURNING attempt",
                [before],
                cursor=cursor,
            ).fetchall()
        return len(messages), len(attempts)

    def counts(self) -> dict[int, dict[str, int]]:
        """Per destination: messages per state, and attempts that succeeded and failed."""
        out: dict[int, dict[str, int]] = {}
        for destination, state, n in self.warehouse.fetchall(
            "SELECT destination, state, count(*) FROM outbox GROUP BY ALL"
        ):
            out.setdefault(destination, {})[state] = n
        for destination, outcome, n in self.warehouse.fetchall(
            "SELECT destination, CASE WHEN outcome = 'delivered' THEN 'ok' ELSE 'failed' END, "
            "count(*) FROM delivery_attempts GROUP BY ALL"
        ):
            out.setdefault(destination, {})[f"attempts_{outcome}"] = n
        return out


def _filters(destination: int | None, state: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = ["TRUE"]
    params: list[Any] = []
    if destination is not None:
        clauses.append("destination = ?")
        params.append(destination)
    if state is not None:
        clauses.append("state = ?")
        params.append(state)
    return "WHERE " + " AND ".join(clauses), params


def _count(rows: list[Any]) -> int:
    return len(rows)
