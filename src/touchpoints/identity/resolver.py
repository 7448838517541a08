"""Keeps the identity map in the warehouse in step with the events, one batch at a time.

The writer thread calls :meth:`IdentityResolver.catch_up` after each batch it stores (and the
CLI after each local write): events past ``identity_state.processed_seq`` are read back, their
identifiers extracted and applied to the in-memory :class:`IdentityGraph`, and the new
identifiers, the event–identifier rows, the merges, the rejected links and the new person of
every absorbed person are written in one transaction together with the new ``processed_seq``.
A crash between the events and their identity rows is caught up at the next start.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from touchpoints.identity.graph import IdentityGraph, Merge, Observation, Rejection
from touchpoints.identity.identifiers import (
    DEVICE_TYPES,
    Identifier,
    IdentifierExtractor,
    normalise,
)
from touchpoints.warehouse import Warehouse

log = logging.getLogger("touchpoints.identity")

_CHUNK = 50_000


@dataclass(frozen=True)
class LinkRequest:
    """Two identifiers to join (each ``type`` and ``value``), and why."""

    a: Identifier
    b: Identifier
    source: str  # "match" (accepted by its score) or "review" (accepted by a person)
    probability: float | None = None
    note: str = ""


@dataclass(frozen=True)
class LinkOutcome:
    link_id: int
    person: int  # the person of the link's first identifier afterwards
    refused: str | None  # the merge rule that refused the link, if one did
    already_one: bool  # both identifiers were one person before


def _link_note(row: tuple[Any, ...]) -> str:
    """The merge log's note for a link row (link_id, after_seq, a, a, b, b, source, p, note)."""
    source, probability = row[6], row[7]
    text = f"{'probabilistic match' if source == 'match' else source} link {row[0]}"
    if probability is not None:
        text += f", p={probability:.3f}"
    return text + (f": {row[8]}" if row[8] else "")


@dataclass
class CatchUp:
    events: int = 0
    identifiers: int = 0
    merges: int = 0
    rejections: int = 0


# What made a merge or a refusal: an event (its message id) or a link (its id).
Evidence = tuple[str | None, int | None]


@dataclass
class _Batch:
    """Rows one catch-up (or replay, or set of links) writes."""

    identifiers: list[tuple[int, str, str, int]] = field(default_factory=list)
    event_identifiers: list[tuple[int, int, int]] = field(default_factory=list)
    merges: list[tuple[Evidence, Merge]] = field(default_factory=list)
    rejections: list[tuple[Evidence, Rejection]] = field(default_factory=list)
    absorbed: set[int] = field(default_factory=set)
    touched: set[int] = field(default_factory=set)  # persons whose profile changed

    def add(self, evidence: Evidence, obs: Observation, graph: IdentityGraph) -> None:
        if obs.person is not None:
            self.touched.add(obs.person)
        for sid in obs.new_sids:
            id_type = graph.types[sid]
            self.identifiers.append((sid, id_type, graph.values[sid], obs.seq))
        if evidence[1] is None:  # an event's identifiers; a link has none of its own
            for pos, sid in enumerate(obs.sids):
                self.event_identifiers.append((obs.seq, pos, sid))
        for merge in obs.merges:
            self.merges.append((evidence, merge))
            self.absorbed.add(merge.absorbed)
            self.touched.update((merge.kept, merge.absorbed))
        for rejection in obs.rejections:
            self.rejections.append((evidence, rejection))
            self.touched.update((rejection.person, rejection.other))


def replay_rows(
    graph: IdentityGraph, rows: Iterable[tuple[int, int, int, str | None]]
) -> list[tuple[Evidence, Rejection]]:
    """Apply ``(seq, link_id, sid, message_id)`` rows (sorted by seq, link_id, pos; link_id 0
    for an event's rows) to ``graph``: each event and link in turn; the refusals."""
    steps: dict[tuple[int, int], tuple[Evidence, list[int]]] = {}
    for seq, link_id, sid, message_id in rows:
        evidence = (message_id, link_id or None)
        steps.setdefault((seq, link_id), (evidence, []))[1].append(sid)
    rejections: list[tuple[Evidence, Rejection]] = []
    for (seq, _), (evidence, sids) in steps.items():
        rejections += [(evidence, r) for r in graph.observe_sids(seq, sids).rejections]
    return rejections


