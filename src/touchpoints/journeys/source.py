"""Where journey analytics read from: Ibis tables named alike on DuckDB and on Spark.

Every analysis is a function of a :class:`Source` and builds Ibis expressions only, so the
same code runs on the embedded DuckDB warehouse and on a Spark cluster (tests run both and
compare). A source needs four tables, the same on every engine:

- ``journey_events`` (seq, ts, type, event, channel, source, path, campaign, medium): a narrow,
  typed copy of the events, kept by :func:`refresh` on DuckDB;
- ``journey_properties`` (seq, key, text_value, number_value): top-level scalar properties;
- ``event_identifiers`` and ``identifiers``: the identity map, which gives each event its
  person at query time (merges and rebuilds need no rewrite of the journey tables).

On Spark these are tables or views of the same names (exported from DuckDB, or produced by
the data team's pipeline).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from touchpoints.warehouse import Warehouse

TABLES = ("journey_events", "journey_properties", "event_identifiers", "identifiers")


@dataclass(frozen=True)
class Source:
    """The journey tables of one engine."""

    backend: Any  # an Ibis backend: ibis.duckdb or ibis.pyspark

    def events(self) -> ir.Table:
        """Every event with its resolved ``person`` and its unresolved ``device`` (the event's
        anchor identifier: a cookie, device or account, as a tool without stitching sees it)."""
        events = self.backend.table("journey_events")
        anchors = self.backend.table("event_identifiers")
        identifiers = self.backend.table("identifiers")
        anchors = anchors.filter(anchors.pos == 0).select("seq", device=anchors.sid)
        persons = identifiers.select(device=identifiers.sid, person=identifiers.person)
        return events.join(anchors, "seq").join(persons, "device")

    def properties(self) -> ir.Table:
        return self.backend.table("journey_properties")


def duckdb_source(warehouse: Warehouse) -> Source:
    """The warehouse's journey tables through Ibis, on this thread's cursor."""
    return Source(ibis.duckdb.from_connection(warehouse.cursor()))


_REFRESH_LOCK = threading.Lock()


def refresh(warehouse: Warehouse) -> int:
    """Copy events the identity map has caught up with into the journey tables; the number
    copied. Set-based: one INSERT … SELECT a table, whatever the number of events."""
    with _REFRESH_LOCK:
        done = int(warehouse.scalar("SELECT coalesce(max(seq), 0) FROM journey_events"))
        upto = int(warehouse.scalar("SELECT processed_seq FROM identity_state") or 0)
        if upto <= done:
            return 0
        cursor = warehouse.cursor()
        warehouse.run("BEGIN TRANSACTION", cursor=cursor)
        try:
            warehouse.run(_events_sql(), [done, upto], cursor=cursor)
            warehouse.run(_properties_sql(), [done, upto], cursor=cursor)
            warehouse.run("COMMIT", cursor=cursor)
        except Exception:
            warehouse.run("ROLLBACK", cursor=cursor)
            raise
        return int(
            warehouse.scalar(
                "SELECT count(*) FROM journey_events WHERE seq > ? AND seq <= ?", [done, upto]
            )
        )


def _events_sql() -> str:
    return """
        INSERT INTO journey_events
            (seq, ts, type, event, channel, source, path, campaign, medium)
        SELECT e.seq, e.timestamp, e.type, coalesce(e.event, e.name, e.type), e.channel,
               e.source,
               coalesce(json_extract_string(e.context, '$.page.path'),
                        CASE WHEN e.type = 'screen' AND starts_with(e.name, '/') THEN e.name END),
               json_extract_string(e.context, '$.campaign.name'),
               json_extract_string(e.context, '$.campaign.medium')
        FROM events e
        WHERE e.seq > ? AND e.seq <= ?
    """


def _properties_sql() -> str:
    return """
        INSERT INTO journey_properties (seq, key, text_value, number_value)
        SELECT seq, key, json_extract_string(properties, path),
               CASE WHEN json_type(properties, path) IN ('BIGINT', 'UBIGINT', 'DOUBLE')
                    THEN TRY_CAST(json_extract_string(properties, path) AS DOUBLE) END
        FROM (
            SELECT seq, properties, key, '$."' || key || '"' AS path
            FROM (
                SELECT seq, properties, unnest(json_keys(properties)) AS key
                FROM events
                WHERE seq > ? AND seq <= ? AND properties IS NOT NULL
                  AND json_type(properties) = 'OBJECT'
            )
            WHERE NOT contains(key, '"') AND NOT contains(key, '\\')
        )
        WHERE json_type(properties, path) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN')
    """
