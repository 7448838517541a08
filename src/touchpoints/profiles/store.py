"""What a profile reads from the warehouse: a person's identifiers, events, merges and
refused links, the timeline, and trait search.

A person's events are those whose anchor identifier (pos 0) belongs to the person. They are
found in three narrow steps (identifiers → anchored seqs → events) with the keys passed as
lists: point lookups that stay fast as the tables grow, where one three-way join would scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from touchpoints.warehouse import Warehouse, run_sql


class PersonIdentifier(NamedTuple):
    sid: int
    type: str
    value: str
    first_seq: int


class ProfileEvent(NamedTuple):
    """The columns of an event a profile is assembled from (JSON columns as text)."""

    seq: int
    message_id: str
    type: str
    event: str | None
    channel: str
    source: str
    traits: str | None
    context: str | None
    properties: str | None
    timestamp: datetime


class MergeEntry(NamedTuple):
    kind: str
    created_at: datetime
    seq: int | None
    message_id: str | None
    kept: int
    absorbed: int | None
    sid: int  # the identifier whose link merged, or the one unmerged
    note: str | None


class RefusedLink(NamedTuple):
    seq: int
    message_id: str | None
    rule: str
    sid: int
    person: int
    other: int


_EVENT_COLUMNS = ", ".join(ProfileEvent._fields)


class ProfileStore:
    """The profile queries on one warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def identifiers(self, person: int) -> list[PersonIdentifier]:
        """The person's identifiers, by type, then in the order they were first seen."""
        rows = self.warehouse.fetchall(
            "SELECT sid, type, value, first_seq FROM identifiers WHERE person = ? "
            "ORDER BY type, sid",
            [person],
        )
        return [PersonIdentifier(*row) for row in rows]

    def sids(self, person: int) -> list[int]:
        rows = self.warehouse.fetchall("SELECT sid FROM identifiers WHERE person = ?", [person])
        return [sid for (sid,) in rows]

    def event_seqs(self, sids: Sequence[int]) -> list[int]:
        """The events anchored on ``sids`` (their most trusted identifier is one of them)."""
        rows = self.warehouse.fetchall(
            "SELECT seq FROM event_identifiers "
            "WHERE pos = 0 AND sid IN (SELECT unnest(?::BIGINT[]))",
            [list(sids)],
        )
        return [seq for (seq,) in rows]

    def events(self, seqs: Sequence[int]) -> list[ProfileEvent]:
        """The events ``seqs``, by event time then arrival."""
        rows = self.warehouse.fetchall(
            f"SELECT {_EVENT_COLUMNS} FROM events "
            "WHERE seq IN (SELECT unnest(?::BIGINT[])) ORDER BY timestamp, seq",
            [list(seqs)],
        )
        return [ProfileEvent(*row) for row in rows]

    def consent_choices(self, seqs: Sequence[int]) -> list[tuple[int, str, bool]]:
        """(seq, category, granted) of each consent choice the events ``seqs`` carried."""
        rows = self.warehouse.fetchall(
            "SELECT seq, category, granted FROM consent_choices "
            "WHERE seq IN (SELECT unnest(?::BIGINT[])) ORDER BY seq, category",
            [list(seqs)],
        )
        return [(seq, category, granted) for seq, category, granted in rows]

    def latest_choices(
        self, persons: Sequence[int], category: str, cursor: Any = None
    ) -> dict[int, bool]:
        """Per person of ``persons`` who ever chose ``category``: their latest choice
        (granted or not), in event order (time, then arrival), over the events anchored on
        their identifiers, as the identity map and the events are stored now (not the
        journey tables, which a trigger's dispatch may run ahead of). One statement: the
        consent choices are few, and filtered by category first. On ``cursor`` when given
        (inside a caller's transaction)."""
        sql = """
            SELECT i.person, arg_max(c.granted, (e.timestamp, e.seq))
            FROM consent_choices c
            JOIN event_identifiers ei ON ei.seq = c.seq AND ei.pos = 0
            JOIN identifiers i ON i.sid = ei.sid
            JOIN events e ON e.seq = c.seq
            WHERE c.category = ? AND i.person IN (SELECT unnest(?::BIGINT[]))
            GROUP BY i.person
        """
        params = [category, list(persons)]
        rows = (
            run_sql(cursor, sql, params).fetchall()
            if cursor is not None
            else self.warehouse.fetchall(sql, params)
        )
        return {int(person): bool(granted) for person, granted in rows}

    def event_times(self, seqs: Iterable[int]) -> dict[int, datetime]:
        """The time of each of the events ``seqs``."""
        return dict(
            self.warehouse.fetchall(
                "SELECT seq, timestamp FROM events WHERE seq IN (SELECT unnest(?::BIGINT[]))",
                [sorted(seqs)],
            )
        )

    def names(self, sids: Iterable[int]) -> dict[int, str]:
        """``type:value`` of each sid."""
        return {
            sid: f"{id_type}:{value}"
            for sid, id_type, value in self.warehouse.fetchall(
                "SELECT sid, type, value FROM identifiers "
                "WHERE sid IN (SELECT unnest(?::BIGINT[]))",
                [sorted(sids)],
            )
        }

    def persons_of(self, sids: Iterable[int]) -> dict[int, int]:
        """The person of each sid."""
        return dict(
            self.warehouse.fetchall(
                "SELECT sid, person FROM identifiers WHERE sid IN (SELECT unnest(?::BIGINT[]))",
                [sorted(sids)],
            )
        )

    def timeline(
        self, seqs: Sequence[int], limit: int, before: tuple[datetime, int] | None = None
    ) -> list[dict[str, Any]]:
        """Every column of the events ``seqs``, newest first, ``limit`` of them; ``before``:
        only those before (timestamp, seq)."""
        sql = "SELECT * FROM events p WHERE seq IN (SELECT unnest(?::BIGINT[]))"
        params: list[Any] = [list(seqs)]
        if before is not None:
            sql += " AND (p.timestamp, p.seq) < (?, ?)"
            params += [before[0], before[1]]
        sql += " ORDER BY p.timestamp DESC, p.seq DESC LIMIT ?"
        params.append(limit)
        cursor = self.warehouse.run(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def merges(self, sids: Sequence[int]) -> list[MergeEntry]:
        """The merge log's entries that kept, absorbed or unmerged any of ``sids``, oldest
        first."""
        rows = self.warehouse.fetchall(
            "SELECT kind, created_at, seq, message_id, kept, absorbed, sid, note "
            "FROM identity_merges "
            "WHERE list_contains(?::BIGINT[], kept) OR list_contains(?::BIGINT[], absorbed) "
            "   OR list_contains(?::BIGINT[], sid) "
            "ORDER BY created_at, seq",
            [list(sids)] * 3,
        )
        return [MergeEntry(*row) for row in rows]

    def refused_links(self, sids: Sequence[int]) -> list[RefusedLink]:
        """Links refused under the merge rules whose person or other is one of ``sids``."""
        rows = self.warehouse.fetchall(
            "SELECT seq, message_id, rule, sid, person, other FROM identity_rejections "
            "WHERE list_contains(?::BIGINT[], person) OR list_contains(?::BIGINT[], other) "
            "ORDER BY seq",
            [list(sids)] * 2,
        )
        return [RefusedLink(*row) for row in rows]

    def persons_with_trait(self, trait: str, value: str, limit: int) -> list[int]:
        """Persons with ``trait`` equal to ``value`` (case-insensitive) in any event."""
        path = "$." + trait.replace('"', "")
        rows = self.warehouse.fetchall(
            "SELECT DISTINCT i.person FROM events e "
            "JOIN event_identifiers ei ON ei.seq = e.seq AND ei.pos = 0 "
            "JOIN identifiers i ON i.sid = ei.sid "
            "WHERE lower(coalesce(json_extract_string(e.traits, ?), "
            "                     json_extract_string(e.context, ?))) = lower(?) "
            "ORDER BY i.person LIMIT ?",
            [path, "$.traits." + trait.replace('"', ""), value, limit],
        )
        return [person for (person,) in rows]