def component_rows_sql(ids: str = "identifiers", ei: str = "event_identifiers") -> str:
    """Rows to replay a component: its events' identifiers and its links' two ends, in order.

    Parameters: the component's sids, then the ids of links to leave out."""
    return f"""
        WITH comp AS (SELECT unnest(?::BIGINT[]) AS sid),
        skip AS (SELECT unnest(?::BIGINT[]) AS link_id),
        links AS (
            SELECT * FROM ({link_sids_sql(ids)}) l
            WHERE (l.sid_a IN (SELECT sid FROM comp) OR l.sid_b IN (SELECT sid FROM comp))
              AND l.link_id NOT IN (SELECT link_id FROM skip)
        )
        SELECT ei.seq, 0 AS link_id, ei.pos, ei.sid, e.message_id
        FROM {ei} ei JOIN events e ON e.seq = ei.seq
        WHERE ei.seq IN (SELECT seq FROM {ei} WHERE sid IN (SELECT sid FROM comp))
        UNION ALL SELECT after_seq, link_id, 0, sid_a, NULL FROM links
        UNION ALL SELECT after_seq, link_id, 1, sid_b, NULL FROM links
        ORDER BY 1, 2, 3
    """


def link_sids_sql(ids: str = "identifiers") -> str:
    """Links in force, with the surrogates of their two identifiers in ``ids``."""
    return f"""
        SELECT l.link_id, l.after_seq, a.sid AS sid_a, b.sid AS sid_b
        FROM identity_links l
        JOIN {ids} a ON a.type = l.type_a AND a.value = l.value_a
        JOIN {ids} b ON b.type = l.type_b AND b.value = l.value_b
        WHERE NOT l.removed
    """


def insert_rejections(
    warehouse: Warehouse,
    rejections: list[tuple[Evidence, Rejection]],
    cursor: duckdb.DuckDBPyConnection,
) -> None:
    """Record refused links with their evidence (the event or link that would have made them)."""
    if not rejections:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    for (message_id, link_id), r in rejections:
        warehouse.run(
            "INSERT INTO identity_rejections "
            "(seq, message_id, link_id, created_at, person, other, sid, rule) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [r.seq, message_id, link_id, now, r.person, r.other, r.sid, r.rule],
            cursor=cursor,
        )


