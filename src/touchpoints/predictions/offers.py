"""Next best offer: item-to-item recommendations from what persons viewed, configured and
bought.

An item is a product id in an event's properties: the interest events (``Product Viewed``,
``Product Added``, … with ``product_id``) and the purchase event (``Order Completed`` with
``products[].product_id``). Item i leads to item j by the persons who showed interest in (or
bought) i and bought j, normalised as a cosine (``count(i → j) / sqrt(n_i * m_j)``: n_i
persons with i, m_j buyers of j), so a best-seller does not win everywhere. A person's offers
are the items scored highest from everything they showed interest in, without what they
bought already; an item they looked at and did not buy counts too (i → i).

Measured on a time split: learnt from the events before the cutoff, recommended ten items to
each person who bought something new after it, scored by precision@10 and recall@10 beside
a popularity baseline (the ten best-selling items before the cutoff, less the person's own).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from touchpoints.answers import Answer
from touchpoints.errors import Conflict
from touchpoints.predictions.store import property_path
from touchpoints.warehouse import Warehouse

# (person, item, bought, day) of every interest and purchase event up to a day.
_INTERACTIONS_SQL = """
    WITH anchored AS (
        SELECT i.person AS person, e.event AS event, e.properties AS properties,
               CAST(e."timestamp" AS DATE) AS day
        FROM events e
        JOIN event_identifiers a ON a.seq = e.seq AND a.pos = 0
        JOIN identifiers i ON i.sid = a.sid
        WHERE e.type = 'track' AND CAST(e."timestamp" AS DATE) <= ?
    )
    SELECT person, json_extract_string(properties, ?) AS item, false AS bought, day
    FROM anchored WHERE list_contains(?, event)
    UNION ALL
    SELECT person, unnest(json_extract_string(properties, ?)) AS item, true AS bought, day
    FROM anchored WHERE event = ?
