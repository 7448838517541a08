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

import duckdb
import orjson

from touchpoints.errors import BadRequest, InvalidRequest, NotFound
from touchpoints.identity.graph import IdentityGraph, Merge, Observation, Rejection
from touchpoints.identity.identifiers import (
    DEVICE_TYPES,
    Identifier,
    IdentifierExtractor,
    normalise,
    parse_key,
)
from touchpoints.identity.results import IdentitySummary, Link, LinkPage, Unlinked, Unmerged
from touchpoints.identity.store import (
    EventIdentifier,
    Evidence,
    IdentityChanges,
    IdentityStore,
    NewEvent,
    NewLink,
    ReplayRow,
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


def _link_note(link: NewLink) -> str:
    """The merge log's note for a link."""
    kind = "probabilistic match" if link.source == "match" else link.source
    text = f"{kind} link {link.link_id}"
    if link.probability is not None:
        text += f", p={link.probability:.3f}"
    return text + (f": {link.note}" if link.note else "")


@dataclass
class CatchUp:
    events: int = 0
    identifiers: int = 0
    merges: int = 0
    rejections: int = 0


@dataclass
class _Batch:
    """Rows one catch-up (or replay, or set of links) writes."""

    identifiers: list[tuple[int, str, str, int]] = field(default_factory=list)
    event_identifiers: list[EventIdentifier] = field(default_factory=list)
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
    graph: IdentityGraph, rows: Iterable[ReplayRow]
) -> list[tuple[Evidence, Rejection]]:
    """Apply rows (sorted by seq, link_id, pos; link_id 0 for an event's rows) to ``graph``:
    each event and link in turn; the refusals."""
    steps: dict[tuple[int, int], tuple[Evidence, list[int]]] = {}
    for row in rows:
        evidence = (row.message_id, row.link_id or None)
        steps.setdefault((row.seq, row.link_id), (evidence, []))[1].append(row.sid)
    rejections: list[tuple[Evidence, Rejection]] = []
    for (seq, _), (evidence, sids) in steps.items():
        rejections += [(evidence, r) for r in graph.observe_sids(seq, sids).rejections]
    return rejections


