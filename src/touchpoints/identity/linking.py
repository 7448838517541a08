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

import json
import logging
import threading
import time
from typing import Any

import pyarrow as pa

from touchpoints.errors import Conflict, InvalidRequest, NotFound
from touchpoints.identity.identifiers import Identifier
from touchpoints.identity.resolver import IdentityResolver, LinkRequest
from touchpoints.identity.results import (
    Evidence,
    IdentifierRef,
    MatchDiagnostics,
    MatchedPair,
    MatchRecord,
    MatchRun,
    PairPage,
    PairSide,
    ScoreBand,
)
from touchpoints.identity.store.matching import (
    FIELDS,
    TRAIT_PATHS,
    MatchStore,
    NewPair,
    StoredPair,
)

__all__ = ["FIELDS", "TRAIT_PATHS", "Linker", "MatchRun", "MatchingError"]

log = logging.getLogger("touchpoints.identity")


class MatchingError(InvalidRequest):
    """Matching cannot run on this data; the message says why and what to do."""


class PairDecided(Conflict):
    """A pair of the review list was decided already."""


class Linker:
    """Runs matching over the persons of a warehouse and keeps the review list."""

    def __init__(
        self,
        resolver: IdentityResolver,
        comparisons: tuple[str, ...] = ("name", "birth_date", "email", "phone", "postcode"),
        threshold: float = 0.95,
        review_from: float = 0.5,
        phone_region: str = "DE",
        prior: float | None = None,
        prior_rules: tuple[tuple[str, ...], ...] | None = None,
    ) -> None:
        self.resolver = resolver
        self.warehouse = resolver.warehouse
        self.store = MatchStore(resolver.warehouse)
        self.comparisons = comparisons
        self.threshold = threshold
        self.review_from = review_from
        self.phone_region = phone_region
        self.prior = prior
        self.prior_rules = prior_rules
        # One run or decision at a time: run ids, pair ids and "decided already" stay true.
        self._lock = threading.Lock()

    def _priorities(self) -> dict[str, int]:
        return {t.name: t.priority for t in self.resolver.extractor.types}

    def records(self, persons: list[int] | None = None) -> pa.Table:
        """The records matching compares (all persons, or the ones given)."""
        return self.store.records(self._priorities(), persons)

    def settings(self, comparisons: tuple[str, ...] | None = None) -> Any:
        """The matching settings of a run (``comparisons``: instead of the configured ones)."""
        return linker_settings(
            comparisons or self.comparisons,
            self.threshold,
            self.review_from,
            self.phone_region,
            self.prior,
            self.prior_rules,
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
                f"{records.num_rows} person(s) have an e-mail, a phone, or two of first name, "
                "last name and birth date; matching compares at least two"
            )
        comparisons, left_out = self._comparisons_with_data(records)
        settings = self.settings(comparisons)
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
        run_id = self.store.next_run_id()
        # Pairs on record are never proposed again: waiting for review, decided by a reviewer,
        # refused by the merge rules, or linked (a link an operator removed stays removed).
        known = self.store.known_pairs()
        linked = refused = skipped = 0
        to_link: list[tuple[Identifier, Identifier, float, str | None]] = []
        to_review: list[tuple[Identifier, Identifier, float, str | None]] = []
        for table, target in ((result.accepted, to_link), (result.review, to_review)):
            for left, right, probability, evidence in zip(
                table["record_id_l"].to_pylist(),
                table["record_id_r"].to_pylist(),
                table["match_probability"].to_pylist(),
                table["evidence"].to_pylist(),
                strict=True,
            ):
                a, b = _identifier(left), _identifier(right)
                if (left, right) in known or self._one_person(a, b):
                    skipped += 1
                    continue
                target.append((a, b, float(probability), evidence))
        # The merge log names each link's evidence: which fields agreed, at which level.
        outcomes = self.resolver.add_links(
            [LinkRequest(a, b, "match", p, evidence_text(e)) for a, b, p, e in to_link]
        )
        rows: list[NewPair] = []
        for (a, b, p, e), outcome in zip(to_link, outcomes, strict=True):
            status = "refused" if outcome.refused else "linked"
            linked += outcome.refused is None
            refused += outcome.refused is not None
            rows.append(NewPair(a, b, p, status, outcome.link_id, outcome.refused, e))
        rows += [NewPair(a, b, p, "review", None, None, e) for a, b, p, e in to_review]
        self.store.add_pairs(run_id, rows)
        return MatchRun(
            run_id=run_id,
            records=records.num_rows,
            scored_pairs=result.accepted.num_rows + result.review.num_rows,
            linked=linked,
            refused=refused,
            review=len(to_review),
            skipped=skipped,
            seconds=round(time.perf_counter() - started, 3),
            diagnostics=_diagnostics(result.diagnostic, comparisons, left_out),
        )

    def _comparisons_with_data(self, records: pa.Table) -> tuple[tuple[str, ...], list[str]]:
        """The configured comparisons some person has a value for, and the ones left out.

        A CRM export with names and birth dates only has no e-mail or phone to compare; a
        comparison on a field nobody has teaches the model nothing and only slows it, so it is
        left out, and the run's diagnostics say so."""
        from touchpoints.identity.matching import COMPARISON_COLUMNS

        def has_data(column: str) -> bool:
            return bool(records.column(column).null_count < records.num_rows)

        kept = tuple(
            c for c in self.comparisons if all(has_data(col) for col in COMPARISON_COLUMNS[c])
        )
        left_out = [c for c in self.comparisons if c not in kept]
        if not kept:
            raise MatchingError(
                f"no person has a value for any compared field ({', '.join(left_out)}); "
                "import traits such as first_name, last_name and birthday, or change "
                "match_comparisons"
            )
        return kept, left_out

    def _one_person(self, a: Identifier, b: Identifier) -> bool:
        pa_, pb = self.resolver.lookup(a), self.resolver.lookup(b)
        return pa_ is not None and pa_ == pb

    # -- the review list -----------------------------------------------------------------------
    def pairs(self, status: str = "review", limit: int = 50, offset: int = 0) -> PairPage:
        """Matched pairs with a status (review, linked, refused, accepted, rejected, unlinked),
        most probable first, each with both persons' current records to compare."""
        total, rows = self.store.pairs(status, limit, offset)
        return PairPage(count=total, pairs=self._describe(rows))

    def pair(self, pair_id: int) -> MatchedPair:
        found = self.store.pair(pair_id)
        if found is None:
            raise NotFound(f"no matched pair {pair_id}")
        return self._describe([found])[0]

    def _describe(self, rows: list[StoredPair]) -> list[MatchedPair]:
        persons = {side: self.resolver.lookup(side) for row in rows for side in (row.a, row.b)}
        wanted = sorted({p for p in persons.values() if p is not None})
        records = {
            row["person"]: MatchRecord(**{f: row[f] for f in FIELDS})
            for row in (self.records(wanted).to_pylist() if wanted else [])
        }
        return [
            MatchedPair(
                pair_id=row.pair_id,
                run_id=row.run_id,
                probability=row.probability,
                status=row.status,
                created_at=row.created_at,
                decided_at=row.decided_at,
                link_id=row.link_id,
                note=row.note,
                a=_side(row.a, persons[row.a], records),
                b=_side(row.b, persons[row.b], records),
                evidence=[Evidence(**item) for item in json.loads(row.evidence or "[]")],
            )
            for row in rows
        ]

    def decide(self, pair_id: int, accept: bool, note: str = "") -> MatchedPair:
        """A reviewer's decision on a pair of the review list."""
        with self._lock:
            return self._decide(pair_id, accept, note)

    def _decide(self, pair_id: int, accept: bool, note: str) -> MatchedPair:
        found = self.pair(pair_id)
        if found.status != "review":
            raise PairDecided(f"pair {pair_id} was decided already: {found.status}")
        a = Identifier(found.a.identifier.type, found.a.identifier.value)
        b = Identifier(found.b.identifier.type, found.b.identifier.value)
        link_id, status, reason = None, "rejected", note or None
        if accept:
            evidence = evidence_text([e.model_dump() for e in found.evidence])
            why = "; ".join(filter(None, (note, evidence)))
            [outcome] = self.resolver.add_links(
                [LinkRequest(a, b, "review", found.probability, why)]
            )
            link_id = outcome.link_id
            status = "refused" if outcome.refused else "accepted"
            reason = outcome.refused or note or None
        self.store.decide(pair_id, status, link_id, reason)
        return self.pair(pair_id)


