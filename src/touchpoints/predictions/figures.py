"""What the faces show of the predictions: the aggregate figures of the models in use (no
person named), one person's predictions together, the customers of highest value, and a
scoring run of both models.

The aggregates come from the model cards (what a model measured on its test or holdout
period) and the stored scores (what the latest scoring found); nothing is computed again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from touchpoints.errors import Conflict, NotFound, TouchpointsError
from touchpoints.predictions.actions import ActionRules, PersonActions, choose, choose_all
from touchpoints.predictions.churn_service import KIND as CHURN_KIND
from touchpoints.predictions.churn_service import ChurnRisk, feature_labels
from touchpoints.predictions.offers import VERSIONS as OFFER_VERSIONS
from touchpoints.predictions.offers import Offers
from touchpoints.predictions.results import (
    ActionScoring,
    CalibrationBin,
    ChurnGroup,
    ClvBucket,
    ClvDistribution,
    FeatureImportance,
    HoldoutRow,
    LiftDecile,
    ModelCard,
    PersonPredictions,
    PredictionsOverview,
    ScoredOffer,
    ScoringRun,
    StoredAction,
    StoredActions,
    StoredProducts,
    TopCustomer,
    TopCustomers,
)
from touchpoints.predictions.service import HOLDOUT_KIND, Predictions, model_card
from touchpoints.predictions.service import KIND as LTV_KIND
from touchpoints.profiles.results import PredictedTrait
from touchpoints.warehouse import utc_now

# The 12-month value's buckets (in the revenue property's currency): round numbers that
# read well on a chart whatever the shop sells.
CLV_EDGES = (0.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0)


class Figures:
    def __init__(
        self,
        ltv: Predictions,
        churn: ChurnRisk,
        offers: Offers,
        rules: ActionRules | None = None,
        rules_version: str | None = None,
    ) -> None:
        self.ltv = ltv
        self.churn = churn
        self.offers = offers
        self.rules = rules  # next_best_actions, checked at start
        self.rules_version = rules_version
        self.next_best = offers.next_best
        # Called after a scoring run changed stored figures (the profiles' cache).
        self.listeners: list[Callable[[], None]] = []

    # -- aggregates --------------------------------------------------------------------------
    def overview(self) -> PredictionsOverview:
        cards = self.ltv.store
        ltv_card = cards.latest_trained(LTV_KIND)
        churn_card = cards.latest_trained(CHURN_KIND)
        holdout_card = cards.latest_trained(HOLDOUT_KIND)
        churn_metrics = (churn_card.metrics or {}) if churn_card else {}
        model = churn_metrics.get("model", {})
        labels = feature_labels(self.churn.model)
        return PredictionsOverview(
            ltv_model=_card(ltv_card),
            churn_model=_card(churn_card),
            holdout_model=_card(holdout_card),
            ltv_persons=cards.scored()[0],
            churn_persons=self.churn.store.scored()[0],
            clv=clv_distribution(cards.clv_values().column("clv").to_numpy()),
            churn_by_stage=self._groups("stage"),
            churn_by_channel=self._groups("channel"),
            calibration=[
                CalibrationBin(low=b["from"], high=b["to"], **_pick(b, CalibrationBin))
                for b in model.get("calibration", [])
            ],
            lift=[LiftDecile(**d) for d in model.get("lift", [])],
            baseline_lift=[
                LiftDecile(**d) for d in churn_metrics.get("baseline", {}).get("lift", [])
            ],
            feature_importance=[
                FeatureImportance(label=labels.get(f["feature"], f["feature"]), **f)
                for f in churn_metrics.get("feature_importance", [])
            ],
            holdout=[
                HoldoutRow(**row)
                for row in ((holdout_card.metrics or {}) if holdout_card else {}).get(
                    "by_frequency", []
                )
            ],
        )

    def _groups(self, column: Any) -> list[ChurnGroup]:
        return [
            ChurnGroup(name=name, persons=n, mean_risk=risk, high_risk=high)
            for name, n, risk, high in self.churn.store.by(column)
        ]

    # -- persons -----------------------------------------------------------------------------
    def person(self, key: str) -> PersonPredictions:
        """The person's lifetime value and churn risk; where either is missing, why (a
        model not trained yet, or the person left out of the latest scoring)."""
        person = self.ltv.resolve(key)
        ltv = churn = None
        ltv_missing = churn_missing = None
        try:
            ltv = self.ltv.ltv(f"person:{person}")
        except (NotFound, Conflict) as exc:
            ltv_missing = str(exc).removeprefix(f"person:{person}: ")
        try:
            churn = self.churn.risk(f"person:{person}")
        except (NotFound, Conflict) as exc:
            churn_missing = str(exc).removeprefix(f"person:{person}: ")
        return PersonPredictions(
            person=person,
            ltv=ltv,
            ltv_missing=ltv_missing,
            churn=churn,
            churn_missing=churn_missing,
            next_best_products=self._products(person),
            next_best_action=self._action(person),
        )

    def _products(self, person: int) -> StoredProducts | None:
        found = self.next_best.products(person)
        if found is None:
            return None
        card = self.ltv.store.card(int(found["model_id"]))
        return StoredProducts(
            model_id=int(found["model_id"]),
            model_version=card.version if card else OFFER_VERSIONS[found["method"]],
            method=found["method"],
            scored_at=found["scored_at"],
            products=[ScoredOffer(**offer) for offer in found["products"]],
        )

    def _action(self, person: int) -> StoredActions | None:
        found = self.next_best.action(person)
        if found is None:
            return None
        return StoredActions(
            rules_version=found["rules_version"],
            scored_at=found["scored_at"],
            action=found["action"],
            actions=[StoredAction(**action) for action in found["actions"]],
        )

    def traits(self, person: int) -> dict[str, PredictedTrait]:
        """The person's predictions as traits of their profile, each with its model and
        time: only those of the latest scoring that included the person."""
        found = self.person(f"person:{person}")
        out: dict[str, PredictedTrait] = {}
        if found.ltv is not None:
            for name in ("predicted_clv_12m", "p_alive"):
                out[name] = PredictedTrait(
                    value=getattr(found.ltv, name),
                    model_id=found.ltv.model_id,
                    model_version=found.ltv.model_version,
                    scored_at=found.ltv.scored_at,
                )
        if found.churn is not None:
            for name in ("churn_risk", "churn_percentile"):
                out[name] = PredictedTrait(
                    value=getattr(found.churn, name),
                    model_id=found.churn.model_id,
                    model_version=found.churn.model_version,
                    scored_at=found.churn.scored_at,
                )
        products = found.next_best_products
        if products is not None:
            out["next_best_products"] = PredictedTrait(
                value=[offer.item for offer in products.products],
                model_id=products.model_id,
                model_version=products.model_version,
                scored_at=products.scored_at,
            )
        action = found.next_best_action
        if action is not None:
            out["next_best_action"] = PredictedTrait(
                value=action.action,
                model_id=None,
                model_version=action.rules_version,
                scored_at=action.scored_at,
            )
        return out

    def actions(self, key: str, rules: ActionRules | None) -> PersonActions:
        """The next best actions for the person: the rules that hold for their latest
        figures (409 without rules: the setting next_best_actions names the file)."""
        if rules is None:
            raise Conflict(
                "no next best action rules: set next_best_actions to a YAML file of rules "
                "(docs/predictions.md#next-best-action)"
            )
        found = self.person(key)
        figures: dict[str, Any] = {}
        if found.ltv is not None:
            figures |= found.ltv.model_dump()
        if found.churn is not None:
            figures |= {
                "churn_risk": found.churn.churn_risk,
                "churn_percentile": found.churn.churn_percentile,
            }
            scored = self.churn.store.score(found.person) or {}
            figures |= {"stage": scored.get("stage"), "channel": scored.get("channel")}
        if found.next_best_products is not None and found.next_best_products.products:
            figures["top_offer"] = found.next_best_products.products[0].item
        return choose(rules, found.person, figures)

    def top_customers(self, limit: int) -> TopCustomers:
        """The persons of highest predicted 12-month value (409 before any model)."""
        if self.ltv.store.latest_trained(LTV_KIND) is None:
            self.ltv.model()  # raises the 409 that says what to run
        return TopCustomers(customers=[TopCustomer(**row) for row in self.ltv.store.top(limit)])

    # -- scoring -----------------------------------------------------------------------------
    def score(self) -> ScoringRun:
        """Score with every model in use (lifetime value, churn risk, next best products),
        then choose everyone's next best action from what they were given; one that cannot
        (not trained yet, nobody to score, no items) says why and leaves its previous
        scores as they were. None of the models: 409."""
        ltv = churn = offers = actions = None
        ltv_error = churn_error = offers_error = actions_error = None
        try:
            ltv = self.ltv.score()
        except TouchpointsError as exc:
            ltv_error = str(exc)
        try:
            churn = self.churn.score()
        except TouchpointsError as exc:
            churn_error = str(exc)
        try:
            offers = self.offers.score()
        except TouchpointsError as exc:
            offers_error = str(exc)
        if ltv is None and churn is None and offers is None:
            raise Conflict(f"nothing scored: {ltv_error}; {churn_error}; {offers_error}")
        if self.rules is None:
            actions_error = "no next best action rules (the setting next_best_actions)"
        else:
            actions = self.score_actions(self.rules)
        for listener in self.listeners:
            listener()
        return ScoringRun(
            ltv=ltv,
            ltv_error=ltv_error,
            churn=churn,
            churn_error=churn_error,
            offers=offers,
            offers_error=offers_error,
            actions=actions,
            actions_error=actions_error,
        )

    def score_actions(self, rules: ActionRules) -> ActionScoring:
        """Everyone's next best actions from their stored figures (the rules that hold,
        highest priority first); they replace the previous ones at once."""
        version = self.rules_version or "rules"
        persons, found = choose_all(rules, self.next_best.figures())
        scored_at = utc_now()
        count = len(persons)
        self.next_best.replace_actions(
            pa.table(
                {
                    "person": pa.array(persons, pa.int64()),
                    "scored_at": pa.array([scored_at] * count, pa.timestamp("us")),
                    "rules_version": pa.array([version] * count, pa.string()),
                    "action": pa.array([actions[0]["name"] for actions in found], pa.string()),
                    "actions": pa.array(
                        [orjson.dumps(actions).decode() for actions in found], pa.string()
                    ),
                }
            )
        )
        return ActionScoring(rules_version=version, scored_at=scored_at, persons=count)


def clv_distribution(values: np.ndarray) -> ClvDistribution | None:
    """The distribution of ``values`` (None: nobody scored)."""
    if not values.size:
        return None
    values = np.sort(values.astype(np.float64))[::-1]
    total = float(values.sum())
    top = values[: max(1, int(np.ceil(values.size / 10)))]
    edges = np.array(CLV_EDGES)
    ids = np.searchsorted(edges, values, side="right") - 1
    buckets = []
    for i, low in enumerate(CLV_EDGES):
        chosen = ids == i if i else ids <= 0
        if not np.any(chosen):
            continue
        high = CLV_EDGES[i + 1] if i + 1 < len(CLV_EDGES) else None
        buckets.append(
            ClvBucket(
                low=low, high=high, persons=int(chosen.sum()), value=float(values[chosen].sum())
            )
        )
    return ClvDistribution(
        persons=int(values.size),
        total=total,
        mean=float(values.mean()),
        median=float(np.median(values)),
        top_decile_share=float(top.sum() / total) if total > 0 else 0.0,
        buckets=buckets,
    )


def _card(row: Any) -> ModelCard | None:
    return None if row is None else model_card(row)


def _pick(found: dict[str, Any], answer: type[CalibrationBin]) -> dict[str, Any]:
    return {k: v for k, v in found.items() if k in answer.model_fields and k not in ("low", "high")}