class IdentityResolver:
    """The identity map of one warehouse: incremental updates, lookups, detach (unmerge)."""

    def __init__(
        self,
        warehouse: Warehouse,
        extractor: IdentifierExtractor | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.store = IdentityStore(warehouse)
        self.extractor = extractor or IdentifierExtractor()
        self.limits = {t.name: t.limit for t in self.extractor.types if t.limit is not None}
        if not warehouse.read_only:
            # Whether the stored event identifiers stay those these rules find (a rebuild
            # may then reuse them): see IdentityStore.note_rules.
            self.store.note_rules(self.extractor.fingerprint())
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
            self.store.forget_position()
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
        stored = self.store.identifiers()
        for sid, id_type, value, person, detached in zip(*stored, strict=True):
            graph.add_identifier(sid, id_type, value, person)
            sid_by_key[(id_type, value)] = sid
            person_by_sid[sid] = person
            if detached:
                graph.detach(sid)
        self._sid_by_key, self._person_by_sid = sid_by_key, person_by_sid
        return graph

    def processed_seq(self) -> int:
        return self.store.processed_seq()

    # -- incremental -------------------------------------------------------------------------
    def catch_up(self, fresh: Sequence[tuple[int, str, str]] = ()) -> CatchUp:
        """Apply every stored event not yet applied, in seq order. ``fresh``: events just
        stored, as (seq, messageId, the event as sent) in seq order (EventStore.take_fresh);
        when they are the next ones to apply, they are taken as they are, not read back."""
        total = CatchUp()
        with self._lock:
            while True:
                done = self._catch_up_chunk(fresh)
                fresh = ()
                total.events += done.events
                total.identifiers += done.identifiers
                total.merges += done.merges
                total.rejections += done.rejections
                # A short chunk was the last: what is stored later is caught up after its
                # own write (one read a batch, not two).
                if done.events < _CHUNK:
                    return total

    def _catch_up_chunk(self, fresh: Sequence[tuple[int, str, str]] = ()) -> CatchUp:
        after = self.processed_seq()
        if fresh and fresh[0][0] == after + 1 and len(fresh) <= _CHUNK:
            events = [NewEvent(*row) for row in fresh]
        else:
            events = self.store.events_after(after, _CHUNK)
        if not events:
            return CatchUp()
        graph = self.graph()
        batch = _Batch()
        try:
            for event in events:
                identifiers = self.extractor.extract(orjson.loads(event.raw))
                batch.add((event.message_id, None), graph.observe(event.seq, identifiers), graph)
            self._write(batch, graph, processed_seq=events[-1].seq)
        except Exception:
            self.forget()  # the graph may be ahead of the warehouse: reload it next time
            raise
        self._publish(graph, batch.touched, [sid for sid, *_ in batch.identifiers])
        return CatchUp(
            len(events), len(batch.identifiers), len(batch.merges), len(batch.rejections)
        )

    def _write(
        self,
        batch: _Batch,
        graph: IdentityGraph,
        processed_seq: int | None,
        links: Sequence[NewLink] = (),
    ) -> None:
        """Store what ``batch`` did to ``graph`` (and ``links``), in one transaction."""
        self.store.write(
            IdentityChanges(
                links=list(links),
                identifiers=[
                    (sid, t, v, seq, graph.find(sid)) for sid, t, v, seq in batch.identifiers
                ],
                event_identifiers=batch.event_identifiers,
                repoint={p: graph.find(p) for p in sorted(batch.absorbed)},
                merges=batch.merges,
                notes={link.link_id: _link_note(link) for link in links},
                rejections=batch.rejections,
                processed_seq=processed_seq,
            )
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
        return self.store.sid_of(self.normalised(identifier))

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
            next_id = self.store.last_link_id()
            resolved: list[tuple[int, int]] = []
            for index, request in enumerate(requests):
                ends = []
                for side in (request.a, request.b):
                    sid = graph.sid(self.normalised(side))
                    if sid is None:
                        raise NotFound(f"links[{index}]: no identifier {side.type}:{side.value}")
                    ends.append(sid)
                if ends[0] == ends[1]:
                    raise ValueError(f"links[{index}]: both ends are the same identifier")
                resolved.append((ends[0], ends[1]))
            batch = _Batch()
            rows: list[NewLink] = []
            outcomes: list[LinkOutcome] = []
            try:
                for request, (sid_a, sid_b) in zip(requests, resolved, strict=True):
                    next_id += 1
                    before = graph.find(sid_a) == graph.find(sid_b)
                    obs = graph.observe_sids(after_seq, [sid_a, sid_b])
                    batch.add((None, next_id), obs, graph)
                    a, b = graph.types[sid_a], graph.types[sid_b]
                    rows.append(
                        NewLink(
                            link_id=next_id,
                            after_seq=after_seq,
                            type_a=a,
                            value_a=graph.values[sid_a],
                            type_b=b,
                            value_b=graph.values[sid_b],
                            source=request.source,
                            probability=request.probability,
                            note=request.note or None,
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
            found = self.store.link_ends(link_id)
            if found is None:
                raise NotFound(f"no link {link_id} in force")
            sid_a, sid_b = found
            graph = self.graph()
            old_person = graph.find(sid_a)
            component = self.candidate_component([sid_a, sid_b])
            return self._split(
                graph,
                component,
                skip_links=[link_id],
                unmerge=_Unmerge(old_person, sid_a, note, removed_link=link_id),
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
                raise NotFound(f"no identifier with the surrogate {sid}")
            old_person = graph.find(sid)
            graph.detach(sid)
            component = self.candidate_component([sid])
            return self._split(
                graph,
                component,
                skip_links=[],
                unmerge=_Unmerge(old_person, sid, note),
                wanted=None,
            )

    def _split(
        self,
        graph: IdentityGraph,
        component: set[int],
        skip_links: list[int],
        unmerge: _Unmerge,
        wanted: list[int] | None,
    ) -> list[int]:
        """Replay ``component`` and store the result with the unmerge that caused it."""
        try:
            rejections = self.replay(graph, component, skip_links)
            self.store.write_split(
                {s: graph.find(s) for s in component},
                rejections,
                old_person=unmerge.old_person,
                sid=unmerge.sid,
                note=unmerge.note,
                removed_link=unmerge.removed_link,
            )
        except Exception:
            self.forget()
            raise
        self._publish(graph, component, [])
        if wanted is not None:
            return sorted({graph.find(s) for s in wanted})
        return sorted({graph.find(s) for s in component if graph.find(s) in component})

    def lock(self) -> threading.RLock:
        """The map's lock, for an operation that changes what the map is built from (events,
        identifiers) and must not be caught up with half way."""
        return self._lock

    def recompute(self, component: Iterable[int]) -> None:
        """After identifiers or events were deleted (erasure, retention): the persons of what
        is left of ``component`` computed again from its remaining events and links, as
        if the deleted ones had never been. Takes the map's lock; the caller deleted the rows
        first (a part of ``component`` no longer in the map is passed over)."""
        with self._lock:
            self.forget()
            graph = self.graph()  # as stored now, without the deleted identifiers
            left = {sid for sid in component if sid in graph.parent}
            if not left:
                return
            try:
                rejections = self.replay(graph, left)
                with self.warehouse.transaction() as cursor:
                    self.write_replay(left, graph, rejections, cursor)
            except Exception:
                self.forget()
                raise
            self._publish(graph, left, [])

    def candidate_component(self, start: Iterable[int]) -> set[int]:
        """Every identifier connected to ``start`` through events or links in force, whether
        the merge rules let them join or not."""
        component = set(start)
        frontier = set(component)
        while frontier:
            found = self.store.neighbours(frontier)
            frontier = found - component
            component |= found
        return component

    def replay(
        self, graph: IdentityGraph, component: set[int], skip_links: Sequence[int] = ()
    ) -> list[tuple[Evidence, Rejection]]:
        """Re-apply, in order, every event and link of ``component`` to a reset graph."""
        graph.reset(component)
        return replay_rows(graph, self.store.component_rows(component, skip_links))

    def write_replay(
        self,
        component: set[int],
        graph: IdentityGraph,
        rejections: list[tuple[Evidence, Rejection]],
        cursor: duckdb.DuckDBPyConnection,
    ) -> None:
        """Inside the transaction of ``cursor``: the replayed persons of ``component`` and
        its refused links."""
        self.store.write_replay({s: graph.find(s) for s in component}, rejections, cursor)

    # -- the operations the faces call -------------------------------------------------------
    def unmerge(self, key: str, note: str = "") -> Unmerged:
        """Detach the identifier ``key`` (TYPE:VALUE): it is never linked again, and its
        person splits. A key that cannot be read, or names a person, is an
        :class:`InvalidRequest` naming ``identifier``; an unknown one is :class:`NotFound`."""
        try:
            identifier = parse_key(key)
        except BadRequest as exc:
            raise InvalidRequest(f"identifier: {exc}") from None
        if identifier.type == "person":
            raise InvalidRequest(
                "identifier: name an identifier (e.g. anonymous_id:…), not a person"
            )
        sid = self.sid_of(identifier)
        if sid is None:
            raise NotFound(f"no identifier {identifier}")
        old = self.lookup(identifier)
        persons = self.detach(sid, note=note)
        return Unmerged(
            detached=str(identifier),
            person=None if old is None else f"person:{old}",
            persons=[f"person:{p}" for p in persons],
        )

    def unlink(self, link_id: int, note: str = "") -> Unlinked:
        """Remove the link ``link_id`` (see :meth:`remove_link`)."""
        persons = self.remove_link(link_id, note)
        return Unlinked(removed=link_id, persons=[f"person:{p}" for p in persons])

    # -- reading the map ---------------------------------------------------------------------
    def summary(self) -> IdentitySummary:
        """Persons in the map, how many are identified (known by an identifier that names a
        person: a user id, customer number, e-mail, phone, …) and how many are anonymous
        (only cookies, device and advertising ids), and identifiers per type."""
        self.catch_up()
        persons, identified = self.store.person_counts(sorted(DEVICE_TYPES))
        return IdentitySummary(
            persons=persons,
            identified=identified,
            anonymous=persons - identified,
            identifiers=self.store.identifier_counts(),
        )

    def persons_by_sid(self) -> dict[int, int]:
        return self.store.persons_by_sid()

    def identifiers_of(self, person: int) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for identifier in self.store.identifiers_of(person):
            out[identifier.type].append(identifier.value)
        return dict(out)

    def links(self, limit: int = 50, offset: int = 0, removed: bool = False) -> LinkPage:
        """Links (in force, or with ``removed`` also the removed ones), newest first."""
        total, links = self.store.links(limit, offset, removed)
        return LinkPage(
            count=total,
            links=[
                Link(
                    link_id=link.link_id,
                    after_seq=link.after_seq,
                    a=str(link.a),
                    b=str(link.b),
                    person=_person_key(self.lookup(link.a)),
                    source=link.source,
                    probability=link.probability,
                    created_at=link.created_at,
                    removed=link.removed,
                    note=link.note,
                )
                for link in links
            ],
        )


@dataclass(frozen=True)
class _Unmerge:
    """What an unmerge changes besides the persons: ``sid`` detached, or the link
    ``removed_link`` (from ``sid``) removed; the merge log names ``old_person``."""

    old_person: int
    sid: int
    note: str
    removed_link: int | None = None


def _person_key(person: int | None) -> str | None:
    return None if person is None else f"person:{person}"
