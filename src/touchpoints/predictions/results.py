"""The predictions' answers: model cards, a person's lifetime value, a scoring run, and the
calibration/holdout comparison (see :mod:`touchpoints.answers`)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field

from touchpoints.answers import Answer
from touchpoints.times import UtcTime

Period = Literal["days", "weeks"]


class ModelCard(Answer):
    """One training run: what it learnt from, with which settings, what it found."""

    id: int
    kind: str = Field(
        description="ltv: lifetime value; ltv_holdout: a holdout evaluation; churn: churn risk"
    )
    version: str = Field(description="The models and the version of their code")
    trained_at: UtcTime
    data_from: date | None = Field(
        description="First day of purchases (UTC); null: the first (churn: always)"
    )
    data_until: date = Field(description="Last day of purchases and end of observation (UTC)")
    period: Period = Field(description="The time unit of alpha, frequency and recency")
    features: dict[str, Any] = Field(
        description="The conversion event and revenue property used, and the inputs per person"
    )
    parameters: dict[str, dict[str, float]] | None = Field(
        description="bgnbd: r, alpha, a, b; gamma_gamma: p, q, v"
    )
    metrics: dict[str, Any] | None = Field(
        description="Customers, repeat buyers, log-likelihoods, and what else the run measured"
    )
    status: Literal["trained", "failed"]
    message: str | None = Field(description="Why a run failed")


class ModelCards(Answer):
    cards: list[ModelCard]


class PersonLtv(Answer):
    """A person's lifetime-value figures from the latest scoring: the traits
    ``p_alive``, ``expected_purchases_*``, ``expected_order_value``, ``predicted_clv_12m``."""

    person: int
    model_id: int = Field(description="The model card that made them")
    model_version: str
    scored_at: UtcTime
    period: Period
    frequency: int = Field(description="Repeat purchase days up to scoring")
    recency: float = Field(description="First to last purchase, in the period unit")
    age: float = Field(description="First purchase to scoring, in the period unit")
    average_order_value: float | None = Field(description="Of the repeat purchases")
    p_alive: float = Field(description="Probability the person still buys (BG/NBD)")
    expected_purchases_30d: float
    expected_purchases_90d: float
    expected_purchases_365d: float
    expected_order_value: float | None = Field(description="Gamma-Gamma's expected spend")
    predicted_clv_12m: float | None = Field(
        description="Discounted value of the next 12 months' purchases"
    )


class Scoring(Answer):
    """A scoring run: every person with a purchase got new figures."""

    model_id: int
    scored_at: UtcTime
    persons: int
    expected_purchases_365d: float = Field(description="Over all persons")
    predicted_clv_12m: float = Field(description="Over all persons")
    mean_p_alive: float
    discount_rate: float = Field(
        description="Monthly, of predicted_clv_12m: the setting when the scores were made"
    )


class HoldoutRow(Answer):
    frequency: str = Field(description="Repeat purchases in the calibration period (7+: more)")
    customers: int
    actual: float = Field(description="Mean purchases in the holdout period")
    predicted: float = Field(description="Mean expected purchases in the holdout period")


class HoldoutEvaluation(Answer):
    """Predicted against actual purchases in a holdout period, by calibration frequency
    (Fader, Hardie & Lee 2005, figure 4)."""

    model: ModelCard = Field(description="The model fitted on the calibration period")
    holdout_from: date
    holdout_until: date
    holdout_length: float = Field(description="In the period unit")
    customers: int
    rows: list[HoldoutRow]
    actual_total: int
    predicted_total: float
    mean_absolute_error: float = Field(description="Per customer, in purchases")


class ChurnContribution(Answer):
    """One feature's push on a person's churn risk: the face words it ("3 support contacts
    in 90 days: +12 points") from the feature's name, its value and the points."""

    feature: str = Field(description="The feature (see docs/predictions.md#churn-risk)")
    label: str = Field(description="What the feature is, in English")
    value: float | None = Field(description="The person's value; null: unknown")
    points: float = Field(description="Percentage points of risk it adds (negative: removes)")


class PersonChurn(Answer):
    """A person's churn risk from the latest scoring: the traits ``churn_risk`` and
    ``churn_percentile``, and what raised or lowered it."""

    person: int
    model_id: int = Field(description="The model card that made them")
    model_version: str
    scored_at: UtcTime
    window_days: int = Field(description="Churned: no activity this many days from scoring")
    churn_risk: float = Field(description="Probability of no activity in the window")
    churn_percentile: float = Field(description="Among the persons scored (100: riskiest)")
    base_risk: float | None = Field(description="The risk before any feature's points")
    contributions: list[ChurnContribution] = Field(description="Biggest first, either way")


class ChurnScoring(Answer):
    """A scoring run: every person of the population got a churn risk."""

    model_id: int
    scored_at: UtcTime
    persons: int
    mean_churn_risk: float
    base_risk: float


class ScoredOffer(Answer):
    item: str
    score: float


class StoredProducts(Answer):
    """A person's next best products from the latest scoring."""

    model_id: int = Field(description="The model card of the fit that chose them")
    model_version: str
    method: str = Field(description="co-occurrence or factorisation")
    scored_at: UtcTime
    products: list[ScoredOffer] = Field(description="Best first; never an item they bought")


class StoredAction(Answer):
    """One rule of next_best_actions that held for the person at the latest scoring."""

    name: str
    action: str
    channel: str | None
    priority: int
    reason: str | None
    because: list[str] = Field(description="Each condition with the person's figure")


class StoredActions(Answer):
    """A person's next best action from the latest scoring: the highest-priority rule that
    held, and every rule that held."""

    rules_version: str = Field(description="rules/ and the start of the file's SHA-256")
    scored_at: UtcTime
    action: str = Field(description="The name of the highest-priority rule that held")
    actions: list[StoredAction] = Field(description="Highest priority first")


class PersonPredictions(Answer):
    """Everything predicted about one person: lifetime value, churn risk, next best products
    and action, each null with the reason where the latest scoring left the person out."""

    person: int
    ltv: PersonLtv | None
    ltv_missing: str | None = Field(description="Why there is no lifetime value")
    churn: PersonChurn | None
    churn_missing: str | None = Field(description="Why there is no churn risk")
    next_best_products: StoredProducts | None = None
    next_best_action: StoredActions | None = None


class ClvBucket(Answer):
    low: float = Field(description="Predicted 12-month value from (included)")
    high: float | None = Field(description="Up to (excluded); null: no upper end")
    persons: int
    value: float = Field(description="The bucket's persons' predicted 12-month value together")


class ClvDistribution(Answer):
    """How the predicted 12-month value spreads over the persons scored."""

    persons: int
    total: float
    mean: float
    median: float
    top_decile_share: float = Field(description="Share of the total held by the top 10 %")
    buckets: list[ClvBucket]


class ChurnGroup(Answer):
    name: str | None = Field(description="The stage or channel; null: none (no stage entered)")
    persons: int
    mean_risk: float
    high_risk: int = Field(description="Persons with a churn risk of 50 % or more")


class CalibrationBin(Answer):
    low: float = Field(description="Predicted risk from")
    high: float = Field(description="Predicted risk up to")
    persons: int
    predicted: float = Field(description="Mean predicted risk in the test period")
    actual: float = Field(description="Share who churned in the test period")


class LiftDecile(Answer):
    decile: int = Field(description="1: the tenth of persons with the highest risk")
    persons: int
    predicted: float
    actual: float = Field(description="Share who churned")
    lift: float = Field(description="The decile's churn rate over everyone's")
    cumulative_lift: float = Field(description="Deciles 1 to this one together")


class FeatureImportance(Answer):
    feature: str
    label: str = Field(description="What the feature is, in English")
    points: float = Field(description="Mean absolute points of churn risk in the test period")


class TopCustomer(Answer):
    person: int
    predicted_clv_12m: float
    p_alive: float
    expected_purchases_365d: float
    churn_risk: float | None


class TopCustomers(Answer):
    customers: list[TopCustomer]


class PredictionsOverview(Answer):
    """The aggregate figures of the models in use (no person named): their cards, the
    12-month value's distribution, churn risk by stage and channel, the churn model's
    calibration, lift and feature importance on its test period, and the lifetime-value
    model's latest holdout comparison."""

    ltv_model: ModelCard | None = Field(description="The lifetime-value model in use")
    churn_model: ModelCard | None = Field(description="The churn-risk model in use")
    holdout_model: ModelCard | None = Field(description="The latest holdout evaluation")
    ltv_persons: int = Field(description="Persons with lifetime-value figures")
    churn_persons: int = Field(description="Persons with a churn risk")
    clv: ClvDistribution | None
    churn_by_stage: list[ChurnGroup]
    churn_by_channel: list[ChurnGroup]
    calibration: list[CalibrationBin] = Field(description="The churn model on its test period")
    lift: list[LiftDecile] = Field(description="The churn model on its test period")
    baseline_lift: list[LiftDecile] = Field(description="The logistic baseline, the same")
    feature_importance: list[FeatureImportance]
    holdout: list[HoldoutRow] = Field(description="The latest holdout, by frequency")


class OfferScoring(Answer):
    """A scoring run of the offers: everyone allowed got their ten best items."""

    model_id: int = Field(description="The model card of the fit")
    method: Literal["co-occurrence", "factorisation"]
    scored_at: UtcTime
    persons: int = Field(description="Persons given at least one offer")
    items: int


class ActionScoring(Answer):
    """The next best actions chosen for everyone scored."""

    rules_version: str
    scored_at: UtcTime
    persons: int = Field(description="Persons for whom some rule held")


class ScoringRun(Answer):
    """Every model's scoring, each null with the reason where it could not run: lifetime
    value, churn risk, next best products; then the next best actions from their figures."""

    ltv: Scoring | None
    ltv_error: str | None
    churn: ChurnScoring | None
    churn_error: str | None
    offers: OfferScoring | None = None
    offers_error: str | None = None
    actions: ActionScoring | None = None
    actions_error: str | None = None
