"""What personalisation reads and writes: placements (validated JSON), the decision log
(each decision: placement, person, what was shown and why), a person's live facts (their
audiences, computed traits, predictions, journey stages) and the control-group comparison
the uplift is computed from.

A decision names its person by number at the time (a person's number is the surrogate of
one of their identifiers), so after a merge the comparison finds the person it now belongs
to through ``identifiers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from touchpoints.warehouse import Warehouse, run_sql

_DEFINITION = "id, key, name, definition, created_at, changed_at"
DECISION_COLUMNS = "placement_id, person, rule, strategy, reason, control, decided_at"
DECISION_SCHEMA = pa.schema(
    [
        ("placement_id", pa.int64()),
        ("person", pa.int64()),
        ("rule", pa.string()),
        ("strategy", pa.string()),
        ("reason", pa.string()),
        ("control", pa.bool_()),
        ("decided_at", pa.timestamp("us")),
    ]
)
# The reasons a decision counts in the comparison: persons assigned to a group (those who
# refused personalisation are in neither).
COMPARED = ("rule", "default", "control")


class PlacementStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    # -- placements ----------------------------------------------------------------------------
    def add(self, key: str, name: str, definition: str, now: datetime) -> int:
        with self.warehouse.transaction() as cursor:
            (new_id,) = run_sql(cursor, "SELECT nextval('placement_id')").fetchall()[0]
            run_sql(
                cursor,
                f"INSERT INTO placements ({_DEFINITION}) VALUES (?, ?, ?, ?, ?, ?)",
                [new_id, key, name, definition, now, now],
            )
        return int(new_id)

    def definitions(self) -> list[tuple[Any, ...]]:
        return self.warehouse.fetchall(f"SELECT {_DEFINITION} FROM placements ORDER BY key")

    def definition(self, key: str) -> tuple[Any, ...] | None:
        rows = self.warehouse.fetchall(f"SELECT {_DEFINITION} FROM placements WHERE key = ?", [key])
        return rows[0] if rows else None

    def change(self, key: str, name: str, definition: str, now: datetime) -> None:
        self.warehouse.run(
            "UPDATE placements SET name = ?, definition = ?, changed_at = ? WHERE key = ?",
            [name, definition, now, key],
        )

    def remove(self, placement_id: int) -> None:
        """The placement and its decision log."""
        with self.warehouse.transaction() as cursor:
            run_sql(cursor, "DELETE FROM decisions WHERE placement_id = ?", [placement_id])
            run_sql(cursor, "DELETE FROM placements WHERE id = ?", [placement_id])

    # -- the decision log ----------------------------------------------------------------------
    def log(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Append decisions (rows in :data:`DECISION_COLUMNS` order) in one Arrow batch."""
        columns = list(zip(*rows, strict=True))
        table = pa.table(
            [
                pa.array(list(column), field.type)
                for column, field in zip(columns, DECISION_SCHEMA, strict=True)
            ],
            schema=DECISION_SCHEMA,
        )
        self.warehouse.insert_arrow("decisions", DECISION_COLUMNS, table)

    def counts(self) -> dict[int, tuple[int, datetime | None]]:
        """Per placement: decisions logged, and the latest."""
        rows = self.warehouse.fetchall(
            "SELECT placement_id, count(*), max(decided_at) FROM decisions GROUP BY 1"
        )
        return {int(p): (int(n), last) for p, n, last in rows}

    def reasons(self, placement_id: int) -> list[tuple[str, str | None, int]]:
        """(reason, rule, decisions) of one placement."""
        return self.warehouse.fetchall(
            "SELECT reason, rule, count(*) FROM decisions WHERE placement_id = ? "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
            [placement_id],
        )

    def groups(
        self, placement_id: int, conversion_event: str, days: int
    ) -> list[tuple[bool, int, int]]:
        """(control, persons exposed, persons who converted) of one placement: each person
        in the group of their first decision, converted when the journey tables hold a
        ``conversion_event`` of theirs after it, within ``days``."""
        compared = ", ".join(f"'{reason}'" for reason in COMPARED)
        return self.warehouse.fetchall(
            f"""
            WITH exposed AS (
                SELECT coalesce(i.person, d.person) AS person, d.decided_at, d.control
                FROM decisions d LEFT JOIN identifiers i ON i.sid = d.person
                WHERE d.placement_id = ? AND d.reason IN ({compared})
            ), firsts AS (
                SELECT person, min(decided_at) AS first_at, arg_min(control, decided_at) AS control
                FROM exposed GROUP BY person
            ), converted AS (
                SELECT DISTINCT f.person
                FROM firsts f JOIN journey_facts j ON j.person = f.person
                WHERE j.type = 'track' AND j.event = ? AND j.ts > f.first_at
                  AND j.ts <= f.first_at + to_days(?)
            )
            SELECT f.control, count(*), count(c.person)
            FROM firsts f LEFT JOIN converted c ON c.person = f.person
            GROUP BY f.control ORDER BY f.control
            """,
            [placement_id, conversion_event, days],
        )

    # -- a person's live facts -----------------------------------------------------------------
    def audiences_of(self, person: int) -> list[str]:
        rows = self.warehouse.fetchall(
            "SELECT a.key FROM audience_members m JOIN audiences a ON a.id = m.audience_id "
            "WHERE m.person = ?",
            [person],
        )
        return [key for (key,) in rows]

    def computed_of(self, person: int) -> list[tuple[str, str | None, Any, Any, Any]]:
        """(key, kind, value JSON, number, text) of every computed trait; NULL values for
        one the person has none of."""
        return self.warehouse.fetchall(
            "SELECT t.key, json_extract_string(t.definition, '$.kind'), v.value, "
            "v.number_value, v.text_value FROM computed_traits t "
            "LEFT JOIN computed_trait_values v ON v.trait_id = t.id AND v.person = ?",
            [person],
        )

    def predictions_of(self, person: int) -> dict[str, float]:
        """The person's latest predictions, by the names the audience language uses."""
        out: dict[str, float] = {}
        for table, names in (
            (
                "predictions",
                (
                    "p_alive",
                    "predicted_clv_12m",
                    "expected_purchases_30d",
                    "expected_purchases_90d",
                    "expected_purchases_365d",
                    "expected_order_value",
                    "average_order_value",
                ),
            ),
            ("churn_scores", ("churn_risk", "churn_percentile")),
        ):
            rows = self.warehouse.fetchall(
                f"SELECT {', '.join(names)} FROM {table} WHERE person = ? "
                "ORDER BY scored_at DESC LIMIT 1",
                [person],
            )
            if rows:
                for name, value in zip(names, rows[0], strict=True):
                    if value is not None:
                        out[name] = float(value)
        return out

    def stages_of(self, person: int) -> list[tuple[str, int, datetime]]:
        """(stage, its index, entered at) of each stage the person entered."""
        return self.warehouse.fetchall(
            "SELECT stage, stage_index, entered_at FROM journey_stage_entries WHERE person = ?",
            [person],
        )
