"""Next best offer: the items a person is likeliest to buy next, from what persons viewed,
configured and bought.

An item is a product id in an event's properties: the interest events (``Product Viewed``,
``Product Added``, … with ``product_id``) and the purchase event (``Order Completed`` with
``products[].product_id``). Two methods choose (:mod:`touchpoints.predictions.recommend`):
item-to-item **co-occurrence** and implicit-feedback **matrix factorisation**; the setting
``predictions_offers_method`` says which one scoring and a person's offers use. Neither
offers an item the person bought; an item they looked at and did not buy may be offered.

Measured on a time split: learnt from the events up to the cutoff, ten items recommended to
each person who bought something new after it, scored by precision@10 and recall@10, for
both methods beside a popularity baseline (the ten best-selling items before the cutoff,
less the person's own).

Scoring fits the method in use on everything up to today, keeps the fit as a model card
(kind ``offers``) and replaces every person's stored offers (``next_best_products``) at once;
persons whose consent does not allow predictions get none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from touchpoints.answers import Answer
from touchpoints.errors import Conflict
from touchpoints.predictions import recommend
from touchpoints.predictions.consent import EVERYONE, Allowed
from touchpoints.predictions.recommend import METHODS, TOP, Interactions, Method
from touchpoints.predictions.results import OfferScoring
from touchpoints.predictions.store import NextBestStore, PredictionStore
from touchpoints.warehouse import Warehouse, utc_now

KIND = "offers"
VERSIONS: dict[str, str] = {
    "co-occurrence": "offers/co-occurrence/1",
    "factorisation": "offers/implicit-als/1",
}


class OffersQuery(BaseModel):
    """Which events show interest in an item and which one buys it, where the item is, and
    which method chooses."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    interest_events: list[Annotated[str, Field(min_length=1)]] = Field(
        default=["Product Viewed", "Product Added", "Product Clicked"],
        description="Events that show interest in an item",
    )
    item_property: str = Field(
        default="product_id", pattern=r'^[^"\\]+$', description="The item in those events"
    )
    purchase_event: str | None = Field(
        default=None, min_length=1, description="unset: the setting predictions_conversion_event"
    )
    products_property: str = Field(
        default="products",
        pattern=r'^[^"\\]+$',
        description="The list of items in a purchase, each with the item property",
    )
    method: Method | None = Field(
        default=None,
        description="co-occurrence or factorisation; unset: the setting predictions_offers_method",
    )


class OfferEvaluationQuery(OffersQuery):
    until: date | None = Field(default=None, description="Last day of the data; unset: today")
    holdout_days: int = Field(default=90, ge=7, le=730, description="Days after the cutoff")

    @model_validator(mode="after")
    def _room(self) -> OfferEvaluationQuery:
        if self.until is not None and self.until.toordinal() <= self.holdout_days:
            raise ValueError(
                f"until: {self.until.isoformat()} leaves no room for {self.holdout_days} "
                "days before it; give a later day"
            )
        return self


class Offer(Answer):
    item: str
    score: float = Field(
        description="co-occurrence: the cosines from the person's items, added up; "
        "factorisation: the person's factors times the item's"
    )
    because: list[str] = Field(
        description="The person's items that lead to it (co-occurrence) or are most like it "
        "(factorisation), strongest first"
    )


class PersonOffers(Answer):
    person: int
    method: Method
    offers: list[Offer]
    bought: list[str] = Field(description="Items the person bought (never offered)")


class OfferMetrics(Answer):
    precision_at_10: float
    recall_at_10: float


class MethodMetrics(OfferMetrics):
    method: str = Field(description="co-occurrence, factorisation or popularity")
    beats_baseline: bool = Field(description="Better than popularity at both (popularity: no)")


class OfferEvaluation(Answer):
    """Every method against popularity on a time split."""

    cutoff: date = Field(description="Learnt from the days up to this one")
    until: date
    persons: int = Field(description="Persons who bought a new item after the cutoff")
    items: int = Field(description="Items seen before the cutoff")
    method: Method = Field(description="The method in use (the setting, or the query's)")
    model: OfferMetrics = Field(description="The method in use")
    baseline: OfferMetrics = Field(description="The ten best sellers before the cutoff")
    beats_baseline: bool = Field(description="The method in use beats popularity at both")
    methods: list[MethodMetrics] = Field(
        description="co-occurrence, factorisation, popularity: each on the same persons"
    )


