"""The predictions service: train the lifetime-value models, score every person, answer for
one, and check the models on a holdout period.

Training reads each person's purchases (:mod:`touchpoints.predictions.store`), fits BG/NBD
on frequency, recency and age and Gamma-Gamma on the repeat buyers' average order value, and
keeps a model card of the run whatever its outcome. Scoring applies the newest trained model
to everyone's purchases up to today and replaces the stored figures in one transaction, so a
failed run (training or scoring) leaves the previous model and its scores as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import numpy as np

from touchpoints.errors import Conflict, InvalidRequest, NotFound, TouchpointsError
from touchpoints.predictions import bgnbd, ltv
from touchpoints.predictions.bgnbd import FitFailed
from touchpoints.predictions.consent import EVERYONE, Allowed
from touchpoints.predictions.ltv import DAYS_PER_PERIOD, Customers
from touchpoints.predictions.queries import HoldoutQuery, LtvTraining
from touchpoints.predictions.results import (
    HoldoutEvaluation,
    ModelCard,
    ModelCards,
    PersonLtv,
    Scoring,
)
from touchpoints.predictions.store import CardRow, PredictionStore
from touchpoints.warehouse import Warehouse, utc_now

KIND = "ltv"
HOLDOUT_KIND = "ltv_holdout"
VERSION = "bgnbd+gamma-gamma/1"
# Below these the likelihoods are too flat to identify four (or three) parameters.
MIN_CUSTOMERS = 20
MIN_REPEAT_BUYERS = 5
_NUMBERS = ("DOUBLE", "BIGINT", "UBIGINT")
_INPUTS = ["frequency", "recency", "age", "average repeat order value"]

Period = Literal["days", "weeks"]


@dataclass(frozen=True)
class LtvSettings:
    conversion_event: str
    revenue_property: str
    discount_rate: float  # a month
    period: Period


@dataclass(frozen=True)
class _Run:
    """What a model card says of a training run before it ends."""

    kind: str
    data_from: date | None
    data_until: date
    features: dict[str, Any]


def _today() -> date:
    return datetime.now(UTC).date()


class Predictions:
    def __init__(
        self,
        warehouse: Warehouse,
        resolve: Callable[[str], int],
        settings: LtvSettings,
        today: Callable[[], date] = _today,
        allowed: Callable[[], Allowed] = lambda: EVERYONE,
    ) -> None:
        self.store = PredictionStore(warehouse)
        self.resolve = resolve  # a key (identifier or person:N) to its person
        self.settings = settings
        self.today = today
        # Whose consent allows predictions (profiling): no one else is scored.
        self.allowed = allowed

    # -- training ----------------------------------------------------------------------------
    def train_ltv(self, query: LtvTraining | None = None) -> ModelCard:
        """Fit both models on the window's purchases and keep the card; the new model is
        the one in use if it trained. A failed run is kept as a failed card, and raises."""
        query = query or LtvTraining()
        event = query.conversion_event or self.settings.conversion_event
        revenue = query.revenue_property or self.settings.revenue_property
        until = query.until or self.today()
        features = self._features(event, revenue)
        run = _Run(KIND, query.since, until, features)
        try:
            customers = self._customers(event, revenue, query.since, until)
            _enough(customers, event)
            parameters, metrics = ltv.fit(_observed(customers))
            _finite(
                ltv.figures(
                    parameters, self.settings.period, customers, self.settings.discount_rate
                ),
                "the fitted models",
            )
        except (TouchpointsError, FitFailed) as exc:
            self._add_card(run, status="failed", message=str(exc))
            raise exc if isinstance(exc, TouchpointsError) else Conflict(str(exc)) from None
        card_id = self._add_card(run, parameters=parameters, metrics=metrics)
        return self.card(card_id)

    def _features(self, event: str, revenue: str) -> dict[str, Any]:
        return {
            "conversion_event": event,
            "revenue_property": revenue,
            "inputs": _INPUTS,
        }

    def _add_card(
        self,
        run: _Run,
        *,
        parameters: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        status: str = "trained",
        message: str | None = None,
    ) -> int:
        return self.store.add_card(
            kind=run.kind,
            version=VERSION,
            trained_at=utc_now(),
            data_from=run.data_from,
            data_until=run.data_until,
            period=self.settings.period,
            features=run.features,
            parameters=parameters,
            metrics=metrics,
            status=status,
            message=message,
        )

    def _customers(
        self,
        event: str,
        revenue: str,
        since: date | None,
        until: date,
        *,
        need_value: bool = True,
        period: str | None = None,
    ) -> Customers:
        """Everyone's RFM summary of the window, in ``period`` (unset: the setting's); the
        purchase event and (``need_value``) the revenue property checked first."""
        kinds = self.store.value_types(event, revenue, since, until)
        window = f"from {since.isoformat() if since else 'the first day'} to {until.isoformat()}"
        if not kinds:
            raise InvalidRequest(
                f"conversion_event: no {event!r} events {window}: no purchases to learn from "
                "(the setting predictions_conversion_event names the purchase event)"
            )
        if need_value:
            _check_values(kinds, event, revenue)
        table = self.store.summary(event, revenue, since, until)
        days = DAYS_PER_PERIOD[period or self.settings.period]
        column = table.column
        return Customers(
            person=column("person").to_numpy(),
            x=column("frequency").to_numpy().astype(np.float64),
            t_x=column("recency_days").to_numpy().astype(np.float64) / days,
            T=column("age_days").to_numpy().astype(np.float64) / days,
            value=column("repeat_value").to_numpy(zero_copy_only=False).astype(np.float64),
        )

    # -- the model cards ---------------------------------------------------------------------
    def card(self, card_id: int) -> ModelCard:
        found = self.store.card(card_id)
        if found is None:
            raise NotFound(f"no model card {card_id}")
        return model_card(found)

    def model(self) -> ModelCard:
        """The model in use: the newest trained lifetime-value card."""
        return model_card(self._current())

    def cards(self, limit: int = 50, kind: str | None = None) -> ModelCards:
        """Every training run (of ``kind``), newest first (holdout evaluations and churn risk's
        too)."""
        return ModelCards(cards=[model_card(row) for row in self.store.cards(kind, limit)])

    def _current(self) -> CardRow:
        found = self.store.latest_trained(KIND)
        if found is None:
            raise Conflict(
                "no lifetime-value model is trained yet: train one first with "
                "'touchpoints predict train ltv' (POST /v1/predictions/ltv/train); it needs the "
                f"purchases of at least {MIN_CUSTOMERS} customers, {MIN_REPEAT_BUYERS} of them "
                "repeat buyers"
            )
        return found

    # -- scoring -----------------------------------------------------------------------------
    def score(self) -> Scoring:
        """Every person with a purchase in the model's window up to today gets new figures,
        computed with the model in use; they replace the previous ones all at once."""
        model = self._current()
        event = model.features["conversion_event"]
        revenue = model.features["revenue_property"]
        # In the model's period unit (its alpha is), whatever the setting says now.
        customers = self._customers(
            event, revenue, model.data_from, self.today(), period=model.period
        )
        customers = _kept(customers, self.allowed().mask(customers.person))
        if not customers.person.size:
            raise Conflict(
                f"nobody to score: no person whose consent allows predictions has a {event!r} event"
            )
        figures = ltv.figures(
            model.parameters or {}, model.period, customers, self.settings.discount_rate
        )
        try:
            _finite(figures, f"the model in use (card {model.id})")
        except FitFailed as exc:
            raise Conflict(f"{exc}: train it again") from None
        scored_at = utc_now()
        self.store.replace_predictions(ltv.score_rows(model.id, scored_at, customers, figures))
        clv = figures["predicted_clv_12m"]
        return Scoring(
            model_id=model.id,
            scored_at=scored_at,
            persons=int(customers.person.size),
            expected_purchases_365d=float(np.sum(figures["expected_purchases_365d"])),
            predicted_clv_12m=float(np.nansum(clv)),
            mean_p_alive=float(np.mean(figures["p_alive"])),
            discount_rate=self.settings.discount_rate,
        )

    def ltv(self, key: str) -> PersonLtv:
        """The person's figures from the latest scoring."""
        person = self.resolve(key)
        row = self.store.prediction(person)
        if row is None:
            self._current()  # no model at all: say so first
            raise NotFound(
                f"{key}: no lifetime value: the person had no purchase when everyone was last "
                "scored (score again after new purchases)"
            )
        model = self.store.card(int(row["model_id"]))
        period = model.period if model else self.settings.period
        version = model.version if model else VERSION
        return PersonLtv(model_version=version, period=period, **row)

    # -- holdout -----------------------------------------------------------------------------
    def evaluate(self, query: HoldoutQuery) -> HoldoutEvaluation:
        """Fit BG/NBD on the calibration period, predict each customer's purchases in the
        holdout period and compare with what they bought, by calibration frequency. The
        run is kept as an ``ltv_holdout`` card; the model in use does not change."""
        event = query.conversion_event or self.settings.conversion_event
        revenue = self.settings.revenue_property
        features = self._features(event, revenue)
        run = _Run(HOLDOUT_KIND, query.since, query.calibration_end, features)
        try:
            customers = self._customers(
                event, revenue, query.since, query.calibration_end, need_value=False
            )
            _enough(customers, event, spend=False)
            observed = _observed(customers)
            fitted = bgnbd.fit(observed.x, observed.t_x, observed.T)
        except (TouchpointsError, FitFailed) as exc:
            self._add_card(run, status="failed", message=str(exc))
            raise exc if isinstance(exc, TouchpointsError) else Conflict(str(exc)) from None
        bought = self.store.purchase_days(event, query.calibration_end, query.holdout_end)
        days = DAYS_PER_PERIOD[self.settings.period]
        length = (query.holdout_end - query.calibration_end).days / days
        actual = np.array([bought.get(int(p), 0) for p in customers.person], dtype=np.float64)
        predicted = bgnbd.conditional_expected_purchases(
            fitted.params, length, customers.x, customers.t_x, customers.T
        )
        rows = ltv.by_frequency(customers.x, actual, predicted)
        metrics = {
            **ltv.bgnbd_metrics(customers, fitted),
            "holdout_until": query.holdout_end.isoformat(),
            "holdout_actual": int(actual.sum()),
            "holdout_predicted": float(predicted.sum()),
            "mean_absolute_error": float(np.mean(np.abs(actual - predicted))),
            "by_frequency": [row.model_dump() for row in rows],
        }
        parameters = {"bgnbd": ltv.bgnbd_parameters(fitted.params)}
        card_id = self._add_card(run, parameters=parameters, metrics=metrics)
        return HoldoutEvaluation(
            model=self.card(card_id),
            holdout_from=date.fromordinal(query.calibration_end.toordinal() + 1),
            holdout_until=query.holdout_end,
            holdout_length=length,
            customers=int(customers.person.size),
            rows=rows,
            actual_total=int(actual.sum()),
            predicted_total=float(predicted.sum()),
            mean_absolute_error=metrics["mean_absolute_error"],
        )


