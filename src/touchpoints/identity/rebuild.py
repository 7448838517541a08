"""``touchpoints identity rebuild``: the whole identity map again, set-based.

1. Every event's identifiers: the stored ones when the rules that found them are today's
   (``identity_state.rules`` equals :meth:`IdentifierExtractor.fingerprint`: one set-based
   query), else extracted again from every event's JSON (the identifier types, block list or
   phone region changed, or the map predates the fingerprint; ``extract=True`` forces it).
2. Surrogates are numbered in first-seen order (event seq, then priority inside the event),
   exactly as the incremental path numbers them.
3. Connected components of "seen in one event" links by iterative min-label propagation with
   pointer jumping, one SQL statement a step (no recursive CTE: the same steps run on Spark).
4. Components where no merge rule bites (within every limit, no detached identifier) are
   persons as they are, named after their smallest surrogate: the incremental path, which
   would have accepted every link, arrives at the same. The few where a rule bites are
   replayed event by event through :class:`IdentityGraph`, which is what the incremental path
   did. So both agree by construction; ``tests/unit/test_identity_rebuild.py`` checks it.

The merge log is history and is kept; refused links are recomputed. The SQL of each step,
and the temporary tables they keep, are in :mod:`touchpoints.identity.store.rebuild`.
"""

from __future__ import annotations

import time

import orjson

from touchpoints.identity.graph import IdentityGraph, Rejection
from touchpoints.identity.resolver import IdentityResolver, replay_rows
from touchpoints.identity.results import RebuildResult
from touchpoints.identity.store import Evidence
from touchpoints.identity.store.rebuild import RebuildTables

_CHUNK = 100_000


def rebuild(resolver: IdentityResolver, extract: bool = False) -> RebuildResult:
    """The identity map computed again from the events and the links in force (see the
    module); ``extract``: every event's identifiers extracted again even when the rules that
    found the stored ones are today's."""
    started = time.perf_counter()
    tables = RebuildTables(resolver.warehouse)
    with resolver._lock:  # noqa: SLF001 - the resolver's own lock, held for the whole rebuild
        resolver.catch_up()  # writes nothing new after this; the map is rebuilt in full
        phases: dict[str, float] = {}
        mark = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            phases[name] = round(now - mark, 3)
            mark = now

        tables.start()
        rules = resolver.extractor.fingerprint()
        reused = not extract and resolver.store.rules() == rules
        if reused:
            events = tables.reuse()
        else:
            events = _extract(resolver, tables)
        last_seq = resolver.processed_seq()
        lap("reuse" if reused else "extract")
        tables.number()
        iterations = 0
        while True:
            iterations += 1
            if not tables.propagate():
                break
        conflicts = tables.conflicts(resolver.limits)
        lap("components")
        replayed, rejections = _replay_conflicts(tables, resolver, conflicts)
        lap("replay")
        # The event identifiers stay as they are when they were reused and every identifier
        # keeps its number (nothing was deleted since they were numbered): most rebuilds.
        keep_events = reused and tables.numbered_as_stored()
        identifiers, persons = tables.store(replayed, last_seq, rejections, rules, keep_events)
        lap("store")
        resolver.forget()
        result = RebuildResult(
            events=events,
            identifiers=identifiers,
            links=tables.link_count(),
            persons=persons,
            iterations=iterations,
            replayed_components=len(conflicts),
            extracted=not reused,
            seconds=round(time.perf_counter() - started, 3),
            phases=phases,
        )
        tables.drop()
        return result


def _extract(resolver: IdentityResolver, tables: RebuildTables) -> int:
    """Every event's identifiers into _rb_raw(seq, pos, type, value); the events read."""
    extract = resolver.extractor.extract
    events, last_seq = 0, 0
    while True:
        rows = tables.events_after(last_seq, _CHUNK)
        if not rows:
            return events
        seqs: list[int] = []
        positions: list[int] = []
        types: list[str] = []
        values: list[str] = []
        for event in rows:
            for pos, identifier in enumerate(extract(orjson.loads(event.raw))):
                seqs.append(event.seq)
                positions.append(pos)
                types.append(identifier.type)
                values.append(identifier.value)
        tables.add_raw(seqs, positions, types, values)
        events += len(rows)
        last_seq = rows[-1].seq


def _replay_conflicts(
    tables: RebuildTables, resolver: IdentityResolver, labels: list[int]
) -> tuple[dict[int, int], list[tuple[Evidence, Rejection]]]:
    """Replay the components where a rule bites: the person of each of their identifiers
    (every other identifier's person is its component's label), and the refused links."""
    if not labels:
        return {}, []
    graph = IdentityGraph(resolver.limits)
    members = tables.members(labels)
    for sid, id_type, value in tables.identifiers(members):
        graph.add_identifier(sid, id_type, value)
    for id_type, value in tables.detached():
        found = graph.sids.get((id_type, value))
        if found is not None:
            graph.detach(found)
    rejections = replay_rows(graph, tables.component_rows(members))
    return {sid: graph.find(sid) for sid in members}, rejections
