"""The SQL of loading an identity map computed outside touchpoints (see
:mod:`touchpoints.identity.outside`): the checks against the stored map and the one
transaction that stores it. The result's rows arrive as Arrow tables, registered as
``_out_persons`` (sid, type, value, detached, person) and ``_out_rejections`` (seq, link_id,
person, other, sid, rule)."""

from __future__ import annotations

import pyarrow as pa

from touchpoints.errors import Conflict
from touchpoints.warehouse import Warehouse, utc_now


def links_sql() -> str:
    """The identity links in force, and the last link id given (a link added or removed
    since the export changes one or the other)."""
    return (
        "SELECT count(*) FILTER (WHERE NOT removed), coalesce(max(link_id), 0) FROM identity_links"
    )


def same_identifiers_sql() -> str:
    """Result rows that match a stored identifier in number, type, value and detached flag;
    result rows; stored identifiers; persons that are no identifier of the result."""
    return """
        SELECT
            (SELECT count(*) FROM _out_persons o JOIN identifiers i
               ON i.sid = o.sid AND i.type = o.type AND i.value = o.value
              AND i.detached = o.detached),
            (SELECT count(*) FROM _out_persons),
            (SELECT count(*) FROM identifiers),
            (SELECT count(*) FROM _out_persons o
              WHERE o.person NOT IN (SELECT sid FROM _out_persons))
    """


def changed_sql() -> str:
    return (
        "SELECT count(*) FROM identifiers i JOIN _out_persons o ON o.sid = i.sid "
        "WHERE i.person <> o.person"
    )


def update_persons_sql() -> str:
    return (
        "UPDATE identifiers SET person = o.person FROM _out_persons o "
        "WHERE identifiers.sid = o.sid AND identifiers.person <> o.person"
    )


def insert_rejections_sql() -> str:
    """The refused links, each with its evidence: the event (its message id) or the link."""
    return """
        INSERT INTO identity_rejections
            (seq, message_id, link_id, created_at, person, other, sid, rule)
        SELECT r.seq, CASE WHEN r.link_id IS NULL THEN e.message_id END, r.link_id, ?,
               r.person, r.other, r.sid, r.rule
        FROM _out_rejections r LEFT JOIN events e ON e.seq = r.seq AND r.link_id IS NULL
    """


class OutsideStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def links(self) -> tuple[int, int]:
        in_force, last = self.warehouse.fetchall(links_sql())[0]
        return int(in_force), int(last)

    def check_identifiers(self, persons: pa.Table) -> None:
        """Refuse (409) a result whose identifiers are not the stored ones, each with its
        number, type, value and detached flag, or whose persons are not its identifiers."""
        with self.warehouse.registered("_out_persons", persons):
            matched, given, stored, strangers = self.warehouse.fetchall(same_identifiers_sql())[0]
        if not matched == given == stored:
            raise Conflict(
                f"result: its {given:,} identifiers are not this warehouse's {stored:,} "
                f"({matched:,} agree in number, type, value and detached flag): identifiers "
                "were detached, erased or renumbered since the export; export again, run "
                "`touchpoints spark rebuild` on it and load its result"
            )
        if strangers:
            raise Conflict(
                f"result: {strangers:,} identifiers have a person that is no identifier of the "
                "result; it was not written by `touchpoints spark rebuild`"
            )

    def remember(self, directory: str) -> None:
        """Keep the path of a result that was loaded (erasure writes its files again)."""
        self.warehouse.run(
            "INSERT INTO identity_results VALUES (?, ?) ON CONFLICT (path) DO UPDATE "
            "SET loaded_at = excluded.loaded_at",
            [directory, utc_now()],
        )

    def results(self) -> list[str]:
        """The result directories loaded, oldest first."""
        return [
            str(path)
            for (path,) in self.warehouse.fetchall(
                "SELECT path FROM identity_results ORDER BY loaded_at"
            )
        ]

    def store(self, persons: pa.Table, rejections: pa.Table) -> int:
        """Every identifier's person and the refused links, in one transaction; the merge log
        is history and stays (as a rebuild leaves it). Returns the identifiers whose person
        changed."""
        wh = self.warehouse
        with (
            wh.transaction() as cursor,
            wh.registered("_out_persons", persons, cursor),
            wh.registered("_out_rejections", rejections, cursor),
        ):
            changed = int(wh.run(changed_sql(), cursor=cursor).fetchall()[0][0])
            wh.run(update_persons_sql(), cursor=cursor)
            wh.run("DELETE FROM identity_rejections", cursor=cursor)
            if rejections.num_rows:
                wh.run(insert_rejections_sql(), [utc_now()], cursor=cursor)
            wh.run("UPDATE identity_state SET generation = generation + 1", cursor=cursor)
        return changed
