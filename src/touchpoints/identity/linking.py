"""Probabilistic linking: persons who share no identifier but are one person, by their traits.

Deterministic stitching joins what events show together. A dealer's record "Ida Lnage,
16.03.1963, 90402" and the web shopper "Ida Lange, 16.03.1963, 90402, ida.lange@posteo.de"
share no identifier; this job finds them:

1. One record per person: the latest value (by event time) of each trait the comparisons
   read, from identify traits and ``context.traits``, under the Segment spec's names or in
   snake case. A record is named by the person's most trusted identifier (``type:value``),
   so a link names identifiers, not person numbers that a later merge may retire.
2. Splink scores pairs of records (:mod:`touchpoints.identity.matching`).
3. Pairs at or above the threshold become links of the identity graph with their probability
   (the merge rules still apply: a link that would give a person two user ids is refused and
   recorded). Pairs in the review band go to the review list, where a person accepts
   (a link) or rejects them. A rejected pair is never proposed again; pairs whose persons are
   already one are skipped. Every pair is kept with its outcome in ``identity_match_pairs``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from touchpoints.errors import Conflict, InvalidRequest, NotFound
from touchpoints.identity.identifiers import Identifier
from touchpoints.identity.resolver import IdentityResolver, LinkRequest

# Where each compared field is found in a person's traits (first path that has a value).
TRAIT_PATHS: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name", "firstName", "firstname"),
    "last_name": ("last_name", "lastName", "lastname"),
    "email": ("email",),
    "phone": ("phone",),
    "birth_date": ("birthday", "birth_date", "birthDate"),
    "street": ("street", "address.street", "address_line1", "address.line1"),
    "postcode": (
        "postal_code",
        "postalCode",
        "address.postal_code",
        "address.postalCode",
        "zip",
    ),
    "city": ("city", "address.city"),
}
FIELDS = tuple(TRAIT_PATHS)
log = logging.getLogger("touchpoints.identity")
# A pair's status as it stands: a pair whose link was removed (unmerged) is "unlinked".
_PAIRS_SQL = """
    SELECT p.pair_id, p.run_id, p.type_a, p.value_a, p.type_b, p.value_b, p.probability,
           CASE WHEN l.removed THEN 'unlinked' ELSE p.status END AS status,
           p.created_at, p.decided_at, p.link_id, p.note
    FROM identity_match_pairs p LEFT JOIN identity_links l USING (link_id)
