"""The set-based steps of ``touchpoints identity rebuild``, as SQL, and the tables they keep.

Each step is a ``*_sql`` function (Splink's "SQL steps are data"): the pipeline in
:mod:`touchpoints.identity.rebuild` runs them in order, and every intermediate result is a
temporary table named ``_rb_*`` that a debugging session can read before :meth:`drop`:

``_rb_raw`` (seq, pos, type, value)
    every event's identifiers: the stored ones (:func:`reused_sql`), or extracted again in
    Python;
``_rb_detached`` (type, value)
    the identifiers an operator detached (kept across the rebuild);
``_rb_ids`` (sid, type, value, first_seq)
    identifiers numbered by first appearance;
``_rb_ei`` (seq, pos, sid)
    the events' identifiers by number;
``_rb_links`` (src, dst)
    "seen in one event" and links in force, both directions;
``_rb_cc`` (sid, label), ``_rb_next``
    the connected components, one propagation step at a time.

No recursive CTE: Spark has none, and the same steps are meant to run there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import pyarrow as pa

from touchpoints.identity.graph import Rejection
from touchpoints.identity.store.identity_map import (
    Evidence,
    ReplayRow,
    component_rows,
    insert_rejections,
    link_sids_sql,
)
from touchpoints.warehouse import Warehouse

MAX_POS = 1024  # identifiers per event, far above any real event
TABLES = ("_rb_raw", "_rb_detached", "_rb_ids", "_rb_ei", "_rb_links", "_rb_cc", "_rb_next")


class RawEvent(NamedTuple):
    seq: int
    raw: str


def raw_sql() -> str:
    return (
        "CREATE OR REPLACE TEMP TABLE _rb_raw "
        "(seq BIGINT, pos SMALLINT, type VARCHAR, value VARCHAR)"
    )


def reused_sql() -> str:
    """The stored event identifiers, by type and value: what extracting them again would
    find, when the rules that found them are today's."""
    return """
        INSERT INTO _rb_raw
        SELECT ei.seq, ei.pos, i.type, i.value
        FROM event_identifiers ei JOIN identifiers i ON i.sid = ei.sid
    """


def detached_sql() -> str:
    return (
        "CREATE OR REPLACE TEMP TABLE _rb_detached AS "
        "SELECT type, value FROM identifiers WHERE detached"
    )


def first_seen_sql() -> str:
    """Number identifiers by first appearance, as the incremental path does."""
    return f"""
        CREATE OR REPLACE TEMP TABLE _rb_ids AS
        SELECT row_number() OVER (ORDER BY first_key) AS sid, type, value,
               first_key // {MAX_POS} AS first_seq
        FROM (
            SELECT type, value, min(seq * {MAX_POS} + pos) AS first_key
            FROM _rb_raw GROUP BY type, value
        )
    """


def event_identifiers_sql() -> str:
    return """
        CREATE OR REPLACE TEMP TABLE _rb_ei AS
        SELECT r.seq, r.pos, i.sid
        FROM _rb_raw r JOIN _rb_ids i ON i.type = r.type AND i.value = r.value
    """


def links_sql() -> str:
    """Each event links its anchor (pos 0) with its other identifiers, and each link in force
    its two identifiers; both directions."""
    return f"""
        CREATE OR REPLACE TEMP TABLE _rb_links AS
        WITH pairs AS (
            SELECT a.sid AS src, b.sid AS dst
            FROM _rb_ei a JOIN _rb_ei b ON a.seq = b.seq AND a.pos = 0 AND b.pos > 0
            UNION
            SELECT sid_a, sid_b FROM ({link_sids_sql("_rb_ids")})
        )
        SELECT src, dst FROM pairs UNION SELECT dst, src FROM pairs
    """


def components_start_sql() -> str:
    """Every identifier its own component, labelled with its own number."""
    return "CREATE OR REPLACE TEMP TABLE _rb_cc AS SELECT sid, sid AS label FROM _rb_ids"


