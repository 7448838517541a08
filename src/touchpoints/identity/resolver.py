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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import orjson
import pyarrow as pa

from touchpoints.identity.graph import IdentityGraph, Merge, Observation, Rejection
from touchpoints.identity.identifiers import Identifier, IdentifierExtractor, normalise
from touchpoints.warehouse import Warehouse

log = logging.getLogger("touchpoints.identity")

_CHUNK = 50_000


@dataclass
class CatchUp:
    events: int = 0
    identifiers: int = 0
    merges: int = 0
    rejections: int = 0


@dataclass
class _Batch:
    """Rows one catch-up (or replay) writes."""

    identifiers: list[tuple[int, str, str, int]] = field(default_factory=list)
    event_identifiers: list[tuple[int, int, int]] = field(default_factory=list)
    merges: list[tuple[int, str, Merge]] = field(default_factory=list)
    rejections: list[tuple[str, Rejection]] = field(default_factory=list)
    absorbed: set[int] = field(default_factory=set)
    touched: set[int] = field(default_factory=set)  # persons whose profile changed

    def add(self, seq: int, message_id: str, obs: Observation, graph: IdentityGraph) -> None:
        if obs.person is not None:
            self.touched.add(obs.person)
        for sid in obs.new_sids:
            id_type = graph.types[sid]
            self.identifiers.append((sid, id_type, graph.values[sid], seq))
        for pos, sid in enumerate(obs.sids):
            self.event_identifiers.append((seq, pos, sid))
        for merge in obs.merges:
            self.merges.append((seq, message_id, merge))
            self.absorbed.add(merge.absorbed)
            self.touched.update((merge.kept, merge.absorbed))
        for rejection in obs.rejections:
            self.rejections.append((message_id, rejection))
            self.touched.update((rejection.person, rejection.other))


def replay_rows(
    graph: IdentityGraph, rows: Iterable[tuple[int, int, str]]
) -> list[tuple[str, Rejection]]:
    """Apply events given as ``(seq, sid, message_id)`` rows in seq, pos order; the refusals."""
    events: dict[int, tuple[str, list[int]]] = {}
    for seq, sid, message_id in rows:
        events.setdefault(seq, (message_id, []))[1].append(sid)
    rejections: list[tuple[str, Rejection]] = []
    for seq, (message_id, sids) in events.items():
        rejections += [(message_id, r) for r in graph.observe_sids(seq, sids).rejections]
    return rejections


