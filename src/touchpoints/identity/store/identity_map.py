"""The identity map's tables: identifiers, event identifiers, links, the merge log and the
refused links, with the SQL that reads them and the Arrow writes that fill them.

The resolver decides (the graph, the merge rules, what an unmerge replays); this module only
stores and reads. Writes that belong together are one :class:`IdentityChanges`, written in
one transaction, so a crash never leaves an event's identity rows half written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import duckdb
import pyarrow as pa

from touchpoints.identity.graph import Merge, Rejection
from touchpoints.identity.identifiers import Identifier
from touchpoints.warehouse import Warehouse, utc_now

# What made a merge or a refusal: an event (its message id) or a link (its id).
Evidence = tuple[str | None, int | None]
# (sid, type, value, first_seq, person) of an identifier seen for the first time.
NewIdentifier = tuple[int, str, str, int, int]
# (seq, pos, sid): an event's identifiers, anchor (pos 0) first.
EventIdentifier = tuple[int, int, int]
_IDENTIFIER_COLUMNS = "sid, type, value, first_seq, person, detached"
_EVENT_IDENTIFIER_COLUMNS = "seq, pos, sid"


class NewLink(NamedTuple):
    """A link to store: two identifiers joined after the event ``after_seq``."""

    link_id: int
    after_seq: int
    type_a: str
    value_a: str
    type_b: str
    value_b: str
    source: str
    probability: float | None
    note: str | None


class StoredLink(NamedTuple):
    link_id: int
    after_seq: int
    a: Identifier
    b: Identifier
    source: str
    probability: float | None
    created_at: datetime
    removed: bool
    note: str | None


class StoredIdentifiers(NamedTuple):
    """Every identifier, in sid order, one list per column (millions of rows: no object
    per row)."""

    sid: list[int]
    type: list[str]
    value: list[str]
    person: list[int]
    detached: list[bool]


class NewEvent(NamedTuple):
    seq: int
    message_id: str
    raw: str


class ReplayRow(NamedTuple):
    """One identifier of an event (``link_id`` 0) or one end of a link, in replay order."""

    seq: int
    link_id: int
    sid: int
    message_id: str | None


@dataclass
class IdentityChanges:
    """What one catch-up (or one set of links) writes, in one transaction."""

    links: list[NewLink] = field(default_factory=list)
    identifiers: list[NewIdentifier] = field(default_factory=list)
    event_identifiers: list[EventIdentifier] = field(default_factory=list)
    repoint: dict[int, int] = field(default_factory=dict)  # absorbed person → its person now
    merges: list[tuple[Evidence, Merge]] = field(default_factory=list)
    notes: dict[int, str] = field(default_factory=dict)  # link id → the merge log's note
    rejections: list[tuple[Evidence, Rejection]] = field(default_factory=list)
    processed_seq: int | None = None  # the events applied so far (None: unchanged)


def link_sids_sql(ids: str = "identifiers") -> str:
    """Links in force, with the surrogates of their two identifiers in ``ids``."""
    return f"""
        SELECT l.link_id, l.after_seq, a.sid AS sid_a, b.sid AS sid_b
        FROM identity_links l
        JOIN {ids} a ON a.type = l.type_a AND a.value = l.value_a
        JOIN {ids} b ON b.type = l.type_b AND b.value = l.value_b
        WHERE NOT l.removed
    """


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


def neighbours_sql() -> str:
    """Identifiers one event or one link in force away from the sids given (a BIGINT list)."""
    return f"""
        WITH f AS (SELECT unnest(?::BIGINT[]) AS sid)
        SELECT DISTINCT b.sid FROM event_identifiers a
        JOIN event_identifiers b ON a.seq = b.seq WHERE a.sid IN (SELECT sid FROM f)
        UNION SELECT sid_b FROM ({link_sids_sql()}) WHERE sid_a IN (SELECT sid FROM f)
        UNION SELECT sid_a FROM ({link_sids_sql()}) WHERE sid_b IN (SELECT sid FROM f)
    """


def component_rows(
    warehouse: Warehouse,
    sids: Sequence[int],
    skip_links: Sequence[int] = (),
    ids: str = "identifiers",
    ei: str = "event_identifiers",
) -> list[ReplayRow]:
    """The rows that replay the component of ``sids`` (see :func:`component_rows_sql`)."""
    rows = warehouse.fetchall(component_rows_sql(ids, ei), [list(sids), list(skip_links)])
    return [ReplayRow(seq, link, sid, mid) for seq, link, _pos, sid, mid in rows]


def insert_rejections(
    warehouse: Warehouse,
    rejections: Sequence[tuple[Evidence, Rejection]],
    cursor: duckdb.DuckDBPyConnection,
) -> None:
    """Record refused links with their evidence (the event or link that would have made
    them), in one Arrow append: a rebuild refuses thousands, and a statement a row took
    seconds for them."""
    if not rejections:
        return
    now = utc_now()
    table = pa.table(
        {
            "seq": pa.array([r.seq for _, r in rejections], pa.int64()),
            "message_id": pa.array([message_id for (message_id, _), _ in rejections], pa.string()),
            "link_id": pa.array([link_id for (_, link_id), _ in rejections], pa.int64()),
            "created_at": pa.array([now] * len(rejections), pa.timestamp("us")),
            "person": pa.array([r.person for _, r in rejections], pa.int64()),
            "other": pa.array([r.other for _, r in rejections], pa.int64()),
            "sid": pa.array([r.sid for _, r in rejections], pa.int64()),
            "rule": pa.array([r.rule for _, r in rejections], pa.string()),
        }
    )
    warehouse.insert_arrow(
        "identity_rejections",
        "seq, message_id, link_id, created_at, person, other, sid, rule",
        table,
        cursor,
    )


class IdentityStore:
    """Reads and writes of the identity map in one warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        # The last event applied, as committed: kept once read, since this store writes it
        # (a rebuild, which writes it too, ends with forget_position). The writer asked for
        # it twice a batch and the triggers once, each a statement that under full load
        # waited ~8 ms for the interpreter (benchmarks/RESULTS.md, triggers).
        self._processed: int | None = None

    # -- reads for the resolver --------------------------------------------------------------
    def identifiers(self) -> StoredIdentifiers:
        table = self.warehouse.fetch_arrow(
            "SELECT sid, type, value, person, detached FROM identifiers ORDER BY sid"
        )
        return StoredIdentifiers(*(table[name].to_pylist() for name in StoredIdentifiers._fields))

    def processed_seq(self) -> int:
        found = self._processed
        if found is None:
            found = int(self.warehouse.scalar("SELECT processed_seq FROM identity_state") or 0)
            self._processed = found
        return found

    def forget_position(self) -> None:
        """Read ``processed_seq`` again next time (something else wrote it)."""
        self._processed = None

    def rules(self) -> str | None:
        """The fingerprint of the rules every stored event identifier was found by (None:
        unknown, or more than one)."""
        found = self.warehouse.scalar("SELECT rules FROM identity_state")
        return None if found is None else str(found)

    def note_rules(self, rules: str) -> None:
        """A process about to extract identifiers by ``rules``: a map with none extracted yet
        takes them; one found by other rules is no longer found by one set (NULL), until a
        rebuild extracts every event's identifiers again."""
        self.warehouse.run(
            "UPDATE identity_state SET rules = CASE "
            "WHEN rules IS NULL AND processed_seq = 0 THEN ? "
            "WHEN rules <> ? THEN NULL ELSE rules END",
            [rules, rules],
        )

    def events_after(self, seq: int, limit: int) -> list[NewEvent]:
        """Stored events past ``seq``, in seq order, at most ``limit``."""
        rows = self.warehouse.fetchall(
            "SELECT seq, message_id, raw FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            [seq, limit],
        )
        return [NewEvent(*row) for row in rows]

    def sid_of(self, identifier: Identifier) -> int | None:
        found: int | None = self.warehouse.scalar(
            "SELECT sid FROM identifiers WHERE type = ? AND value = ?",
            [identifier.type, identifier.value],
        )
        return found

    def last_link_id(self) -> int:
        return int(self.warehouse.scalar("SELECT coalesce(max(link_id), 0) FROM identity_links"))

    def link_ends(self, link_id: int) -> tuple[int, int] | None:
        """The sids a link in force joins, or None if there is no such link."""
        found = self.warehouse.fetchall(
            f"SELECT sid_a, sid_b FROM ({link_sids_sql()}) WHERE link_id = ?", [link_id]
        )
        return (int(found[0][0]), int(found[0][1])) if found else None

    def neighbours(self, sids: Iterable[int]) -> set[int]:
        return {sid for (sid,) in self.warehouse.fetchall(neighbours_sql(), [sorted(sids)])}

    def component_rows(self, sids: Iterable[int], skip_links: Sequence[int]) -> list[ReplayRow]:
        return component_rows(self.warehouse, sorted(sids), skip_links)

    # -- writes ------------------------------------------------------------------------------
    def write(self, changes: IdentityChanges) -> None:
        """Store one catch-up's (or one set of links') rows, all or nothing."""
        wh = self.warehouse
        now = utc_now()
        if not (changes.links or changes.repoint or changes.merges or changes.rejections):
            self._write_plain(changes)
            return
        with wh.transaction() as cursor:
            if changes.links:
                wh.insert_arrow(
                    "identity_links", ", ".join(_LINKS.names), _links(changes.links, now), cursor
                )
            if changes.identifiers:
                wh.insert_arrow(
                    "identifiers",
                    _IDENTIFIER_COLUMNS,
                    _identifiers(changes.identifiers),
                    cursor,
                )
            if changes.event_identifiers:
                table = _event_identifiers(changes.event_identifiers)
                wh.insert_arrow("event_identifiers", _EVENT_IDENTIFIER_COLUMNS, table, cursor)
            if changes.repoint:
                self._repoint(changes.repoint, cursor)
            if changes.merges:
                wh.insert_arrow(
                    "identity_merges",
                    "seq, message_id, link_id, created_at, kind, kept, absorbed, sid, note",
                    _merges(changes.merges, changes.notes, now),
                    cursor,
                )
            insert_rejections(wh, changes.rejections, cursor)
            if changes.processed_seq is not None:
                wh.run(
                    "UPDATE identity_state SET processed_seq = ?",
                    [changes.processed_seq],
                    cursor=cursor,
                )
        if changes.processed_seq is not None:
            self._processed = changes.processed_seq  # committed

    def _write_plain(self, changes: IdentityChanges) -> None:
        """A catch-up that merged and refused nothing (most batches): its new identifiers,
        its events' identifiers and how far it read, in one call (Warehouse.script)."""
        statements: list[str] = []
        tables: dict[str, pa.Table] = {}
        if changes.identifiers:
            tables["_tp_new_identifiers"] = _identifiers(changes.identifiers)
            statements.append(
                f"INSERT INTO identifiers ({_IDENTIFIER_COLUMNS}) SELECT * FROM _tp_new_identifiers"
            )
        if changes.event_identifiers:
            tables["_tp_new_event_identifiers"] = _event_identifiers(changes.event_identifiers)
            statements.append(
                f"INSERT INTO event_identifiers ({_EVENT_IDENTIFIER_COLUMNS}) "
                "SELECT * FROM _tp_new_event_identifiers"
            )
        if changes.processed_seq is not None:
            statements.append(
                f"UPDATE identity_state SET processed_seq = {int(changes.processed_seq)}"
            )
        if statements:
            self.warehouse.script(statements, tables)
        if changes.processed_seq is not None:
            self._processed = changes.processed_seq  # committed

    def _repoint(self, persons: dict[int, int], cursor: duckdb.DuckDBPyConnection) -> None:
        """Every identifier of an absorbed person now belongs to the surviving one."""
        old = sorted(persons)
        mapping = pa.table(
            {
                "old": pa.array(old, pa.int64()),
                "new": pa.array([persons[p] for p in old], pa.int64()),
            }
        )
        with self.warehouse.registered("_repoint", mapping, cursor):
            self.warehouse.run(
                "UPDATE identifiers SET person = _repoint.new FROM _repoint "
                "WHERE identifiers.person = _repoint.old",
                cursor=cursor,
            )

    def write_split(
        self,
        persons: dict[int, int],
        rejections: Sequence[tuple[Evidence, Rejection]],
        *,
        old_person: int,
        sid: int,
        note: str = "",
        removed_link: int | None = None,
    ) -> None:
        """Store a replayed component with the unmerge that caused it, in one transaction:
        each sid's person now (``persons``), the component's refused links again, then the
        link ``removed_link`` removed (or, without one, ``sid`` detached) and the merge log's
        entry for the unmerge of ``old_person``."""
        wh = self.warehouse
        with wh.transaction() as cursor:
            self.write_replay(persons, rejections, cursor)
            if removed_link is not None:
                wh.run(
                    "UPDATE identity_links SET removed = true WHERE link_id = ?",
                    [removed_link],
                    cursor=cursor,
                )
            else:
                wh.run("UPDATE identifiers SET detached = true WHERE sid = ?", [sid], cursor=cursor)
            wh.run(
                "INSERT INTO identity_merges (seq, message_id, link_id, created_at, kind, "
                "kept, absorbed, sid, note) "
                "VALUES (NULL, NULL, ?, ?, 'unmerge', ?, NULL, ?, ?)",
                [removed_link, utc_now(), old_person, sid, note],
                cursor=cursor,
            )

    def write_replay(
        self,
        persons: dict[int, int],
        rejections: Sequence[tuple[Evidence, Rejection]],
        cursor: duckdb.DuckDBPyConnection,
    ) -> None:
        """Inside the transaction of ``cursor``: each sid's person now, and the refused links
        of those sids replaced by ``rejections``."""
        ordered = sorted(persons)
        table = pa.table(
            {
                "sid": pa.array(ordered, pa.int64()),
                "person": pa.array([persons[s] for s in ordered], pa.int64()),
            }
        )
        with self.warehouse.registered("_persons", table, cursor):
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
    def person_counts(self, device_types: Sequence[str]) -> tuple[int, int]:
        """(persons, persons known by at least one identifier not of ``device_types``)."""
        marks = ", ".join("?" for _ in device_types)
        persons, identified = self.warehouse.fetchall(
            "SELECT count(*), count(*) FILTER (WHERE known) FROM ("
            f"  SELECT person, bool_or(type NOT IN ({marks})) AS known"
            "  FROM identifiers GROUP BY person)",
            list(device_types),
        )[0]
        return int(persons), int(identified or 0)

    def identifier_counts(self) -> dict[str, int]:
        """Identifiers per type, most first."""
        rows = self.warehouse.fetchall(
            "SELECT type, count(*) FROM identifiers GROUP BY type ORDER BY 2 DESC, 1"
        )
        return {name: int(n) for name, n in rows}

    def persons_by_sid(self) -> dict[int, int]:
        return dict(self.warehouse.fetchall("SELECT sid, person FROM identifiers"))

    def identifiers_of(self, person: int) -> list[Identifier]:
        """A person's identifiers, by type, then in the order they were first seen."""
        rows = self.warehouse.fetchall(
            "SELECT type, value FROM identifiers WHERE person = ? ORDER BY type, sid", [person]
        )
        return [Identifier(id_type, value) for id_type, value in rows]

    def links(
        self, limit: int = 50, offset: int = 0, removed: bool = False
    ) -> tuple[int, list[StoredLink]]:
        """(how many, a page of) links in force (with ``removed``, all), newest first."""
        where = "" if removed else "WHERE NOT removed"
        total = int(self.warehouse.scalar(f"SELECT count(*) FROM identity_links {where}"))
        rows = self.warehouse.fetchall(
            "SELECT link_id, after_seq, type_a, value_a, type_b, value_b, source, probability, "
            f"created_at, removed, note FROM identity_links {where} "
            "ORDER BY link_id DESC LIMIT ? OFFSET ?",
            [limit, offset],
        )
        return total, [
            StoredLink(
                link_id,
                after_seq,
                Identifier(type_a, value_a),
                Identifier(type_b, value_b),
                source,
                probability,
                created_at,
                is_removed,
                note,
            )
            for (
                link_id,
                after_seq,
                type_a,
                value_a,
                type_b,
                value_b,
                source,
                probability,
                created_at,
                is_removed,
                note,
            ) in rows
        ]