def propagate_sql() -> str:
    """One step: each identifier takes the smallest label among itself and its neighbours,
    then jumps to its label's label."""
    return """
        CREATE OR REPLACE TEMP TABLE _rb_next AS
        WITH spread AS (
            SELECT c.sid, least(c.label, coalesce(min(n.label), c.label)) AS label
            FROM _rb_cc c
            LEFT JOIN _rb_links l ON l.src = c.sid
            LEFT JOIN _rb_cc n ON n.sid = l.dst
            GROUP BY c.sid, c.label
        )
        SELECT s.sid, p.label
        FROM spread s JOIN spread p ON p.sid = s.label
    """


def changed_sql() -> str:
    """How many identifiers the last step relabelled (none: the components are found)."""
    return "SELECT count(*) FROM _rb_next n JOIN _rb_cc c USING (sid) WHERE n.label <> c.label"


def advance_sql() -> str:
    return "CREATE OR REPLACE TEMP TABLE _rb_cc AS SELECT * FROM _rb_next"


def conflicts_sql(limits: dict[str, int]) -> str:
    """Components where a limit would be broken or an identifier is detached."""
    checks = " OR ".join(
        f"count(DISTINCT i.sid) FILTER (WHERE i.type = '{t}') > {int(n)}"
        for t, n in sorted(limits.items())
    )
    return f"""
        SELECT c.label
        FROM _rb_cc c JOIN _rb_ids i ON i.sid = c.sid
        LEFT JOIN _rb_detached d ON d.type = i.type AND d.value = i.value
        GROUP BY c.label
        HAVING count(d.type) > 0 {"OR " + checks if checks else ""}
    """


def store_identifiers_sql() -> str:
    """The rebuilt identifiers, each with its person: its component's label, or what the
    replay under the merge rules gave it (``_rb_replayed``)."""
    return """
        INSERT INTO identifiers (sid, type, value, first_seq, person, detached)
        SELECT i.sid, i.type, i.value, i.first_seq, coalesce(r.person, c.label),
               d.type IS NOT NULL
        FROM _rb_ids i JOIN _rb_cc c USING (sid)
        LEFT JOIN _rb_replayed r USING (sid)
        LEFT JOIN _rb_detached d ON d.type = i.type AND d.value = i.value
    """


def renumbered_sql() -> str:
    """How many rebuilt identifiers have another number (or type or value) than stored, and
    how many are stored: both 0 differences and equal counts mean the same numbering."""
    return """
        SELECT (SELECT count(*) FROM _rb_ids r
                ANTI JOIN identifiers i ON i.sid = r.sid AND i.type = r.type
                                        AND i.value = r.value),
               (SELECT count(*) FROM _rb_ids), (SELECT count(*) FROM identifiers)
    """