def _observed(customers: Customers) -> Customers:
    """The customers observed for some time: one whose first purchase is on the window's
    last day (age 0) adds nothing to the likelihood, and the fit refuses an age of 0."""
    return _kept(customers, customers.T > 0)


def _kept(customers: Customers, keep: np.ndarray) -> Customers:
    return Customers(
        person=customers.person[keep],
        x=customers.x[keep],
        t_x=customers.t_x[keep],
        T=customers.T[keep],
        value=customers.value[keep],
    )


# -- checks ------------------------------------------------------------------------------------
def _check_values(kinds: dict[str, int], event: str, revenue: str) -> None:
    """The revenue property must be a JSON number where it is given, and given somewhere."""
    total = sum(kinds.values())
    text = kinds.get("VARCHAR", 0)
    if text:
        raise InvalidRequest(
            f"revenue_property: {revenue!r} is text in {text} of {total} {event!r} events; "
            "send it as a JSON number (in a CSV import mapping, list it under numbers = [...])"
        )
    other = sum(n for kind, n in kinds.items() if kind not in (*_NUMBERS, "NULL", "MISSING"))
    if other:
        raise InvalidRequest(
            f"revenue_property: {revenue!r} is not a number in {other} of {total} {event!r} "
            "events (an object, a list or true/false); send it as a JSON number"
        )
    if not sum(kinds.get(kind, 0) for kind in _NUMBERS):
        raise InvalidRequest(
            f"revenue_property: none of the {total} {event!r} events has a property "
            f"{revenue!r}; name the property that holds an order's value "
            "(the setting predictions_revenue_property)"
        )


