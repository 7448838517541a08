"""Keeps the journey tables of the DuckDB warehouse in step with the events and the identity map.

Two layers, both brought up to date by :func:`refresh` before each analysis:

1. ``journey_events``, ``journey_properties``, ``journey_traits``: a narrow, typed copy of each
   event the identity map has applied (set-based ``INSERT … SELECT``, whatever the number).
2. With a stage model, what every analysis would otherwise compute first, kept per person:
   ``journey_facts`` (each event with its person, device, order in the person's events and
   the stage the person was in), ``journey_stage_entries`` and ``journey_latest_traits``
   (each person's latest value of each trait). A person's rows are derived
   again when the person gets new events or the identity map moves identifiers to or from
   them (a merge, a link, an unmerge): ``journey_persons`` is the map as the facts last saw
   it, and the difference names those persons. The derivation is the same Ibis code an
   engine without kept facts runs (:func:`~touchpoints.journeys.stages.computed_facts`), on
   the events of those persons only. A new stage model, or a rebuilt identity map (a new
   generation), derives everything again.

The tables hold personal data (trait values, event properties): erasure must cover them.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass

from touchpoints.journeys.model import StageModel
from touchpoints.journeys.source import Source
from touchpoints.warehouse import Warehouse
from touchpoints.warehouse.ibis_gateway import IbisGateway

_LOCK = threading.Lock()

# Per warehouse, a number that changes whenever what the analyses read may have changed: a
# refresh that copied events or derived persons (new events, identity moves, a new model or
# identity generation), and derive_again before an erasure or a retention run deletes. Answers
# kept under one number are the answers to the tables as they are (Journeys.run keeps them).
_VERSIONS: weakref.WeakKeyDictionary[Warehouse, int] = weakref.WeakKeyDictionary()


def version(warehouse: Warehouse) -> int:
    """The journey tables' version in this process (see ``_VERSIONS``)."""
    with _LOCK:
        return _VERSIONS.get(warehouse, 0)


def state(warehouse: Warehouse) -> tuple[int, int]:
    """What answers are kept under: the version, and the number of kept facts (any deletion
    changes it, whichever way it came)."""
    facts = int(warehouse.scalar("SELECT count(*) FROM journey_facts"))
    return version(warehouse), facts


def _bump(warehouse: Warehouse) -> None:
    _VERSIONS[warehouse] = _VERSIONS.get(warehouse, 0) + 1


_EVENT_COLUMNS = "seq, ts, type, event, channel, source, path, campaign, medium"


@dataclass(frozen=True)
class Refreshed:
    events: int  # events copied into the journey tables
    persons: int  # persons whose facts were derived again (all of them when ``full``)
    full: bool  # everything derived again (first time, new stage model, rebuilt identity map)
    seconds: float


def refresh(warehouse: Warehouse, model: StageModel | None = None) -> Refreshed:
    """Bring the journey tables up to date with the events the identity map has applied and,
    with ``model``, the facts and stage entries kept for it. One transaction: analyses see
    the tables before or after, never half way."""
    started = time.perf_counter()
    with _LOCK:
        with warehouse.transaction():  # this thread's cursor, which every run below uses
            copied = _copy_events(warehouse)
            persons, full = _derive(warehouse, model) if model is not None else (0, False)
        if copied or persons or full:  # derive_again() has bumped it for what it noted
            _bump(warehouse)
    return Refreshed(copied, persons, full, round(time.perf_counter() - started, 3))


def derive_again(warehouse: Warehouse, sids: list[int]) -> None:
    """The persons of ``sids`` are derived again at the next :func:`refresh`: their events
    are about to change underneath the kept facts (erasure or retention deletes some). Call
    it before deleting: it notes the persons the kept rows name now (``journey_changed``,
    which the refresh reads and then empties), and the refresh adds where they move to."""
    with _LOCK:
        # Answers kept for the tables as they were are stale from here, whoever is noted.
        _bump(warehouse)
        if not sids:
            return
        warehouse.run(
            "INSERT INTO journey_changed "
            "SELECT person FROM journey_persons WHERE sid IN (SELECT unnest(?::BIGINT[])) "
            "UNION SELECT person FROM identifiers WHERE sid IN (SELECT unnest(?::BIGINT[]))",
            [sids, sids],
        )