class IdentityResolver:
    """The identity map of one warehouse: incremental updates, lookups, detach (unmerge)."""

    def __init__(
        self,
        warehouse: Warehouse,
        extractor: IdentifierExtractor | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.extractor = extractor or IdentifierExtractor()
        self.limits = {t.name: t.limit for t in self.extractor.types if t.limit is not None}
        self._graph: IdentityGraph | None = None
        self._lock = threading.RLock()
        # Published after each commit, read without the lock (single dict reads are atomic):
        # what lookups see is always what the warehouse holds.
        self._sid_by_key: dict[tuple[str, str], int] = {}
        self._person_by_sid: dict[int, int] = {}
        # Called with the persons whose profile changed (None: all of them).
        self.listeners: list[Callable[[set[int] | None], None]] = []

    # -- the in-memory graph -----------------------------------------------------------------
    def graph(self) -> IdentityGraph:
        """The graph as stored (loaded once, then kept in step by catch_up)."""
        with self._lock:
            if self._graph is None:
                self._graph = self._load()
            return self._graph

    def forget(self) -> None:
        """Drop the in-memory graph: the next use reloads it from the warehouse."""
        with self._lock:
            self._graph = None
            self._notify(None)

    def _publish(self, graph: IdentityGraph, touched: set[int], new_sids: list[int]) -> None:
        """Make committed changes visible to lookups, then tell the listeners."""
        for sid in new_sids:
            self._sid_by_key[(graph.types[sid], graph.values[sid])] = sid
        persons = set(touched)
        for root in {graph.find(p) for p in touched}:
            persons.add(root)
            for sid in graph.members.get(root, ()):
                self._person_by_sid[sid] = root
        self._notify(persons)

    def _notify(self, persons: set[int] | None) -> None:
        for listener in self.listeners:
            listener(persons)

    def lookup(self, identifier: Identifier) -> int | None:
        """The person of ``identifier`` (or ``person:N``) from memory, as committed."""
        if self._graph is None:
            self.graph()
        if identifier.type == "person":
            try:
                return self._person_by_sid.get(int(identifier.value))
            except ValueError:
                return None
        found = self.normalised(identifier)
        sid = self._sid_by_key.get((found.type, found.value))
        return None if sid is None else self._person_by_sid.get(sid)

    def _load(self) -> IdentityGraph:
        graph = IdentityGraph(self.limits)
        sid_by_key: dict[tuple[str, str], int] = {}
        person_by_sid: dict[int, int] = {}
        for sid, id_type, value, person, detached in self.warehouse.fetchall(
            "SELECT sid, type, value, person, detached FROM identifiers ORDER BY sid"
        ):
            graph.add_identifier(sid, id_type, value, person)
            sid_by_key[(id_type, value)] = sid
            person_by_sid[sid] = person
            if detached:
                graph.detach(sid)
        self._sid_by_key, self._person_by_sid = sid_by_key, person_by_sid
        return graph

    def processed_seq(self) -> int:
        return int(self.warehouse.scalar("SELECT processed_seq FROM identity_state") or 0)

    # -- incremental -------------------------------------------------------------------------
    def catch_up(self) -> CatchUp:
        """Apply every stored event not yet applied, in seq order."""
        total = CatchUp()
        with self._lock:
            while True:
                done = self._catch_up_chunk()
                if done.events == 0:
                    return total
                total.events += done.events
                total.identifiers += done.identifiers
                total.merges += done.merges
                total.rejections += done.rejections

    def _catch_up_chunk(self) -> CatchUp:
        last = self.processed_seq()
        rows = self.warehouse.fetchall(
            "SELECT seq, message_id, raw FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            [last, _CHUNK],
        )
        if not rows:
            return CatchUp()
        graph = self.graph()
        batch = _Batch()
        try:
            for seq, message_id, raw in rows:
                identifiers = self.extractor.extract(orjson.loads(raw))
                batch.add((message_id, None), graph.observe(seq, identifiers), graph)
            self._write(batch, graph, processed_seq=rows[-1][0])
        except Exception:
            self.forget()  # the graph may be ahead of the warehouse: reload it next time
            raise
        self._publish(graph, batch.touched, [row[0] for row in batch.identifiers])
        return CatchUp(len(rows), len(batch.identifiers), len(batch.merges), len(batch.rejections))

    def _write(
        self,
        batch: _Batch,
        graph: IdentityGraph,
        processed_seq: int | None,
        links: Sequence[tuple[Any, ...]] = (),
    ) -> None:
        wh = self.warehouse
        now = datetime.now(UTC).replace(tzinfo=None)
        notes = {row[0]: _link_note(row) for row in links}
        with wh.transaction() as cursor:
            if links:
                columns = list(zip(*links, strict=True))
                types = [pa.int64(), pa.int64(), *[pa.string()] * 5, pa.float64(), pa.string()]
                names = "link_id after_seq type_a value_a type_b value_b source probability note"
                table = pa.table(
                    {
                        n: pa.array(c, t)
                        for n, c, t in zip(names.split(), columns, types, strict=True)
                    }
                )
                table = table.append_column(
                    "created_at", pa.array([now] * len(links), pa.timestamp("us"))
                )
                table = table.append_column("removed", pa.array([False] * len(links), pa.bool_()))
                wh.insert_arrow(
                    "identity_links", ", ".join(table.column_names), table, cursor=cursor
                )
            if batch.identifiers:
                sids, types, values, seqs = zip(*batch.identifiers, strict=True)
                wh.insert_arrow(
                    "identifiers",
                    "sid, type, value, first_seq, person, detached",
                    pa.table(
                        {
                            "sid": pa.array(sids, pa.int64()),
                            "type": pa.array(types, pa.string()),
                            "value": pa.array(values, pa.string()),
                            "first_seq": pa.array(seqs, pa.int64()),
                            "person": pa.array([graph.find(s) for s in sids], pa.int64()),
                            "detached": pa.array([False] * len(sids), pa.bool_()),
                        }
                    ),
                    cursor=cursor,
                )
            if batch.event_identifiers:
                seqs, positions, sids = zip(*batch.event_identifiers, strict=True)
                wh.insert_arrow(
                    "event_identifiers",
                    "seq, pos, sid",
                    pa.table(
                        {
                            "seq": pa.array(seqs, pa.int64()),
                            "pos": pa.array(positions, pa.int16()),
                            "sid": pa.array(sids, pa.int64()),
                        }
                    ),
                    cursor=cursor,
                )
            if batch.absorbed:
                self._repoint(sorted(batch.absorbed), graph, cursor)
            if batch.merges:
                merges = batch.merges
                wh.insert_arrow(
                    "identity_merges",
                    "seq, message_id, link_id, created_at, kind, kept, absorbed, sid, note",
                    pa.table(
                        {
                            "seq": pa.array([m.seq for _, m in merges], pa.int64()),
                            "message_id": pa.array([e[0] for e, _ in merges], pa.string()),
                            "link_id": pa.array([e[1] for e, _ in merges], pa.int64()),
                            "created_at": pa.array([now] * len(merges), pa.timestamp("us")),
                            "kind": pa.array(
                                ["merge" if e[1] is None else "link" for e, _ in merges],
                                pa.string(),
                            ),
                            "kept": pa.array([m.kept for _, m in merges], pa.int64()),
                            "absorbed": pa.array([m.absorbed for _, m in merges], pa.int64()),
                            "sid": pa.array([m.sid for _, m in merges], pa.int64()),
                            "note": pa.array([notes.get(e[1]) for e, _ in merges], pa.string()),
                        }
                    ),
                    cursor=cursor,
                )
            insert_rejections(wh, batch.rejections, cursor)
            if processed_seq is not None:
                wh.run(
                    "UPDATE identity_state SET processed_seq = ?", [processed_seq], cursor=cursor
                )

    def _repoint(
        self, old_persons: list[int], graph: IdentityGraph, cursor: duckdb.DuckDBPyConnection
    ) -> None:
        """Every identifier of an absorbed person now belongs to the surviving one."""
        mapping = pa.table(
            {
                "old": pa.array(old_persons, pa.int64()),
                "new": pa.array([graph.find(p) for p in old_persons], pa.int64()),
            }
        )
        with self.warehouse.registered("_repoint", mapping, cursor):
            self.warehouse.run(
                "UPDATE identifiers SET person = _repoint.new FROM _repoint "
                "WHERE identifiers.person = _repoint.old",
                cursor=cursor,
            )

    # -- lookups -----------------------------------------------------------------------------
    def normalised(self, identifier: Identifier) -> Identifier:
        """``identifier`` in the normal form its type stores (e-mail lower-cased, E.164, …)."""
        id_type = self.extractor.by_name.get(identifier.type)
        if id_type is None:
            return identifier
        value = normalise(id_type.normalise, identifier.value, self.extractor.phone_region)
        return Identifier(identifier.type, value or "")

    def sid_of(self, identifier: Identifier) -> int | None:
        found = self.normalised(identifier)
        return self.warehouse.scalar(
            "SELECT sid FROM identifiers WHERE type = ? AND value = ?", [found.type, found.value]
        )

    # -- links -------------------------------------------------------------------------------
    def add_links(self, requests: Sequence[LinkRequest]) -> list[LinkOutcome]:
        """Join pairs of known identifiers that share no event (accepted matches).

        Each link acts as an event right after every event stored so far: the merge rules
        apply to it as to any event (a link that would give a person two user ids is refused
        and recorded), and the merge log names the link as the evidence."""
        with self._lock:
            self.catch_up()
            graph = self.graph()
            after_seq = self.processed_seq()
            next_id = int(
                self.warehouse.scalar("SELECT coalesce(max(link_id), 0) FROM identity_links")
            )
            resolved: list[tuple[int, int]] = []
            for index, request in enumerate(requests):
                ends = []
                for side in (request.a, request.b):
                    sid = graph.sid(self.normalised(side))
                    if sid is None:
                        raise KeyError(f"links[{index}]: no identifier {side.type}:{side.value}")
                    ends.append(sid)
                if ends[0] == ends[1]:
                    raise ValueError(f"links[{index}]: both ends are the same identifier")
                resolved.append((ends[0], ends[1]))
            batch = _Batch()
            rows: list[tuple[Any, ...]] = []
            outcomes: list[LinkOutcome] = []
            try:
                for request, (sid_a, sid_b) in zip(requests, resolved, strict=True):
                    next_id += 1
                    before = graph.find(sid_a) == graph.find(sid_b)
                    obs = graph.observe_sids(after_seq, [sid_a, sid_b])
                    batch.add((None, next_id), obs, graph)
                    a, b = graph.types[sid_a], graph.types[sid_b]
                    rows.append(
                        (
                            next_id,
                            after_seq,
                            a,
                            graph.values[sid_a],
                            b,
                            graph.values[sid_b],
                            request.source,
                            request.probability,
                            request.note or None,
                        )
                    )
                    refused = obs.rejections[0].rule if obs.rejections else None
                    outcomes.append(
                        LinkOutcome(next_id, obs.person or graph.find(sid_a), refused, before)
                    )
                self._write(batch, graph, processed_seq=None, links=rows)
            except Exception:
                self.forget()
                raise
            self._publish(graph, batch.touched, [])
            return [
                LinkOutcome(o.link_id, graph.find(o.person), o.refused, o.already_one)
                for o in outcomes
            ]

    def remove_link(self, link_id: int, note: str = "") -> list[int]:
        """Unmerge a link: it no longer applies, and the persons it joined are recomputed.

        Returns the persons the linked identifiers belong to afterwards."""
        with self._lock:
            self.catch_up()
            found = self.warehouse.fetchall(
                f"SELECT sid_a, sid_b FROM ({link_sids_sql()}) WHERE link_id = ?", [link_id]
            )
            if not found:
                raise KeyError(link_id)
            sid_a, sid_b = found[0]
            graph = self.graph()
            old_person = graph.find(sid_a)
            component = self.candidate_component([sid_a, sid_b])
            return self._split(
                graph,
                component,
                skip_links=[link_id],
                statements=[
                    ("UPDATE identity_links SET removed = true WHERE link_id = ?", [link_id])
                ],
                log=(old_person, sid_a, link_id, note),
                wanted=[sid_a, sid_b],
            )

    # -- unmerge -----------------------------------------------------------------------------
    def detach(self, sid: int, note: str = "") -> list[int]:
        """Unmerge: ``sid`` is never linked again, and its person is recomputed without it.

        Returns the persons the old person split into."""
        with self._lock:
            self.catch_up()
            graph = self.graph()
            if sid not in graph.parent:
                raise KeyError(sid)
            old_person = graph.find(sid)
            graph.detach(sid)
            component = self.candidate_component([sid])
            return self._split(
                graph,
                component,
                skip_links=[],
                statements=[("UPDATE identifiers SET detached = true WHERE sid = ?", [sid])],
                log=(old_person, sid, None, note),
                wanted=None,
            )

    def _split(
        self,
        graph: IdentityGraph,
        component: set[int],
        skip_links: list[int],
        statements: list[tuple[str, list[Any]]],
        log: tuple[int, int, int | None, str],
        wanted: list[int] | None,
    ) -> list[int]:
        """Replay ``component`` and store the result with the unmerge that caused it."""
        try:
            rejections = self.replay(graph, component, skip_links)
            with self.warehouse.transaction() as cursor:
                self.write_replay(component, graph, rejections, cursor)
                for sql, params in statements:
                    self.warehouse.run(sql, params, cursor=cursor)
                old_person, sid, link_id, note = log
                self.warehouse.run(
                    "INSERT INTO identity_merges (seq, message_id, link_id, created_at, kind, "
                    "kept, absorbed, sid, note) "
                    "VALUES (NULL, NULL, ?, ?, 'unmerge', ?, NULL, ?, ?)",
                    [link_id, datetime.now(UTC).replace(tzinfo=None), old_person, sid, note],
                    cursor=cursor,
                )
        except Exception:
            self.forget()
            raise
        self._publish(graph, component, [])
        if wanted is not None:
            return sorted({graph.find(s) for s in wanted})
        return sorted({graph.find(s) for s in component if graph.find(s) in component})

    def candidate_component(self, start: Iterable[int]) -> set[int]:
        """Every identifier connected to ``start`` through events or links in force, whether
        the merge rules let them join or not."""
        component = set(start)
        frontier = set(component)
        while frontier:
            rows = self.warehouse.fetchall(
                "WITH f AS (SELECT unnest(?::BIGINT[]) AS sid) "
                "SELECT DISTINCT b.sid FROM event_identifiers a "
                "JOIN event_identifiers b ON a.seq = b.seq WHERE a.sid IN (SELECT sid FROM f) "
                f"UNION SELECT sid_b FROM ({link_sids_sql()}) WHERE sid_a IN (SELECT sid FROM f) "
                f"UNION SELECT sid_a FROM ({link_sids_sql()}) WHERE sid_b IN (SELECT sid FROM f)",
                [sorted(frontier)],
            )
            found = {sid for (sid,) in rows}
            frontier = found - component
            component |= found
        return component

    def replay(
        self, graph: IdentityGraph, component: set[int], skip_links: Sequence[int] = ()
    ) -> list[tuple[Evidence, Rejection]]:
        """Re-apply, in order, every event and link of ``component`` to a reset graph."""
        graph.reset(component)
        rows = self.warehouse.fetchall(component_rows_sql(), [sorted(component), list(skip_links)])
        return replay_rows(graph, [(seq, link, sid, mid) for seq, link, _pos, sid, mid in rows])

    def write_replay(
        self,
        component: set[int],
        graph: IdentityGraph,
        rejections: list[tuple[Evidence, Rejection]],
        cursor: duckdb.DuckDBPyConnection,
    ) -> None:
        ordered = sorted(component)
        persons = pa.table(
            {
                "sid": pa.array(ordered, pa.int64()),
                "person": pa.array([graph.find(s) for s in ordered], pa.int64()),
            }
        )
        with self.warehouse.registered("_persons", persons, cursor):
            self.warehouse.run(
                "UPDATE identifiers SET person = _persons.person FROM _persons "
                "WHERE identifiers.sid = _persons.sid",
                cursor=cursor,
            )
        self.warehouse.run(
            "DELETE FROM identity_rejections WHERE sid IN (SELECT unnest(?::BIGINT[]))",
            [ordered],
            cursor=cursor,
        )
        insert_rejections(self.warehouse, rejections, cursor)

    # -- reading the map ---------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Persons in the map, how many are identified (known by an identifier that names a
        person: a user id, customer number, e-mail, phone, …) and how many are anonymous
        (only cookies, device and advertising ids), and identifiers per type."""
        self.catch_up()
        device_types = sorted(DEVICE_TYPES)
        marks = ", ".join("?" for _ in device_types)
        persons, identified = self.warehouse.fetchall(
            "SELECT count(*), count(*) FILTER (WHERE known) FROM ("
            f"  SELECT person, bool_or(type NOT IN ({marks})) AS known"
            "  FROM identifiers GROUP BY person)",
            device_types,
        )[0]
        types = self.warehouse.fetchall(
            "SELECT type, count(*) FROM identifiers GROUP BY type ORDER BY 2 DESC, 1"
        )
        return {
            "persons": int(persons),
            "identified": int(identified or 0),
            "anonymous": int(persons) - int(identified or 0),
            "identifiers": {name: int(n) for name, n in types},
        }

    def persons_by_sid(self) -> dict[int, int]:
        return dict(self.warehouse.fetchall("SELECT sid, person FROM identifiers"))

    def identifiers_of(self, person: int) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for id_type, value in self.warehouse.fetchall(
            "SELECT type, value FROM identifiers WHERE person = ? ORDER BY type, sid", [person]
        ):
            out[id_type].append(value)
        return dict(out)

    def links(
        self, limit: int = 50, offset: int = 0, removed: bool = False
    ) -> tuple[int, list[dict[str, Any]]]:
        """Links (in force, or with ``removed`` also the removed ones), newest first."""
        where = "" if removed else "WHERE NOT removed"
        total = int(self.warehouse.scalar(f"SELECT count(*) FROM identity_links {where}"))
        rows = self.warehouse.fetchall(
            "SELECT link_id, after_seq, type_a, value_a, type_b, value_b, source, probability, "
            f"created_at, removed, note FROM identity_links {where} "
            "ORDER BY link_id DESC LIMIT ? OFFSET ?",
            [limit, offset],
        )
        out = []
        for row in rows:
            a, b = Identifier(row[2], row[3]), Identifier(row[4], row[5])
            out.append(
                {
                    "link_id": row[0],
                    "after_seq": row[1],
                    "a": f"{a.type}:{a.value}",
                    "b": f"{b.type}:{b.value}",
                    "person": _person_key(self.lookup(a)),
                    "source": row[6],
                    "probability": row[7],
                    "created_at": row[8].isoformat() + "Z",
                    "removed": row[9],
                    "note": row[10],
                }
            )
        return total, out


def _person_key(person: int | None) -> str | None:
    return None if person is None else f"person:{person}"