def evidence_text(evidence: str | list[dict[str, Any]] | None) -> str:
    """A pair's evidence in one line, for the merge log: each comparison's level and weight,
    e.g. "last_name: Exact match on last name (+4.5), birth_date: … ; prior -13.3"."""
    items = json.loads(evidence) if isinstance(evidence, str) else (evidence or [])
    parts = [
        f"{i['comparison']}: {i['level']} ({i['weight']:+.1f})"
        for i in items
        if i["comparison"] != "prior"
    ]
    prior = [f"prior {i['weight']:+.1f}" for i in items if i["comparison"] == "prior"]
    return ", ".join(parts) + (f"; {prior[0]}" if prior and parts else "")


def linker_settings(
    comparisons: tuple[str, ...],
    threshold: float,
    review_from: float,
    phone_region: str,
    prior: float | None = None,
    prior_rules: tuple[tuple[str, ...], ...] | None = None,
) -> Any:
    """The settings ``identity match`` runs with (a ``MatchSettings``).

    Blocking and training rules do not lean on e-mail: persons sharing an e-mail are one
    person already, so pairs agreeing on it are too rare to learn from. The prior comes from
    rules that tolerate an error in any one of name and birth date (two of the three fields
    agree). EM runs one session per field, blocked on that field alone, so each comparison is
    trained on the true pairs whose error lies elsewhere; blocking on two fields at once
    would train the third only on duplicates that have their error in it (issue 16).
    """
    from touchpoints.identity.matching import COMPARISON_COLUMNS, MatchSettings

    compared = {column for c in comparisons for column in COMPARISON_COLUMNS[c]}
    blocking = [
        rule
        for rule in (
            ("first_name", "last_name"),
            ("birth_date",),
            ("phone",),
            ("postcode", "last_name"),
            ("postcode", "first_name"),
        )
        if set(rule) <= compared
    ]
    return MatchSettings(
        comparisons=comparisons,
        blocking_rules=tuple(blocking),
        em_rules=(("birth_date",), ("first_name",), ("last_name",)),
        em_max_pairs=2_000_000,
        name_comparison="split",
        date_transposed=True,
        prior=prior,
        prior_rules=prior_rules
        or (
            ("first_name", "last_name"),
            ("first_name", "birth_date"),
            ("last_name", "birth_date"),
        ),
        prior_recall=0.9,
        threshold=threshold,
        review_band=(min(review_from, threshold), threshold),
        phone_region=phone_region,
    )


def _diagnostics(found: Any, comparisons: tuple[str, ...], left_out: list[str]) -> Any:
    if found is None:
        return None
    warnings = list(found.warnings)
    if left_out:
        warnings.append(
            f"left out {', '.join(left_out)}: no person has a value for them (match_comparisons)"
        )
    return MatchDiagnostics(
        pairs_compared=found.pairs_compared,
        prior=found.prior,
        prior_source=found.prior_source,
        prior_pairs=found.prior_pairs,
        comparisons=list(comparisons),
        left_out=left_out,
        bands=[ScoreBand(low=low, high=high, pairs=n) for low, high, n in found.bands],
        warnings=warnings,
    )


def _identifier(record_id: str) -> Identifier:
    id_type, _, value = record_id.partition(":")
    return Identifier(id_type, value)


def _side(identifier: Identifier, person: int | None, records: dict[int, MatchRecord]) -> PairSide:
    return PairSide(
        identifier=IdentifierRef(type=identifier.type, value=identifier.value),
        person=None if person is None else f"person:{person}",
        record=records.get(person) if person is not None else None,
    )