"""

TOP = 10


class OffersQuery(BaseModel):
    """Which events show interest in an item and which one buys it, and where the item is."""

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
    score: float = Field(description="Cosine co-occurrence with the person's items, summed")
    because: list[str] = Field(description="The person's items that lead to it, strongest first")


class PersonOffers(Answer):
    person: int
    offers: list[Offer]
    bought: list[str] = Field(description="Items the person bought (never offered)")


class OfferMetrics(Answer):
    precision_at_10: float
    recall_at_10: float


class OfferEvaluation(Answer):
    """Co-occurrence against popularity on a time split."""

    cutoff: date = Field(description="Learnt from the days up to this one")
    until: date
    persons: int = Field(description="Persons who bought a new item after the cutoff")
    items: int = Field(description="Items seen before the cutoff")
    model: OfferMetrics
    baseline: OfferMetrics = Field(description="The ten best sellers before the cutoff")
    beats_baseline: bool


class _Model:
    """Co-occurrence counts learnt from (person, item, bought) rows."""

    def __init__(self, rows: list[tuple[int, str, bool]]) -> None:
        self.interest: dict[int, set[str]] = defaultdict(set)  # interest or purchase
        self.bought: dict[int, set[str]] = defaultdict(set)
        for person, item, bought in rows:
            self.interest[person].add(item)
            if bought:
                self.bought[person].add(item)
        self.persons_with: Counter[str] = Counter(i for s in self.interest.values() for i in s)
        self.buyers_of: Counter[str] = Counter(i for s in self.bought.values() for i in s)
        self.leads: dict[str, Counter[str]] = defaultdict(Counter)
        for person, items in self.interest.items():
            for j in self.bought.get(person, ()):
                for i in items:
                    self.leads[i][j] += 1

    def offers(self, items: set[str], bought: set[str], top: int = TOP) -> list[Offer]:
        scores: dict[str, float] = defaultdict(float)
        reasons: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for i in items:
            for j, count in self.leads.get(i, Counter()).items():
                if j in bought:
                    continue
                weight = count / math.sqrt(self.persons_with[i] * self.buyers_of[j])
                scores[j] += weight
                reasons[j][i] += weight
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return [Offer(item=j, score=round(s, 6), because=_strongest(reasons[j])) for j, s in ranked]

    def popular(self, bought: set[str], top: int = TOP) -> list[str]:
        ranked = sorted(self.buyers_of.items(), key=lambda kv: (-kv[1], kv[0]))
        return [item for item, _ in ranked if item not in bought][:top]


class Offers:
    def __init__(
        self,
        warehouse: Warehouse,
        resolve: Callable[[str], int],
        conversion_event: str,
        today: Callable[[], date],
        withheld: Callable[[], set[int]] = set,
    ) -> None:
        self.warehouse = warehouse
        self.resolve = resolve
        self.conversion_event = conversion_event
        self.today = today
        self.withheld = withheld  # consent: persons never offered anything

    def _rows(self, query: OffersQuery, until: date) -> list[tuple[int, str, bool, date]]:
        rows = self.warehouse.fetchall(
            _INTERACTIONS_SQL,
            [
                until,
                property_path(query.item_property),
                list(query.interest_events),
                property_path(query.products_property) + f"[*].{_key(query.item_property)}",
                query.purchase_event or self.conversion_event,
            ],
        )
        return [(int(p), str(i), bool(b), d) for p, i, b, d in rows if i is not None]

    def for_person(self, key: str, query: OffersQuery | None = None) -> PersonOffers:
        """The person's next best offers (the items they are likeliest to buy next)."""
        query = query or OffersQuery()
        person = self.resolve(key)
        rows = self._rows(query, self.today())
        if not any(bought for _p, _i, bought, _d in rows):
            raise Conflict(
                f"no offers: no {query.purchase_event or self.conversion_event!r} event names "
                f"items in {query.products_property}[].{query.item_property}"
            )
        model = _Model([(p, i, b) for p, i, b, _d in rows])
        bought = model.bought.get(person, set())
        if person in self.withheld():
            return PersonOffers(person=person, offers=[], bought=sorted(bought))
        offers = model.offers(model.interest.get(person, set()), bought)
        return PersonOffers(person=person, offers=offers, bought=sorted(bought))

    def evaluate(self, query: OfferEvaluationQuery) -> OfferEvaluation:
        """Precision@10 and recall@10 on a time split, beside the popularity baseline."""
        until = query.until or self.today()
        cutoff = until - timedelta(days=query.holdout_days)
        rows = self._rows(query, until)
        model = _Model([(p, i, b) for p, i, b, d in rows if d <= cutoff])
        later: dict[int, set[str]] = defaultdict(set)
        for person, item, is_purchase, day in rows:
            if is_purchase and day > cutoff and item not in model.bought.get(person, set()):
                later[person].add(item)
        persons = [p for p in sorted(later) if p in model.interest]
        if not persons or not model.buyers_of:
            raise Conflict(
                f"no offers to measure: nobody with events up to {cutoff.isoformat()} bought a "
                f"new item in the {query.holdout_days} days after (more history, or fewer "
                "holdout_days)"
            )
        found = {"model": [0.0, 0.0], "baseline": [0.0, 0.0]}
        for person in persons:
            bought = model.bought.get(person, set())
            picks = {
                "model": [o.item for o in model.offers(model.interest[person], bought)],
                "baseline": model.popular(bought),
            }
            for name, items in picks.items():
                hits = len(set(items) & later[person])
                found[name][0] += hits / TOP
                found[name][1] += hits / len(later[person])
        n = len(persons)
        metrics = {
            name: OfferMetrics(precision_at_10=p / n, recall_at_10=r / n)
            for name, (p, r) in found.items()
        }
        return OfferEvaluation(
            cutoff=cutoff,
            until=until,
            persons=n,
            items=len(model.persons_with),
            model=metrics["model"],
            baseline=metrics["baseline"],
            beats_baseline=metrics["model"].precision_at_10 > metrics["baseline"].precision_at_10
            and metrics["model"].recall_at_10 > metrics["baseline"].recall_at_10,
        )


def _strongest(weights: dict[str, float], count: int = 3) -> list[str]:
    return [i for i, _ in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:count]]


def _key(name: str) -> str:
    """A JSON path step for a key (quoted: it may hold dots or spaces)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