class _Fitted:
    """One method fitted on the interactions: scores for blocks of persons."""

    def __init__(self, x: Interactions, method: Method | str) -> None:
        self.x = x
        self.method = method
        self.weights = recommend.co_occurrence(x) if method == "co-occurrence" else None
        self.factors = recommend.factorise(x) if method == "factorisation" else None
        self.popular = recommend.popularity(x) if method == "popularity" else None

    def scores(self, rows: slice | np.ndarray) -> np.ndarray:
        if self.weights is not None:
            return recommend.co_occurrence_scores(self.x, self.weights, rows)
        if self.factors is not None:
            return recommend.factorisation_scores(self.factors, rows)
        assert self.popular is not None
        count = len(range(*rows.indices(self.x.shape[0]))) if isinstance(rows, slice) else rows.size
        return np.tile(self.popular, (count, 1))

    def top(self, rows: slice | np.ndarray) -> recommend.Chosen:
        """The persons' best items, flat (see :class:`recommend.Chosen`). Co-occurrence
        offers only items their items lead to; factorisation scores an item a person has
        nothing to do with too (that is its point): its offers need not be positive."""
        bought = self.x.bought[rows]
        if self.weights is not None:
            seen = self.x.interest[rows].copy()
            seen.data[:] = 1.0
            return recommend.top_sparse(seen @ self.weights, bought, TOP)
        chosen = recommend.top_dense(self.scores(rows), bought, TOP)
        if self.popular is not None:  # the best sellers: only items someone bought
            keep = chosen.score > 0
            return recommend.Chosen(chosen.row[keep], chosen.column[keep], chosen.score[keep])
        return chosen

    def because(self, row: int, column: int, count: int = 3) -> list[str]:
        """The person's items that explain the offer of ``column``, strongest first."""
        mine = self.x.interest[row].indices
        if self.weights is not None:
            weights = np.asarray(self.weights[mine, column].todense()).ravel()
        elif self.factors is not None:
            items = self.factors.items
            norms = np.linalg.norm(items, axis=1) + 1e-12
            weights = (items[mine] @ items[column]) / (norms[mine] * norms[column])
        else:
            return []
        ranked = sorted(
            ((-w, self.x.items[i]) for w, i in zip(weights, mine, strict=True) if w > 0)
        )
        return [item for _, item in ranked[:count]]