class RebuildTables:
    """The rebuild's temporary tables in one warehouse, and the steps that fill them."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def start(self) -> None:
        """An empty ``_rb_raw`` and the detached identifiers, before extraction."""
        self.warehouse.run(raw_sql())
        self.warehouse.run(detached_sql())

    def reuse(self) -> int:
        """``_rb_raw`` from the stored event identifiers; the events the map has applied."""
        self.warehouse.run(reused_sql())
        return int(
            self.warehouse.scalar(
                "SELECT count(*) FROM events "
                "WHERE seq <= (SELECT processed_seq FROM identity_state)"
            )
        )

    def events_after(self, seq: int, limit: int) -> list[RawEvent]:
        """Stored events past ``seq``, in seq order, at most ``limit``."""
        rows = self.warehouse.fetchall(
            "SELECT seq, raw FROM events WHERE seq > ? ORDER BY seq LIMIT ?", [seq, limit]
        )
        return [RawEvent(*row) for row in rows]

    def add_raw(
        self, seqs: list[int], positions: list[int], types: list[str], values: list[str]
    ) -> None:
        """Append extracted identifiers to ``_rb_raw`` (one Arrow batch)."""
        table = pa.table(
            {
                "seq": pa.array(seqs, pa.int64()),
                "pos": pa.array(positions, pa.int16()),
                "type": pa.array(types, pa.string()),
                "value": pa.array(values, pa.string()),
            }
        )
        self.warehouse.insert_arrow("_rb_raw", "seq, pos, type, value", table)

    def number(self) -> None:
        """Number the identifiers and make the links; every identifier its own component."""
        for sql in (first_seen_sql(), event_identifiers_sql(), links_sql(), components_start_sql()):
            self.warehouse.run(sql)

    def propagate(self) -> int:
        """One propagation step; how many identifiers it relabelled."""
        self.warehouse.run(propagate_sql())
        changed = int(self.warehouse.scalar(changed_sql()) or 0)
        self.warehouse.run(advance_sql())
        return changed

    def conflicts(self, limits: dict[str, int]) -> list[int]:
        return [label for (label,) in self.warehouse.fetchall(conflicts_sql(limits))]

    def members(self, labels: Sequence[int]) -> list[int]:
        """The identifiers of the components ``labels``, by number."""
        return [
            int(sid)
            for (sid,) in self.warehouse.fetchall(
                "SELECT sid FROM _rb_cc WHERE label IN (SELECT unnest(?::BIGINT[])) ORDER BY sid",
                [list(labels)],
            )
        ]

    def numbered_as_stored(self) -> bool:
        """Whether every rebuilt identifier has the number it has in the stored map."""
        different, rebuilt, stored = self.warehouse.fetchall(renumbered_sql())[0]
        return int(different) == 0 and int(rebuilt) == int(stored)

    def identifiers(self, sids: Sequence[int]) -> list[tuple[int, str, str]]:
        """(sid, type, value) of the numbered identifiers ``sids``."""
        return self.warehouse.fetchall(
            "SELECT sid, type, value FROM _rb_ids WHERE sid IN (SELECT unnest(?::BIGINT[]))",
            [list(sids)],
        )

    def detached(self) -> list[tuple[str, str]]:
        """(type, value) of the detached identifiers."""
        return self.warehouse.fetchall("SELECT type, value FROM _rb_detached")

    def component_rows(self, sids: Sequence[int]) -> list[ReplayRow]:
        return component_rows(self.warehouse, sids, (), "_rb_ids", "_rb_ei")

    def link_count(self) -> int:
        """Links between identifiers (each stored in both directions)."""
        return int(self.warehouse.scalar("SELECT count(*) FROM _rb_links") or 0) // 2

    def store(
        self,
        replayed: dict[int, int],
        last_seq: int,
        rejections: Sequence[tuple[Evidence, Rejection]],
        rules: str,
        keep_events: bool,
    ) -> tuple[int, int]:
        """Replace the identity map by the rebuilt one, in one transaction, set-based (no
        identifier passes through Python but the replayed ones); the merge log is history
        and stays, the refused links are the recomputed ones; every event identifier is now
        found by ``rules``. ``keep_events``: the stored event identifiers are the rebuilt
        ones already. Returns the identifiers and the persons."""
        wh = self.warehouse
        sids = sorted(replayed)
        table = pa.table(
            {
                "sid": pa.array(sids, pa.int64()),
                "person": pa.array([replayed[s] for s in sids], pa.int64()),
            }
        )
        with wh.transaction() as cursor, wh.registered("_rb_replayed", table, cursor):
            wh.run("DELETE FROM identifiers", cursor=cursor)
            wh.run(store_identifiers_sql(), cursor=cursor)
            if not keep_events:
                wh.run("DELETE FROM event_identifiers", cursor=cursor)
                wh.run(
                    "INSERT INTO event_identifiers SELECT seq, pos, sid FROM _rb_ei", cursor=cursor
                )
            wh.run("DELETE FROM identity_rejections", cursor=cursor)
            insert_rejections(wh, rejections, cursor)
            wh.run(
                "UPDATE identity_state "
                "SET processed_seq = ?, generation = generation + 1, rules = ?",
                [last_seq, rules],
                cursor=cursor,
            )
            counted = wh.run(
                "SELECT count(*), count(DISTINCT person) FROM identifiers", cursor=cursor
            ).fetchall()
        return int(counted[0][0]), int(counted[0][1])

    def drop(self) -> None:
        for table in TABLES:
            self.warehouse.run(f"DROP TABLE IF EXISTS {table}")