def _finite(figures: dict[str, np.ndarray], which: str) -> None:
    """Every person's expected purchases and probability alive must be numbers: a fit that
    ran to its limits (no customer ever drops out: a and b in the millions) can make the
    hypergeometric series overflow; such a model is refused, not stored as NaN."""
    for name in ("p_alive", "expected_purchases_30d", "expected_purchases_365d"):
        bad = int(np.sum(~np.isfinite(figures[name])))
        if bad:
            raise FitFailed(
                f"{which} give no finite {name} for {bad} of {figures[name].size} persons: the "
                "fit ran to the edge of the model (customers who never drop out); train on a "
                "longer history, or in days (predictions_period)"
            )


def _enough(customers: Customers, event: str, spend: bool = True) -> None:
    count = int(customers.person.size)
    repeat = int(np.sum(customers.x > 0))
    spenders = int(np.sum(customers.spenders))
    if (
        count < MIN_CUSTOMERS
        or repeat < MIN_REPEAT_BUYERS
        or (spend and spenders < MIN_REPEAT_BUYERS)
    ):
        with_value = f", {spenders} with a positive order value" if spend else ""
        raise Conflict(
            f"too little data: {count} customers with a {event!r} event, {repeat} of them "
            f"repeat buyers{with_value}; the models need at least {MIN_CUSTOMERS} customers "
            f"and {MIN_REPEAT_BUYERS} repeat buyers"
        )


def model_card(row: CardRow) -> ModelCard:
    """A card as the answer shows it (churn risk's cards too)."""
    return ModelCard(
        id=row.id,
        kind=row.kind,
        version=row.version,
        trained_at=row.trained_at,
        data_from=row.data_from,
        data_until=row.data_until,
        period=row.period,
        features=row.features,
        parameters=row.parameters,
        metrics=row.metrics,
        status=row.status,
        message=row.message,
    )
