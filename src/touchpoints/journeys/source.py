"""Where journey analytics read from: Ibis tables named alike on DuckDB and on Spark.

Every analysis is a function of a :class:`Source` and builds Ibis expressions only, so the
same code runs on the embedded DuckDB warehouse and on a Spark cluster (tests run both and
compare). A source needs four tables, the same on every engine:

- ``journey_events`` (seq, ts, type, event, channel, source, path, campaign, medium): a narrow,
  typed copy of the events, kept by :func:`refresh` on DuckDB;
- ``journey_properties`` (seq, key, text_value, number_value): top-level scalar properties;
- ``journey_traits`` (seq, key, text_value, number_value): top-level scalar traits an event
  carries (identify ``traits``, and ``context.traits`` of other calls);
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

TABLES = (
    "journey_events",
    "journey_properties",
    "journey_traits",
    "event_identifiers",
    "identifiers",
)


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

    def identifiers(self) -> ir.Table:
        """(sid, type, value, person, …): the identity map's identifiers."""
        return self.backend.table("identifiers")

    def person_traits(self) -> ir.Table:
        """(person, key, text_value, number_value, ts, seq): every trait value any event of a
        person carried; the latest by event time is ``latest_traits``."""
        traits = self.backend.table("journey_traits")
        events = self.events().select("seq", "ts", "person")
        return traits.join(events, "seq")

    def latest_traits(self) -> ir.Table:
        """(person, key, text_value, number_value): each trait's latest value per person."""
        traits = self.person_traits()
        window = ibis.window(
            group_by=[traits.person, traits.key],
            order_by=[ibis.desc(traits.ts), ibis.desc(traits.seq)],
        )
        ranked = traits.mutate(n=ibis.row_number().over(window))
        return ranked.filter(ranked.n == 0).select("person", "key", "text_value", "number_value")


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
            warehouse.run(
                _scalars_sql("journey_properties", "properties"), [done, upto], cursor=cursor
            )
            warehouse.run(_scalars_sql("journey_traits", _TRAITS), [done, upto], cursor=cursor)
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


# The traits an event carries: identify traits, else the context's (track calls from a CRM
# or a dealer system send them there).
_TRAITS = "coalesce(traits, json_extract(context, '$.traits'))"


def _scalars_sql(table: str, document: str) -> str:
    """Each top-level scalar of ``document`` (a JSON object per event), one row each."""
    return f"""
        INSERT INTO {table} (seq, key, text_value, number_value)
        SELECT seq, key, json_extract_string(doc, path),
               CASE WHEN json_type(doc, path) IN ('BIGINT', 'UBIGINT', 'DOUBLE')
                    THEN TRY_CAST(json_extract_string(doc, path) AS DOUBLE) END
        FROM (
            SELECT seq, doc, key, '$."' || key || '"' AS path
            FROM (
                SELECT seq, doc, unnest(json_keys(doc)) AS key
                FROM (SELECT seq, {document} AS doc FROM events WHERE seq > ? AND seq <= ?)
                WHERE doc IS NOT NULL AND json_type(doc) = 'OBJECT'
            )
            WHERE NOT contains(key, '"') AND NOT contains(key, '\\')
        )
        WHERE json_type(doc, path) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN')
    """