# -- Arrow tables of new rows ----------------------------------------------------------------
_LINKS = pa.schema(
    {
        "link_id": pa.int64(),
        "after_seq": pa.int64(),
        "type_a": pa.string(),
        "value_a": pa.string(),
        "type_b": pa.string(),
        "value_b": pa.string(),
        "source": pa.string(),
        "probability": pa.float64(),
        "note": pa.string(),
        "created_at": pa.timestamp("us"),
        "removed": pa.bool_(),
    }
)


def _links(links: Sequence[NewLink], now: datetime) -> pa.Table:
    columns = {name: [getattr(link, name) for link in links] for name in NewLink._fields}
    columns |= {"created_at": [now] * len(links), "removed": [False] * len(links)}
    return pa.table(columns, schema=_LINKS)


def _identifiers(rows: Sequence[NewIdentifier]) -> pa.Table:
    sids, types, values, seqs, persons = zip(*rows, strict=True)
    return pa.table(
        {
            "sid": pa.array(sids, pa.int64()),
            "type": pa.array(types, pa.string()),
            "value": pa.array(values, pa.string()),
            "first_seq": pa.array(seqs, pa.int64()),
            "person": pa.array(persons, pa.int64()),
            "detached": pa.array([False] * len(sids), pa.bool_()),
        }
    )