# -- layer 1: the narrow copy --------------------------------------------------------------
def _copy_events(warehouse: Warehouse) -> int:
    done = int(warehouse.scalar("SELECT coalesce(max(seq), 0) FROM journey_events"))
    upto = int(warehouse.scalar("SELECT processed_seq FROM identity_state") or 0)
    if upto <= done:
        return 0
    warehouse.run(_EVENTS_SQL, [done, upto])
    warehouse.run(scalars_sql("journey_properties", "properties"), [done, upto])
    warehouse.run(scalars_sql("journey_traits", _TRAITS), [done, upto])
    return int(
        warehouse.scalar(
            "SELECT count(*) FROM journey_events WHERE seq > ? AND seq <= ?", [done, upto]
        )
    )


_EVENTS_SQL = f"""
    INSERT INTO journey_events ({_EVENT_COLUMNS})
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


def scalars_sql(
    table: str, document: str, among: str = "TRUE", window: str = "seq > ? AND seq <= ?"
) -> str:
    """Each top-level scalar of ``document`` (a JSON object per event) of the events in
    ``window`` (by default two parameters) that pass ``among`` (SQL over ``events``), one
    row each."""
    return f"""
        INSERT INTO {table} (seq, key, text_value, number_value)
        SELECT seq, key, json_extract_string(doc, path),
               CASE WHEN json_type(doc, path) IN ('BIGINT', 'UBIGINT', 'DOUBLE')
                    THEN TRY_CAST(json_extract_string(doc, path) AS DOUBLE) END
        FROM (
            SELECT seq, doc, key, '$."' || key || '"' AS path
            FROM (
                SELECT seq, doc, unnest(json_keys(doc)) AS key
                FROM (
                    SELECT seq, {document} AS doc FROM events
                    WHERE {window} AND ({among})
                )
                WHERE doc IS NOT NULL AND json_type(doc) = 'OBJECT'
            )
            WHERE NOT contains(key, '"') AND NOT contains(key, '\\')
        )
        WHERE json_type(doc, path) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN')
    """


# -- layer 2: facts and stage entries, per person ------------------------------------------
def _derive(warehouse: Warehouse, model: StageModel) -> tuple[int, bool]:
    """Derive the facts of the persons that changed; (persons, whether all of them)."""
    fingerprint = model.fingerprint()
    generation = int(warehouse.scalar("SELECT generation FROM identity_state") or 0)
    upto = int(warehouse.scalar("SELECT coalesce(max(seq), 0) FROM journey_events"))
    state = warehouse.fetchall("SELECT model, generation, facts_seq FROM journey_state")
    full = not state or state[0][0] != fingerprint or state[0][1] != generation
    facts_seq = 0 if full else int(state[0][2])

    if full:
        for table in (*_KEPT, "journey_persons"):
            warehouse.run(f"DELETE FROM {table}")
        warehouse.run("DELETE FROM journey_changed")
        warehouse.run(_NEW_EVENTS_SQL.format(persons=""), [0, upto])
        warehouse.run("INSERT INTO journey_persons SELECT sid, person FROM identifiers")
    else:
        # journey_changed may hold persons derive_again() noted; the identity map's moves
        # and the new events add theirs. Finding the moves joins the map with the map as the
        # facts saw it (115 ms at 10 million events, on every refresh); when the two hold
        # the same (sid, person) pairs, their sums of hashes are equal (15 ms), so the join
        # is made only when they differ (equal sums of different pairs: odds of 2^-64).
        if _moved(warehouse):
            warehouse.run(_MOVED_SQL)
        warehouse.run(_NEW_SQL, [facts_seq, upto])
        if not warehouse.scalar("SELECT count(*) FROM journey_changed"):
            _set_state(warehouse, fingerprint, generation, upto)
            return 0, False
        changed = "AND i.person IN (SELECT person FROM journey_changed)"
        warehouse.run(_KEPT_EVENTS_SQL.format(persons=changed))
        warehouse.run(_NEW_EVENTS_SQL.format(persons=changed), [facts_seq, upto])
        for table in _KEPT:
            warehouse.run(
                f"DELETE FROM {table} WHERE person IN (SELECT person FROM journey_changed)"
            )
        warehouse.run(
            "UPDATE journey_persons AS s SET person = i.person FROM identifiers i "
            "WHERE i.sid = s.sid AND i.person <> s.person"
        )
        warehouse.run(
            "INSERT INTO journey_persons SELECT i.sid, i.person FROM identifiers i "
            "ANTI JOIN journey_persons s ON s.sid = i.sid"
        )

    persons = int(warehouse.scalar("SELECT count(DISTINCT person) FROM journey_scratch"))
    _insert_derived(warehouse, model)
    warehouse.run("DELETE FROM journey_scratch")
    warehouse.run("DELETE FROM journey_changed")
    _set_state(warehouse, fingerprint, generation, upto)
    return persons, full


def _insert_derived(warehouse: Warehouse, model: StageModel) -> None:
    """Stage entries, latest traits, then facts, of the persons in ``journey_scratch``: the
    Ibis expressions every engine computes, inserted with the SQL they compile to. The
    entries and the placed events are kept in temporary tables on the way: the entries' progress
    (:func:`~touchpoints.journeys.stages.with_progress`) and the placing read the entries,
    the marks read the placed events three times
    (:func:`~touchpoints.journeys.stages.marked_facts`)."""
    # Held, so that a compaction cannot swap the connection that has the temporary tables
    # (this thread's) in between.
    with warehouse.using():
        try:
            for statement in _derive_sql(warehouse, model):
                warehouse.run(statement)
        finally:
            warehouse.run(f"DROP TABLE IF EXISTS {_ENTRIES}")
            warehouse.run(f"DROP TABLE IF EXISTS {_PLACED}")


_COMPILED: dict[str, tuple[str, ...]] = {}
_TRAITS_KEPT = "journey_latest_traits"
# What is derived per person: emptied for the persons derived again, all of it in full.
_KEPT = ("journey_facts", "journey_stage_entries", _TRAITS_KEPT, "journey_null_moves")
_ENTRIES = "_tp_journey_entries"
_PLACED = "_tp_journey_placed"


def _derive_sql(warehouse: Warehouse, model: StageModel) -> tuple[str, ...]:
    """The statements for ``model`` (the stage entries' temporary table, their INSERT with
    each entry's progress, the latest traits' INSERT, the placed events' temporary table,
    the facts' INSERT), compiled
    once (compiling takes Ibis about half a second; the text depends on the model only).
    The entries are kept in a table first: their progress reads them three times."""
    import ibis

    from touchpoints.journeys.attribution import NULL_MOVES_COLUMNS, kept_null_moves
    from touchpoints.journeys.stages import (
        ENTRY_COLUMNS,
        FACT_COLUMNS,
        computed_stage_entries,
        marked_facts,
        placed_facts,
        with_progress,
    )

    fingerprint = model.fingerprint()
    if fingerprint in _COMPILED:
        return _COMPILED[fingerprint]
    gateway = IbisGateway(warehouse)
    backend = gateway.backend
    scratch = Source(backend, events_table="journey_scratch", gateway=gateway)
    entry_columns = ", ".join(ENTRY_COLUMNS)
    entries = computed_stage_entries(scratch, model)
    held_entries = ibis.table(entries.schema(), name=_ENTRIES)
    placed = placed_facts(scratch, model, held_entries)
    held = ibis.table(placed.schema(), name=_PLACED)
    columns = ", ".join(FACT_COLUMNS)
    traits = "person, key, text_value, number_value"
    moves = ", ".join(NULL_MOVES_COLUMNS)
    compiled = (
        f"CREATE OR REPLACE TEMP TABLE {_ENTRIES} AS {gateway.compile(entries)}",
        f"INSERT INTO journey_stage_entries ({entry_columns}) "
        f"SELECT {entry_columns} FROM ({gateway.compile(with_progress(held_entries))})",
        f"INSERT INTO {_TRAITS_KEPT} ({traits}) "
        f"SELECT {traits} FROM ({gateway.compile(scratch.latest_traits())})",
        f"CREATE OR REPLACE TEMP TABLE {_PLACED} AS {gateway.compile(placed)}",
        f"INSERT INTO journey_facts ({columns}) "
        f"SELECT {columns} FROM ({gateway.compile(marked_facts(held))})",
        f"INSERT INTO journey_null_moves ({moves}) "
        f"SELECT {moves} FROM ({gateway.compile(kept_null_moves(held))})",
    )
    _COMPILED[fingerprint] = compiled
    return compiled


def kept_stage(warehouse: Warehouse, person: int) -> str | None:
    """The furthest stage ``person`` had entered when the facts were last derived (no
    refresh: for a lookup on a request's path, which must not wait for one)."""
    rows = warehouse.fetchall(
        "SELECT stage FROM journey_stage_entries WHERE person = ? "
        "ORDER BY stage_index DESC LIMIT 1",
        [person],
    )
    return str(rows[0][0]) if rows else None


def kept_model(warehouse: Warehouse) -> str | None:
    """The fingerprint of the stage model whose facts the warehouse keeps, if any."""
    kept = warehouse.fetchall("SELECT model FROM journey_state")
    return str(kept[0][0]) if kept else None


def _set_state(warehouse: Warehouse, model: str, generation: int, facts_seq: int) -> None:
    warehouse.run("DELETE FROM journey_state")
    warehouse.run("INSERT INTO journey_state VALUES (?, ?, ?)", [model, generation, facts_seq])


# Persons whose facts are stale: those the identity map moved identifiers from or to since
# the facts were derived, and those with events the facts have not seen.
_MOVED_SQL = """
    INSERT INTO journey_changed
    WITH moved AS (
        SELECT s.person AS before, i.person AS now
        FROM journey_persons s JOIN identifiers i ON i.sid = s.sid
        WHERE i.person <> s.person
    )
    SELECT before FROM moved
    UNION
    SELECT now FROM moved
"""

_NEW_SQL = """
    INSERT INTO journey_changed
    SELECT DISTINCT i.person
    FROM journey_events e
    JOIN event_identifiers a ON a.seq = e.seq AND a.pos = 0
    JOIN identifiers i ON i.sid = a.sid
    WHERE e.seq > ? AND e.seq <= ?
"""


def _moved(warehouse: Warehouse) -> bool:
    """Whether the identity map may differ from the map the facts last saw."""
    pairs = "SELECT count(*), sum(hash(sid, person)) FROM {}"
    now = warehouse.fetchall(pairs.format("identifiers"))
    seen = warehouse.fetchall(pairs.format("journey_persons"))
    return bool(now != seen)


# The events of the changed persons the facts hold (their device does not change; their
# person may have), and the events the facts have not seen yet.
_KEPT_EVENTS_SQL = f"""
    INSERT INTO journey_scratch ({_EVENT_COLUMNS}, device, person)
    SELECT f.seq, f.ts, f.type, f.event, f.channel, f.source, f.path, f.campaign, f.medium,
           f.device, i.person
    FROM journey_facts f JOIN identifiers i ON i.sid = f.device
    WHERE true {{persons}}
"""

_NEW_EVENTS_SQL = f"""
    INSERT INTO journey_scratch ({_EVENT_COLUMNS}, device, person)
    SELECT e.seq, e.ts, e.type, e.event, e.channel, e.source, e.path, e.campaign, e.medium,
           a.sid, i.person
    FROM journey_events e
    JOIN event_identifiers a ON a.seq = e.seq AND a.pos = 0
    JOIN identifiers i ON i.sid = a.sid
    WHERE e.seq > ? AND e.seq <= ? {{persons}}
"""