class Offers:
    def __init__(
        self,
        warehouse: Warehouse,
        resolve: Callable[[str], int],
        conversion_event: str,
        method: Method,
        today: Callable[[], date],
        allowed: Callable[[], Allowed] = lambda: EVERYONE,
    ) -> None:
        self.store = PredictionStore(warehouse)
        self.next_best = NextBestStore(warehouse)
        self.resolve = resolve
        self.conversion_event = conversion_event
        self.method = method  # the setting predictions_offers_method
        self.today = today
        self.allowed = allowed  # consent: persons given offers

    def _table(self, query: OffersQuery, until: date) -> pa.Table:
        table = self.store.interactions(
            until,
            list(query.interest_events),
            query.item_property,
            query.purchase_event or self.conversion_event,
            query.products_property,
        )
        return table.filter(pc.is_valid(table.column("item")))

    def _checked(self, query: OffersQuery, table: pa.Table) -> None:
        if not pc.any(table.column("bought")).as_py():
            raise Conflict(
                f"no offers: no {query.purchase_event or self.conversion_event!r} event names "
                f"items in {query.products_property}[].{query.item_property}"
            )

    def for_person(self, key: str, query: OffersQuery | None = None) -> PersonOffers:
        """The person's next best offers (the items they are likeliest to buy next), by the
        method of the query or the setting, fitted on everything up to today."""
        query = query or OffersQuery()
        method = query.method or self.method
        person = self.resolve(key)
        table = self._table(query, self.today())
        self._checked(query, table)
        x = recommend.interactions(table)
        row = x.row(person)
        bought = [] if row is None else [x.items[j] for j in x.bought[row].indices]
        if row is None or person not in self.allowed():
            return PersonOffers(person=person, method=method, offers=[], bought=sorted(bought))
        fitted = _Fitted(x, method)
        scores = fitted.scores(np.array([row]))[0]
        # One person: a full ranking, ties by the item's name.
        scores[x.bought[row].indices] = -np.inf
        if method != "factorisation":
            scores[scores <= 0] = -np.inf
        ranked = [
            j for j in np.lexsort((np.arange(scores.size), -scores)) if np.isfinite(scores[j])
        ]
        offers = [
            Offer(item=x.items[j], score=round(float(scores[j]), 6), because=fitted.because(row, j))
            for j in ranked[:TOP]
        ]
        return PersonOffers(person=person, method=method, offers=offers, bought=sorted(bought))

    def evaluate(self, query: OfferEvaluationQuery) -> OfferEvaluation:
        """Precision@10 and recall@10 of every method on a time split, beside popularity."""
        until = query.until or self.today()
        cutoff = until - timedelta(days=query.holdout_days)
        table = self._table(query, until)
        days = table.column("day")
        before = table.filter(pc.less_equal(days, pa.scalar(cutoff, pa.date32())))
        x = recommend.interactions(before)
        later = _later(x, table.filter(pc.greater(days, pa.scalar(cutoff, pa.date32()))))
        rows = np.array(sorted(later), dtype=np.int64)
        if not rows.size or not x.bought.nnz:
            raise Conflict(
                f"no offers to measure: nobody with events up to {cutoff.isoformat()} bought a "
                f"new item in the {query.holdout_days} days after (more history, or fewer "
                "holdout_days)"
            )
        measured = {
            name: _measure(_Fitted(x, name), rows, later) for name in (*METHODS, "popularity")
        }
        baseline = measured["popularity"]
        methods = [
            MethodMetrics(
                method=name,
                precision_at_10=p,
                recall_at_10=r,
                beats_baseline=name != "popularity" and p > baseline[0] and r > baseline[1],
            )
            for name, (p, r) in measured.items()
        ]
        method = query.method or self.method
        used = next(m for m in methods if m.method == method)
        return OfferEvaluation(
            cutoff=cutoff,
            until=until,
            persons=int(rows.size),
            items=len(x.items),
            method=method,
            model=OfferMetrics(
                precision_at_10=used.precision_at_10, recall_at_10=used.recall_at_10
            ),
            baseline=OfferMetrics(precision_at_10=baseline[0], recall_at_10=baseline[1]),
            beats_baseline=used.beats_baseline,
            methods=methods,
        )

    def score(self, query: OffersQuery | None = None) -> OfferScoring:
        """Everyone allowed gets their ten best items by the method in use, fitted on
        everything up to today; the fit is kept as a card, the offers replace the previous
        ones at once. Nothing to learn from: 409, and the previous offers stay."""
        query = query or OffersQuery()
        method = query.method or self.method
        today = self.today()
        table = self._table(query, today)
        self._checked(query, table)
        x = recommend.interactions(table)
        fitted = _Fitted(x, method)
        allowed = np.flatnonzero(self.allowed().mask(x.persons))
        items = pa.array(x.items, pa.string())
        parts: list[pa.Table] = []
        for block in recommend.blocks(x):
            rows = allowed[(allowed >= block.start) & (allowed < block.stop)]
            if not rows.size:
                continue
            chosen = fitted.top(rows)
            parts.append(
                pa.table(
                    {
                        "person": pa.array(x.persons[rows][chosen.row], pa.int64()),
                        "item": items.take(pa.array(chosen.column)),
                        "score": pa.array(np.round(chosen.score, 6), pa.float64()),
                    }
                )
            )
        offers = pa.concat_tables(parts) if parts else _NO_OFFERS
        offered = len(pc.unique(offers.column("person")))
        scored_at = utc_now()
        card_id = self._card(query, method, today, x, offered)
        self.next_best.replace_products(offers, card_id, scored_at, method)
        return OfferScoring(
            model_id=card_id,
            method=method,
            scored_at=scored_at,
            persons=offered,
            items=len(x.items),
        )

    def _card(
        self, query: OffersQuery, method: Method, today: date, x: Interactions, offered: int
    ) -> int:
        parameters: dict[str, Any] = {}
        if method == "factorisation":
            parameters = {
                "factorisation": {
                    "factors": recommend.FACTORS,
                    "iterations": recommend.ITERATIONS,
                    "regularization": recommend.REGULARIZATION,
                    "alpha": recommend.ALPHA,
                    "seed": recommend.SEED,
                }
            }
        return self.store.add_card(
            kind=KIND,
            version=VERSIONS[method],
            trained_at=utc_now(),
            data_from=None,
            data_until=today,
            period="days",
            features={
                "method": method,
                "interest_events": list(query.interest_events),
                "item_property": query.item_property,
                "purchase_event": query.purchase_event or self.conversion_event,
                "products_property": query.products_property,
            },
            parameters=parameters,
            metrics={
                "persons": x.shape[0],
                "items": x.shape[1],
                "interactions": int(x.interest.nnz),
                "purchases": int(x.bought.nnz),
                "offered": offered,
            },
            status="trained",
            message=None,
        )


def _later(x: Interactions, after: pa.Table) -> dict[int, set[str]]:
    """Per row of ``x``: the items the person bought after the cutoff that they had not
    bought before (persons unknown before the cutoff are left out: nothing to go on)."""
    later: dict[int, set[str]] = defaultdict(set)
    index = {item: j for j, item in enumerate(x.items)}
    bought = after.filter(after.column("bought"))
    for person, item in zip(
        bought.column("person").to_pylist(), bought.column("item").to_pylist(), strict=True
    ):
        row = x.row(int(person))
        if row is None:
            continue
        column = index.get(item)
        if column is not None and x.bought[row, column]:
            continue
        later[row].add(item)
    return later


def _measure(fitted: _Fitted, rows: np.ndarray, later: dict[int, set[str]]) -> tuple[float, float]:
    """Mean precision@10 and recall@10 over ``rows``."""
    precision = recall = 0.0
    x = fitted.x
    for block in recommend.blocks(x):
        chosen = rows[(rows >= block.start) & (rows < block.stop)]
        if not chosen.size:
            continue
        picks = fitted.top(chosen).per_row(chosen.size)
        for row, picked in zip(chosen, picks, strict=True):
            hits = len({x.items[j] for j in picked} & later[int(row)])
            precision += hits / TOP
            recall += hits / len(later[int(row)])
    return precision / rows.size, recall / rows.size


_NO_OFFERS = pa.table(
    {
        "person": pa.array([], pa.int64()),
        "item": pa.array([], pa.string()),
        "score": pa.array([], pa.float64()),
    }
)
