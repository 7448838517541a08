"""``touchpoints identity rebuild``: the whole identity map again, set-based.

1. Every event's identifiers are extracted again (the identifier types may have changed).
2. Surrogates are numbered in first-seen order (event seq, then priority inside the event),
   exactly as the incremental path numbers them.
3. Connected components of "seen in one event" links by iterative min-label propagation with
   pointer jumping, one SQL statement a step (no recursive CTE: the same steps run on Spark).
4. Components where no merge rule bites (within every limit, no detached identifier) are
   persons as they are, named after their smallest surrogate: the incremental path, which
   would have accepted every link, arrives at the same. The few where a rule bites are
   replayed event by event through :class:`IdentityGraph`, which is what the incremental path
   did. So both agree by construction; ``tests/unit/test_identity_rebuild.py`` checks it.

The merge log is history and is kept; refused links are recomputed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson
import pyarrow as pa

from touchpoints.identity.graph import IdentityGraph, Rejection
from touchpoints.identity.resolver import (
    Evidence,
    IdentityResolver,
    component_rows_sql,
    insert_rejections,
    link_sids_sql,
    replay_rows,
)
from touchpoints.warehouse import Warehouse

_CHUNK = 100_000
_MAX_POS = 1024  # identifiers per event, far above any real event


@dataclass
class RebuildResult:
    events: int
    identifiers: int
    links: int
    persons: int
    iterations: int
    replayed_components: int
    seconds: float
    # Where the time went: extracting identifiers from the events, numbering and the
    # connected components in SQL, replaying the components a rule bites, storing.
    phases: dict[str, float] = field(default_factory=dict)


def first_seen_sql() -> str:
    """Number identifiers by first appearance, as the incremental path does."""
    return f"""
        CREATE OR REPLACE TEMP TABLE _rb_ids AS
        SELECT row_number() OVER (ORDER BY first_key) AS sid, type, value,
               first_key // {_MAX_POS} AS first_seq
        FROM (
            SELECT type, value, min(seq * {_MAX_POS} + pos) AS first_key
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


def rebuild(resolver: IdentityResolver) -> RebuildResult:
    started = time.perf_counter()
    wh: Warehouse = resolver.warehouse
    with resolver._lock:  # noqa: SLF001 - the resolver's own lock, held for the whole rebuild
        resolver.catch_up()  # writes nothing new after this; the map is rebuilt in full
        phases: dict[str, float] = {}
        mark = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            phases[name] = round(now - mark, 3)
            mark = now

        events, last_seq = _extract(resolver)
        lap("extract")
        wh.run(
            "CREATE OR REPLACE TEMP TABLE _rb_detached AS "
            "SELECT type, value FROM identifiers WHERE detached"
        )
        wh.run(first_seen_sql())
        wh.run(event_identifiers_sql())
        wh.run(links_sql())
        wh.run("CREATE OR REPLACE TEMP TABLE _rb_cc AS SELECT sid, sid AS label FROM _rb_ids")
        iterations = 0
        while True:
            iterations += 1
            wh.run(propagate_sql())
            changed = wh.scalar(
                "SELECT count(*) FROM _rb_next n JOIN _rb_cc c USING (sid) WHERE n.label <> c.label"
            )
            wh.run("CREATE OR REPLACE TEMP TABLE _rb_cc AS SELECT * FROM _rb_next")
            if not changed:
                break
        conflicts = [label for (label,) in wh.fetchall(conflicts_sql(resolver.limits))]
        persons = dict(wh.fetchall("SELECT sid, label FROM _rb_cc"))
        lap("components")
        rejections = _replay_conflicts(wh, resolver, conflicts, persons)
        lap("replay")
        _store(wh, persons, last_seq, rejections)
        lap("store")
        resolver.forget()
        result = RebuildResult(
            events=events,
            identifiers=len(persons),
            links=int(wh.scalar("SELECT count(*) FROM _rb_links") or 0) // 2,
            persons=len(set(persons.values())),
            iterations=iterations,
            replayed_components=len(conflicts),
            seconds=time.perf_counter() - started,
            phases=phases,
        )
        for table in ("_rb_raw", "_rb_ids", "_rb_ei", "_rb_links", "_rb_cc", "_rb_next"):
            wh.run(f"DROP TABLE IF EXISTS {table}")
        return result


def _extract(resolver: IdentityResolver) -> tuple[int, int]:
    """Every event's identifiers into _rb_raw(seq, pos, type, value)."""
    wh = resolver.warehouse
    wh.run(
        "CREATE OR REPLACE TEMP TABLE _rb_raw "
        "(seq BIGINT, pos SMALLINT, type VARCHAR, value VARCHAR)"
    )
    extract = resolver.extractor.extract
    events, last_seq = 0, 0
    while True:
        rows = wh.fetchall(
            "SELECT seq, raw FROM events WHERE seq > ? ORDER BY seq LIMIT ?", [last_seq, _CHUNK]
        )
        if not rows:
            return events, last_seq
        seqs: list[int] = []
        positions: list[int] = []
        types: list[str] = []
        values: list[str] = []
        for seq, raw in rows:
            for pos, identifier in enumerate(extract(orjson.loads(raw))):
                seqs.append(seq)
                positions.append(pos)
                types.append(identifier.type)
                values.append(identifier.value)
        wh.insert_arrow(
            "_rb_raw",
            "seq, pos, type, value",
            pa.table(
                {
                    "seq": pa.array(seqs, pa.int64()),
                    "pos": pa.array(positions, pa.int16()),
                    "type": pa.array(types, pa.string()),
                    "value": pa.array(values, pa.string()),
                }
            ),
        )
        events += len(rows)
        last_seq = rows[-1][0]


def _replay_conflicts(
    wh: Warehouse, resolver: IdentityResolver, labels: list[int], persons: dict[int, int]
) -> list[tuple[Evidence, Rejection]]:
    """Replay the components where a rule bites; update ``persons``; the refused links."""
    if not labels:
        return []
    graph = IdentityGraph(resolver.limits)
    wanted = set(labels)
    members = sorted(sid for sid, label in persons.items() if label in wanted)
    for sid, id_type, value in wh.fetchall(
        "SELECT sid, type, value FROM _rb_ids WHERE sid IN (SELECT unnest(?::BIGINT[]))",
        [members],
    ):
        graph.add_identifier(sid, id_type, value)
    for id_type, value in wh.fetchall("SELECT type, value FROM _rb_detached"):
        sid = graph.sids.get((id_type, value))
        if sid is not None:
            graph.detach(sid)
    rows = wh.fetchall(component_rows_sql("_rb_ids", "_rb_ei"), [members, []])
    rejections = replay_rows(graph, [(seq, link, sid, mid) for seq, link, _pos, sid, mid in rows])
    for sid in members:
        persons[sid] = graph.find(sid)
    return rejections


def _store(
    wh: Warehouse,
    persons: dict[int, int],
    last_seq: int,
    rejections: list[tuple[Evidence, Rejection]],
) -> None:
    sids = sorted(persons)
    table = pa.table(
        {
            "sid": pa.array(sids, pa.int64()),
            "person": pa.array([persons[s] for s in sids], pa.int64()),
        }
    )
    with wh.transaction() as cursor, wh.registered("_rb_persons", table, cursor):
        wh.run("DELETE FROM identifiers", cursor=cursor)
        wh.run(
            "INSERT INTO identifiers (sid, type, value, first_seq, person, detached) "
            "SELECT i.sid, i.type, i.value, i.first_seq, p.person, d.type IS NOT NULL "
            "FROM _rb_ids i JOIN _rb_persons p USING (sid) "
            "LEFT JOIN _rb_detached d ON d.type = i.type AND d.value = i.value",
            cursor=cursor,
        )
        wh.run("DELETE FROM event_identifiers", cursor=cursor)
        wh.run("INSERT INTO event_identifiers SELECT seq, pos, sid FROM _rb_ei", cursor=cursor)
        wh.run("DELETE FROM identity_rejections", cursor=cursor)
        insert_rejections(wh, rejections, cursor)
        wh.run(
            "UPDATE identity_state SET processed_seq = ?, generation = generation + 1",
            [last_seq],
            cursor=cursor,
        )