def _event_identifiers(rows: Sequence[EventIdentifier]) -> pa.Table:
    seqs, positions, sids = zip(*rows, strict=True)
    return pa.table(
        {
            "seq": pa.array(seqs, pa.int64()),
            "pos": pa.array(positions, pa.int16()),
            "sid": pa.array(sids, pa.int64()),
        }
    )


def _merges(
    merges: Sequence[tuple[Evidence, Merge]], notes: dict[int, str], now: datetime
) -> pa.Table:
    return pa.table(
        {
            "seq": pa.array([m.seq for _, m in merges], pa.int64()),
            "message_id": pa.array([e[0] for e, _ in merges], pa.string()),
            "link_id": pa.array([e[1] for e, _ in merges], pa.int64()),
            "created_at": pa.array([now] * len(merges), pa.timestamp("us")),
            "kind": pa.array(["merge" if e[1] is None else "link" for e, _ in merges], pa.string()),
            "kept": pa.array([m.kept for _, m in merges], pa.int64()),
            "absorbed": pa.array([m.absorbed for _, m in merges], pa.int64()),
            "sid": pa.array([m.sid for _, m in merges], pa.int64()),
            "note": pa.array(
                [None if e[1] is None else notes.get(e[1]) for e, _ in merges], pa.string()
            ),
        }
    )