"""
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%Y%m%d")


class MatchingError(InvalidRequest):
    """Matching cannot run on this data; the message says why and what to do."""


class PairDecided(Conflict):
    """A pair of the review list was decided already."""


@dataclass(frozen=True)
class MatchRun:
    run_id: int
    records: int
    scored_pairs: int
    linked: int
    refused: int
    review: int
    skipped: int  # already one person, rejected before, or already on the review list
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _field_sql(field: str) -> str:
    paths = TRAIT_PATHS[field]
    found = ", ".join(
        [f"json_extract_string(e.traits, '$.{p}')" for p in paths]
        + [f"json_extract_string(e.context, '$.traits.{p}')" for p in paths]
    )
    value = f"nullif(trim(coalesce({found})), '')"
    if field == "birth_date":
        parsed = ", ".join(f"try_strptime(left({value}, 10), '{f}')" for f in _DATE_FORMATS)
        return f"strftime(coalesce({parsed}), '%Y-%m-%d')"
    return value


def person_records_sql(priorities: dict[str, int], persons: bool = False) -> str:
    """One record per person with a name, e-mail or phone: the latest value of each field.

    With ``persons``, only the persons given as the one parameter (a BIGINT list)."""
    ranks = " ".join(f"WHEN '{t}' THEN {int(n)}" for t, n in sorted(priorities.items()))
    fields = ",\n".join(f"{_field_sql(f)} AS {f}" for f in FIELDS)
    latest = ",\n".join(
        f"arg_max({f}, (timestamp, seq)) FILTER (WHERE {f} IS NOT NULL) AS {f}" for f in FIELDS
    )
    only = "AND i.person IN (SELECT unnest(?::BIGINT[]))" if persons else ""
    return f"""
        WITH ev AS (
            SELECT i.person, e.timestamp, e.seq, {fields}
            FROM events e
            JOIN event_identifiers ei ON ei.seq = e.seq AND ei.pos = 0
            JOIN identifiers i ON i.sid = ei.sid
            WHERE (e.traits IS NOT NULL OR e.context LIKE '%"traits"%') {only}
        ),
        latest AS (SELECT person, {latest} FROM ev GROUP BY person),
        named AS (
            SELECT person,
                   arg_min(type || ':' || value, (CASE type {ranks} ELSE 1000 END, sid))
                       AS record_id
            FROM identifiers WHERE NOT detached GROUP BY person
        )
        SELECT n.record_id, l.person, {", ".join(f"l.{f}" for f in FIELDS)}
        FROM latest l JOIN named n USING (person)
        WHERE (l.first_name IS NOT NULL AND l.last_name IS NOT NULL)
           OR l.email IS NOT NULL OR l.phone IS NOT NULL
        ORDER BY n.record_id
    """


class Linker:
    """Runs matching over the persons of a warehouse and keeps the review list."""

    def __init__(
        self,
        resolver: IdentityResolver,
        comparisons: tuple[str, ...] = ("name", "birth_date", "email", "phone", "postcode"),
        threshold: float = 0.95,
        review_from: float = 0.5,
        phone_region: str = "DE",
    ) -> None:
        self.resolver = resolver
        self.warehouse = resolver.warehouse
        self.comparisons = comparisons
        self.threshold = threshold
        self.review_from = review_from
        self.phone_region = phone_region
        # One run or decision at a time: run ids, pair ids and "decided already" stay true.
        self._lock = threading.Lock()

    def _priorities(self) -> dict[str, int]:
        return {t.name: t.priority for t in self.resolver.extractor.types}

    def records(self, persons: list[int] | None = None) -> pa.Table:
        """The records matching compares (all persons, or the ones given)."""
        sql = person_records_sql(self._priorities(), persons is not None)
        return self.warehouse.fetch_arrow(sql, [persons] if persons is not None else None)

    def settings(self) -> Any:
        from touchpoints.identity.matching import MatchSettings

        # Blocking and training rules that do not lean on e-mail: persons sharing an e-mail
        # are one person already, so pairs agreeing on it are too rare to learn from.
        blocking: list[tuple[str, ...]] = [
            ("first_name", "last_name"),
            ("birth_date",),
            ("phone",),
            ("postcode", "last_name"),
            ("postcode", "first_name"),
        ]
        return MatchSettings(
            comparisons=self.comparisons,  # type: ignore[arg-type]
            blocking_rules=tuple(blocking),  # type: ignore[arg-type]
            em_rules=(("birth_date",), ("first_name", "last_name")),  # type: ignore[arg-type]
            prior_rules=(("first_name", "last_name", "birth_date"),),  # type: ignore[arg-type]
            threshold=self.threshold,
            review_band=(min(self.review_from, self.threshold), self.threshold),
            phone_region=self.phone_region,
        )

    def run(self) -> MatchRun:
        """Score every pair of persons the blocking rules pair; link, list or skip each."""
        with self._lock:
            return self._run()

    def _run(self) -> MatchRun:
        from splink.internals.exceptions import SplinkException

        from touchpoints.identity.matching import match_records

        started = time.perf_counter()
        self.resolver.catch_up()
        records = self.records()
        if records.num_rows < 2:
            raise MatchingError(
                f"{records.num_rows} person(s) have a name, e-mail or phone; matching compares "
                "at least two"
            )
        settings = self.settings()
        try:
            # On its own in-memory database: Splink's work tables stay out of the warehouse.
            result = match_records(records.drop_columns(["person"]), settings)
        except ValueError as exc:
            if str(exc).startswith("em_rules["):  # no pairs to learn from
                rule = " and ".join(str(exc).split("[", 2)[2].split("]")[0].split(", "))
                raise MatchingError(
                    f"no two of the {records.num_rows:,} persons with traits share {rule}: "
                    "matching learns what a match looks like from such pairs, so it needs more "
                    "persons (a few hundred or more); nothing was changed"
                ) from None
            raise MatchingError(f"matching could not run on these persons: {exc}") from None
        except SplinkException as exc:  # its message holds SQL, never values
            log.warning("matching failed in Splink: %s", str(exc).splitlines()[0][:300])
            raise MatchingError(
                "matching failed inside Splink (see the server log); the identity map is unchanged"
            ) from None
        run_id = 1 + int(
            self.warehouse.scalar("SELECT coalesce(max(run_id), 0) FROM identity_match_pairs")
        )
        known = self._decided_pairs()
        linked = refused = skipped = 0
        to_link: list[tuple[Identifier, Identifier, float]] = []
        to_review: list[tuple[Identifier, Identifier, float]] = []
        for table, target in ((result.accepted, to_link), (result.review, to_review)):
            for left, right, probability in zip(
                table["record_id_l"].to_pylist(),
                table["record_id_r"].to_pylist(),
                table["match_probability"].to_pylist(),
                strict=True,
            ):
                a, b = _identifier(left), _identifier(right)
                if (left, right) in known or self._one_person(a, b):
                    skipped += 1
                    continue
                target.append((a, b, float(probability)))
        outcomes = self.resolver.add_links([LinkRequest(a, b, "match", p) for a, b, p in to_link])
        rows: list[tuple[Any, ...]] = []
        for (a, b, p), outcome in zip(to_link, outcomes, strict=True):
            status = "refused" if outcome.refused else "linked"
            linked += outcome.refused is None
            refused += outcome.refused is not None
            rows.append((a, b, p, status, outcome.link_id, outcome.refused))
        rows += [(a, b, p, "review", None, None) for a, b, p in to_review]
        self._store(run_id, rows)
        return MatchRun(
            run_id=run_id,
            records=records.num_rows,
            scored_pairs=result.accepted.num_rows + result.review.num_rows,
            linked=linked,
            refused=refused,
            review=len(to_review),
            skipped=skipped,
            seconds=time.perf_counter() - started,
        )

    def _one_person(self, a: Identifier, b: Identifier) -> bool:
        pa_, pb = self.resolver.lookup(a), self.resolver.lookup(b)
        return pa_ is not None and pa_ == pb

    def _decided_pairs(self) -> set[tuple[str, str]]:
        """Pairs on record, never proposed again: waiting for review, decided by a reviewer,
        refused by the merge rules, or linked (a link an operator removed stays removed)."""
        return {
            (f"{ta}:{va}", f"{tb}:{vb}")
            for ta, va, tb, vb in self.warehouse.fetchall(
                "SELECT type_a, value_a, type_b, value_b FROM identity_match_pairs"
            )
        }

    def _store(self, run_id: int, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        first = 1 + int(
            self.warehouse.scalar("SELECT coalesce(max(pair_id), 0) FROM identity_match_pairs")
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        table = pa.table(
            {
                "pair_id": pa.array(range(first, first + len(rows)), pa.int64()),
                "run_id": pa.array([run_id] * len(rows), pa.int64()),
                "type_a": pa.array([r[0].type for r in rows], pa.string()),
                "value_a": pa.array([r[0].value for r in rows], pa.string()),
                "type_b": pa.array([r[1].type for r in rows], pa.string()),
                "value_b": pa.array([r[1].value for r in rows], pa.string()),
                "probability": pa.array([r[2] for r in rows], pa.float64()),
                "status": pa.array([r[3] for r in rows], pa.string()),
                "created_at": pa.array([now] * len(rows), pa.timestamp("us")),
                "decided_at": pa.array(
                    [now if r[3] != "review" else None for r in rows], pa.timestamp("us")
                ),
                "link_id": pa.array([r[4] for r in rows], pa.int64()),
                "note": pa.array([r[5] for r in rows], pa.string()),
            }
        )
        self.warehouse.insert_arrow(
            "identity_match_pairs",
            "pair_id, run_id, type_a, value_a, type_b, value_b, probability, status, "
            "created_at, decided_at, link_id, note",
            table,
        )

    # -- the review list -----------------------------------------------------------------------
    def pairs(
        self, status: str = "review", limit: int = 50, offset: int = 0
    ) -> tuple[int, list[dict[str, Any]]]:
        """Matched pairs with a status (review, linked, refused, accepted, rejected, unlinked),
        most probable first, each with both persons' current records to compare."""
        where = "" if status == "all" else "WHERE status = ?"
        params: list[Any] = [] if status == "all" else [status]
        total = int(self.warehouse.scalar(f"SELECT count(*) FROM ({_PAIRS_SQL}) {where}", params))
        rows = self.warehouse.fetchall(
            f"SELECT * FROM ({_PAIRS_SQL}) {where} "
            "ORDER BY probability DESC, pair_id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return total, self._describe(rows)

    def pair(self, pair_id: int) -> dict[str, Any] | None:
        rows = self.warehouse.fetchall(f"SELECT * FROM ({_PAIRS_SQL}) WHERE pair_id = ?", [pair_id])
        return self._describe(rows)[0] if rows else None

    def _describe(self, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        sides = [(Identifier(r[2], r[3]), Identifier(r[4], r[5])) for r in rows]
        persons = {side: self.resolver.lookup(side) for pair in sides for side in pair}
        wanted = sorted({p for p in persons.values() if p is not None})
        records = {
            row["person"]: {f: row[f] for f in FIELDS}
            for row in (self.records(wanted).to_pylist() if wanted else [])
        }
        out = []
        for row, (a, b) in zip(rows, sides, strict=True):
            out.append(
                {
                    "pair_id": row[0],
                    "run_id": row[1],
                    "probability": row[6],
                    "status": row[7],
                    "created_at": _iso(row[8]),
                    "decided_at": _iso(row[9]),
                    "link_id": row[10],
                    "note": row[11],
                    "a": _side(a, persons[a], records),
                    "b": _side(b, persons[b], records),
                }
            )
        return out

    def decide(self, pair_id: int, accept: bool, note: str = "") -> dict[str, Any]:
        """A reviewer's decision on a pair of the review list."""
        with self._lock:
            return self._decide(pair_id, accept, note)

    def _decide(self, pair_id: int, accept: bool, note: str) -> dict[str, Any]:
        found = self.pair(pair_id)
        if found is None:
            raise NotFound(f"no matched pair {pair_id}")
        if found["status"] != "review":
            raise PairDecided(f"pair {pair_id} was decided already: {found['status']}")
        a = Identifier(found["a"]["identifier"]["type"], found["a"]["identifier"]["value"])
        b = Identifier(found["b"]["identifier"]["type"], found["b"]["identifier"]["value"])
        link_id, status, reason = None, "rejected", note or None
        if accept:
            [outcome] = self.resolver.add_links(
                [LinkRequest(a, b, "review", found["probability"], note)]
            )
            link_id = outcome.link_id
            status = "refused" if outcome.refused else "accepted"
            reason = outcome.refused or note or None
        self.warehouse.run(
            "UPDATE identity_match_pairs SET status = ?, decided_at = ?, link_id = ?, note = ? "
            "WHERE pair_id = ?",
            [status, datetime.now(UTC).replace(tzinfo=None), link_id, reason, pair_id],
        )
        result = self.pair(pair_id)
        assert result is not None
        return result


def _identifier(record_id: str) -> Identifier:
    id_type, _, value = record_id.partition(":")
    return Identifier(id_type, value)


def _side(
    identifier: Identifier, person: int | None, records: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    return {
        "identifier": {"type": identifier.type, "value": identifier.value},
        "person": None if person is None else f"person:{person}",
        "record": records.get(person) if person is not None else None,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat() + "Z"