def insert_rejections(
    warehouse: Warehouse,
    rejections: list[tuple[str, Rejection]],
    cursor: duckdb.DuckDBPyConnection,
) -> None:
    """Record refused links with their evidence (the event that would have made them)."""
    if not rejections:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    for message_id, r in rejections:
        warehouse.run(
            "INSERT INTO identity_rejections "
            "(seq, message_id, created_at, person, other, sid, rule) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [r.seq, message_id, now, r.person, r.other, r.sid, r.rule],
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
                batch.add(seq, message_id, graph.observe(seq, identifiers), graph)
            self._write(batch, graph, processed_seq=rows[-1][0])
        except Exception:
            self.forget()  # the graph may be ahead of the warehouse: reload it next time
            raise
        self._publish(graph, batch.touched, [row[0] for row in batch.identifiers])
        return CatchUp(len(rows), len(batch.identifiers), len(batch.merges), len(batch.rejections))

    def _write(self, batch: _Batch, graph: IdentityGraph, processed_seq: int | None) -> None:
        wh = self.warehouse
        cursor = wh.cursor()
        now = datetime.now(UTC).replace(tzinfo=None)
        wh.run("BEGIN TRANSACTION", cursor=cursor)
        try:
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
                )
            if batch.absorbed:
                self._repoint(sorted(batch.absorbed), graph)
            for seq, message_id, merge in batch.merges:
                wh.run(
                    "INSERT INTO identity_merges "
                    "(seq, message_id, created_at, kind, kept, absorbed, sid) "
                    "VALUES (?, ?, ?, 'merge', ?, ?, ?)",
                    [seq, message_id, now, merge.kept, merge.absorbed, merge.sid],
                    cursor=cursor,
                )
            insert_rejections(wh, batch.rejections, cursor)
            if processed_seq is not None:
                wh.run(
                    "UPDATE identity_state SET processed_seq = ?", [processed_seq], cursor=cursor
                )
            wh.run("COMMIT", cursor=cursor)
        except Exception:
            wh.run("ROLLBACK", cursor=cursor)
            raise

    def _repoint(self, old_persons: list[int], graph: IdentityGraph) -> None:
        """Every identifier of an absorbed person now belongs to the surviving one."""
        mapping = pa.table(
            {
                "old": pa.array(old_persons, pa.int64()),
                "new": pa.array([graph.find(p) for p in old_persons], pa.int64()),
            }
        )
        cursor = self.warehouse.cursor()
        cursor.register("_repoint", mapping)
        try:
            self.warehouse.run(
                "UPDATE identifiers SET person = _repoint.new FROM _repoint "
                "WHERE identifiers.person = _repoint.old",
                cursor=cursor,
            )
        finally:
            cursor.unregister("_repoint")

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
            try:
                rejections = self.replay(graph, component)
                cursor = self.warehouse.cursor()
                self.warehouse.run("BEGIN TRANSACTION", cursor=cursor)
                try:
                    self.write_replay(component, graph, rejections, cursor)
                    self.warehouse.run(
                        "UPDATE identifiers SET detached = true WHERE sid = ?", [sid], cursor=cursor
                    )
                    self.warehouse.run(
                        "INSERT INTO identity_merges (seq, message_id, created_at, kind, "
                        "kept, absorbed, sid, note) "
                        "VALUES (NULL, NULL, ?, 'unmerge', ?, NULL, ?, ?)",
                        [datetime.now(UTC).replace(tzinfo=None), old_person, sid, note],
                        cursor=cursor,
                    )
                    self.warehouse.run("COMMIT", cursor=cursor)
                except Exception:
                    self.warehouse.run("ROLLBACK", cursor=cursor)
                    raise
            except Exception:
                self.forget()
                raise
            self._publish(graph, component, [])
            return sorted({graph.find(s) for s in component if graph.find(s) in component})

    def candidate_component(self, start: Iterable[int]) -> set[int]:
        """Every identifier connected to ``start`` through events, whether linked or refused."""
        component = set(start)
        frontier = set(component)
        while frontier:
            rows = self.warehouse.fetchall(
                "SELECT DISTINCT b.sid FROM event_identifiers a "
                "JOIN event_identifiers b ON a.seq = b.seq "
                "WHERE a.sid IN (SELECT unnest(?::BIGINT[]))",
                [sorted(frontier)],
            )
            found = {sid for (sid,) in rows}
            frontier = found - component
            component |= found
        return component

    def replay(self, graph: IdentityGraph, component: set[int]) -> list[tuple[str, Rejection]]:
        """Re-apply, in seq order, every event of ``component`` to a reset graph."""
        graph.reset(component)
        rows = self.warehouse.fetchall(
            "SELECT ei.seq, ei.sid, e.message_id FROM event_identifiers ei "
            "JOIN events e ON e.seq = ei.seq "
            "WHERE ei.seq IN (SELECT seq FROM event_identifiers "
            "                 WHERE sid IN (SELECT unnest(?::BIGINT[]))) "
            "ORDER BY ei.seq, ei.pos",
            [sorted(component)],
        )
        return replay_rows(graph, rows)

    def write_replay(
        self,
        component: set[int],
        graph: IdentityGraph,
        rejections: list[tuple[str, Rejection]],
        cursor: duckdb.DuckDBPyConnection,
    ) -> None:
        ordered = sorted(component)
        persons = pa.table(
            {
                "sid": pa.array(ordered, pa.int64()),
                "person": pa.array([graph.find(s) for s in ordered], pa.int64()),
            }
        )
        cursor.register("_persons", persons)
        try:
            self.warehouse.run(
                "UPDATE identifiers SET person = _persons.person FROM _persons "
                "WHERE identifiers.sid = _persons.sid",
                cursor=cursor,
            )
        finally:
            cursor.unregister("_persons")
        self.warehouse.run(
            "DELETE FROM identity_rejections WHERE sid IN (SELECT unnest(?::BIGINT[]))",
            [ordered],
            cursor=cursor,
        )
        insert_rejections(self.warehouse, rejections, cursor)

    # -- reading the map ---------------------------------------------------------------------
    def persons_by_sid(self) -> dict[int, int]:
        return dict(self.warehouse.fetchall("SELECT sid, person FROM identifiers"))

    def identifiers_of(self, person: int) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for id_type, value in self.warehouse.fetchall(
            "SELECT type, value FROM identifiers WHERE person = ? ORDER BY type, sid", [person]
        ):
            out[id_type].append(value)
        return dict(out)
