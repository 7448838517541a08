"""The churn-risk service: train the models on two cutoffs, score every person of the
population now, and answer one person's risk with what raised or lowered it.

Training splits by time, never at random: the models learn from the persons at a cutoff two
windows before the end of the data, labelled by the window after it, and are tested on the
persons at the next cutoff, one window later, labelled by the last window. No day of the
test window is in a training label or feature. Every run is kept as a model card in
``prediction_models`` (kind ``churn``), trained or failed; a trained card's fitted estimator
is written with it, in one transaction. Scoring replaces every person's scores at once, so a
failed run (training or scoring) leaves the previous model and its scores as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from touchpoints.errors import Conflict, InvalidRequest, NotFound, TouchpointsError
from touchpoints.journeys.model import StageModel
from touchpoints.predictions import churn
from touchpoints.predictions.churn_spec import FEATURES, ChurnSpec, Population, feature_names
from touchpoints.predictions.consent import EVERYONE, Allowed
from touchpoints.predictions.queries import ChurnTraining
from touchpoints.predictions.results import (
    ChurnContribution,
    ChurnScoring,
    ModelCard,
    PersonChurn,
)
from touchpoints.predictions.service import model_card
from touchpoints.predictions.store import CardRow, ChurnStore, PredictionStore
from touchpoints.warehouse import Warehouse, utc_now

if TYPE_CHECKING:
    from touchpoints.journeys.source import Source

KIND = "churn"
VERSION = "churn/hist-gradient-boosting+logistic-regression/1"


@dataclass(frozen=True)
class ChurnSettings:
    events: tuple[str, ...]  # activity; empty: any event
    window_days: int
    population: Population
    conversion_event: str
    revenue_property: str


@dataclass(frozen=True)
class _Frame:
    """One cutoff's rows: persons, the feature matrix, the labels (training only)."""

    person: np.ndarray
    x: np.ndarray
    y: np.ndarray | None


class ChurnRisk:
    def __init__(
        self,
        warehouse: Warehouse,
        resolve: Callable[[str], int],
        source: Callable[[], Source],
        model: StageModel,
        settings: ChurnSettings,
        now: Callable[[], datetime] = utc_now,
        allowed: Callable[[], Allowed] = lambda: EVERYONE,
    ) -> None:
        self.cards = PredictionStore(warehouse)
        self.store = ChurnStore(warehouse)
        self.warehouse = warehouse
        self.resolve = resolve  # a key (identifier or person:N) to its person
        self.source = source  # the journey tables, caught up, honouring consent
        self.model = model  # the stage model: its pain points are features
        self.settings = settings
        self.now = now  # naive UTC
        # Whose consent allows predictions (profiling): no one else is scored.
        self.allowed = allowed
        self._fitted: dict[int, churn.Fitted] = {}  # the scoring model, to explain a person

    # -- training ----------------------------------------------------------------------------
    def train(self, query: ChurnTraining | None = None) -> ModelCard:
        """Fit the trees and the baseline on the training cutoff, measure both on the test
        cutoff, and keep the card (with the fitted estimators); the new model is the one in
        use if it trained. A failed run is kept as a failed card, and raises."""
        query = query or ChurnTraining()
        spec = self._spec(query)
        today = self.now().date()
        until = query.until or today - timedelta(days=1)
        if until >= today:
            raise InvalidRequest(
                f"until: {until.isoformat()} is not over yet; the test window must have ended "
                f"(give {(today - timedelta(days=1)).isoformat()} or earlier)"
            )
        if until.toordinal() <= 2 * spec.window_days:
            raise InvalidRequest(
                f"until: {until.isoformat()} leaves no room for two windows of "
                f"{spec.window_days} days before it; give a later day"
            )
        end = datetime.combine(until + timedelta(days=1), time())
        window = timedelta(days=spec.window_days)
        test_cutoff = end - window
        train_cutoff = test_cutoff - window
        names = feature_names(self.model)
        features = _card_features(spec, self.model, names, train_cutoff, test_cutoff)
        try:
            source = self.source()
            train = self._frame(source, spec, train_cutoff, label=True)
            test = self._frame(source, spec, test_cutoff, label=True)
            _anyone(train, test, spec)
            _enough(train, test, train_cutoff, test_cutoff)
            assert train.y is not None and test.y is not None
            fitted = churn.fit(train.x, train.y)
            measured = {
                "model": churn.metrics(test.y, churn.risk(fitted.trees, test.x)),
                "baseline": churn.metrics(test.y, churn.risk(fitted.baseline, test.x)),
                "feature_importance": churn.importance(
                    names, churn.explain(fitted.trees, churn.sample(test.x)).points
                ),
            }
            data, sha256 = churn.dump(fitted)
        except (TouchpointsError, ValueError) as exc:
            self._add_card(features, until, status="failed", message=str(exc))
            raise exc if isinstance(exc, TouchpointsError) else Conflict(str(exc)) from None
        metrics = {
            "training": _counts(train),
            "test": _counts(test),
            **measured,
        }
        parameters = {
            "trees": dict(churn.TREE_PARAMETERS),
            "baseline": churn.baseline_parameters(fitted, names),
        }
        features["estimator_sha256"] = sha256
        with self.warehouse.transaction():
            card_id = self._add_card(features, until, parameters=parameters, metrics=metrics)
            self.store.add_estimator(card_id, churn.ESTIMATOR_FORMAT, sha256, data)
        return self._card(card_id)

    def _spec(self, query: ChurnTraining) -> ChurnSpec:
        s = self.settings
        return ChurnSpec(
            events=tuple(query.events if query.events is not None else s.events),
            window_days=query.window_days or s.window_days,
            population=query.population or s.population,
            conversion_event=s.conversion_event,
            revenue_property=s.revenue_property,
        )

    def _frame(self, source: Source, spec: ChurnSpec, cutoff: datetime, label: bool) -> _Frame:
        from touchpoints.predictions.churn_features import churn_table

        table = source.arrow(churn_table(source, self.model, spec, cutoff, label=label))
        table = table.sort_by("person")
        names = feature_names(self.model)
        x = (
            np.column_stack(
                [table.column(n).to_numpy(zero_copy_only=False).astype(np.float64) for n in names]
            )
            if table.num_rows
            else np.empty((0, len(names)))
        )
        y = table.column("churned").to_numpy().astype(np.int64) if label else None
        return _Frame(table.column("person").to_numpy(), x, y)

    def _add_card(
        self,
        features: dict[str, Any],
        until: date,
        *,
        parameters: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        status: str = "trained",
        message: str | None = None,
    ) -> int:
        return self.cards.add_card(
            kind=KIND,
            version=VERSION,
            trained_at=utc_now(),
            data_from=None,
            data_until=until,
            period="days",
            features=features,
            parameters=parameters,
            metrics=metrics,
            status=status,
            message=message,
        )

    # -- the model in use --------------------------------------------------------------------
    def model_card(self) -> ModelCard:
        """The model in use: the newest trained churn card."""
        return model_card(self._current())

    def _card(self, card_id: int) -> ModelCard:
        found = self.cards.card(card_id)
        if found is None:
            raise NotFound(f"no model card {card_id}")
        return model_card(found)

    def _current(self) -> CardRow:
        found = self.cards.latest_trained(KIND)
        if found is None:
            raise Conflict(
                "no churn-risk model is trained yet: train one first with "
                "'touchpoints predict train churn' (POST /v1/predictions/churn/train); it "
                f"needs at least {churn.MIN_POSITIVES} persons who churned and "
                f"{churn.MIN_NEGATIVES} who stayed at each of two cutoffs a window apart"
            )
        return found

    # -- scoring -----------------------------------------------------------------------------
    def score(self) -> ChurnScoring:
        """Every person of the population now gets a churn risk from the model in use, with
        the features that raised or lowered it; they replace the previous scores at once."""
        card = self._current()
        names = feature_names(self.model)
        if card.features.get("features") != names:
            raise Conflict(
                "the stage model's pain points changed since the churn model was trained "
                f"(card {card.id}): train it again"
            )
        stored = self.store.estimator(card.id)
        if stored is None:
            raise Conflict(f"the churn model of card {card.id} is not stored: train it again")
        _fmt, sha256, data = stored
        try:
            fitted = churn.load(data, card.features["estimator_sha256"])
        except ValueError as exc:
            raise Conflict(f"{exc} (card {card.id}): train it again") from None
        spec = card_spec(card)
        scored_at = self.now()
        frame = _kept(self._frame(self.source(), spec, scored_at, label=False), self.allowed())
        if not frame.person.size:
            raise Conflict(
                "nobody to score: no person of the population was active in the last "
                f"{spec.window_days} days"
            )
        risk = churn.risk(fitted.trees, frame.x)
        ranks = churn.percentiles(risk)
        count = frame.person.size
        self.store.replace_scores(
            pa.table(
                {
                    "person": pa.array(frame.person, pa.int64()),
                    "model_id": pa.array(np.full(count, card.id), pa.int64()),
                    "scored_at": pa.array([scored_at] * count, pa.timestamp("us")),
                    "churn_risk": pa.array(risk, pa.float64()),
                    "churn_percentile": pa.array(ranks, pa.float64()),
                    # Explained when asked for (risk()), from the features kept here.
                    "contributions": pa.nulls(count, pa.string()),
                    "stage": pa.array(_stages(self.model, names, frame.x), pa.string()),
                    "channel": pa.array(_channels(names, frame.x), pa.string()),
                    "features": _feature_lists(frame.x),
                }
            )
        )
        return ChurnScoring(
            model_id=card.id,
            scored_at=scored_at,
            persons=int(count),
            mean_churn_risk=float(np.mean(risk)),
            base_risk=churn.base_risk(fitted.trees),
        )

    def risk(self, key: str) -> PersonChurn:
        """The person's churn risk from the latest scoring, and what raised or lowered it."""
        person = self.resolve(key)
        row = self.store.score(person)
        if row is None:
            self._current()  # no model at all: say so first
            raise NotFound(
                f"{key}: no churn risk: the person was not in the population when everyone "
                "was last scored (active in the window before, and a purchaser unless the "
                "population is everyone)"
            )
        card = self.cards.card(int(row["model_id"]))
        labels = feature_labels(self.model)
        explained = row["contributions"]
        if explained is None:  # scored with its features: explained now
            explained = self._explain(card, row["features"])
        return PersonChurn(
            person=person,
            model_id=int(row["model_id"]),
            model_version=card.version if card else VERSION,
            scored_at=row["scored_at"],
            window_days=int(card.features["window_days"]) if card else 0,
            churn_risk=float(row["churn_risk"]),
            churn_percentile=float(row["churn_percentile"]),
            base_risk=explained.get("base_risk"),
            contributions=[
                ChurnContribution(label=labels.get(c["feature"], c["feature"]), **c)
                for c in explained.get("contributions", [])
            ],
        )

    def _explain(self, card: CardRow | None, features: list[float | None]) -> dict[str, Any]:
        """A person's base risk and the features that pushed their risk most (tree SHAP on
        the model that scored them, from the features it scored), as scoring used to
        store them for everyone."""
        if card is None or features is None:
            return {}
        fitted = self._fitted.get(card.id)
        if fitted is None:
            stored = self.store.estimator(card.id)
            if stored is None:
                return {}
            fitted = churn.load(stored[2], card.features["estimator_sha256"])
            self._fitted = {card.id: fitted}  # the model in use, kept for the next person
        x = np.array([np.nan if v is None else v for v in features], dtype=np.float64)
        explained = churn.explain(fitted.trees, x[None, :])
        return {
            "base_risk": explained.base,
            "contributions": churn.top_contributions(
                card.features["features"], x, explained.points[0]
            ),
        }


# -- pieces ------------------------------------------------------------------------------------
def _feature_lists(x: np.ndarray) -> pa.Array:
    """Each row of ``x`` as a list of doubles (missing: null), without a Python loop."""
    count, width = x.shape
    flat = x.ravel()
    values = pa.array(flat, pa.float64(), mask=np.isnan(flat))
    offsets = pa.array(np.arange(0, count * width + 1, width, dtype=np.int32), pa.int32())
    return pa.ListArray.from_arrays(offsets, values)


def _card_features(
    spec: ChurnSpec,
    model: StageModel,
    names: list[str],
    train_cutoff: datetime,
    test_cutoff: datetime,
) -> dict[str, Any]:
    return {
        "churn_events": list(spec.events),
        "window_days": spec.window_days,
        "population": spec.population,
        "conversion_event": spec.conversion_event,
        "revenue_property": spec.revenue_property,
        "train_cutoff": train_cutoff.date().isoformat(),
        "test_cutoff": test_cutoff.date().isoformat(),
        "features": names,
        "pain_points": [pain.name for pain in model.pain_points],
    }


def card_spec(card: CardRow) -> ChurnSpec:
    """What churn meant to the model of ``card``: scoring asks the same."""
    f = card.features
    return ChurnSpec(
        events=tuple(f["churn_events"]),
        window_days=int(f["window_days"]),
        population=f["population"],
        conversion_event=f["conversion_event"],
        revenue_property=f["revenue_property"],
    )


def feature_labels(model: StageModel) -> dict[str, str]:
    """What each feature is, in English (the face translates by the feature's name)."""
    from touchpoints.channels import CHANNELS

    labels = dict(FEATURES)
    for channel in CHANNELS:
        labels[f"channel_{channel}"] = f"share of the window's events on {channel}"
    for i, pain in enumerate(model.pain_points):
        labels[f"pain_{i}"] = f"{pain.name} in the window before"
    return labels


def _kept(frame: _Frame, allowed: Allowed) -> _Frame:
    """The frame of the persons whose consent allows predictions."""
    keep = allowed.mask(frame.person)
    if keep.all():
        return frame
    return _Frame(frame.person[keep], frame.x[keep], None if frame.y is None else frame.y[keep])


def _stages(model: StageModel, names: list[str], x: np.ndarray) -> list[str | None]:
    """Each person's furthest stage entered, by name (None: none)."""
    column = x[:, names.index("stage")]
    stages = [stage.name for stage in model.stages]
    return [
        stages[int(v)] if np.isfinite(v) and 0 <= int(v) < len(stages) else None for v in column
    ]


def _channels(names: list[str], x: np.ndarray) -> list[str | None]:
    """Each person's channel with the biggest share of the window's events (None: none)."""
    columns = [i for i, name in enumerate(names) if name.startswith("channel_")]
    shares = np.nan_to_num(x[:, columns])
    best = np.argmax(shares, axis=1)
    return [
        names[columns[b]].removeprefix("channel_") if shares[i, b] > 0 else None
        for i, b in enumerate(best)
    ]


def _counts(frame: _Frame) -> dict[str, int]:
    assert frame.y is not None
    churned = int(np.sum(frame.y))
    return {"persons": int(frame.y.size), "churned": churned, "stayed": frame.y.size - churned}


def _anyone(train: _Frame, test: _Frame, spec: ChurnSpec) -> None:
    """Nobody at either cutoff: the definition names nothing that happens (422 naming it)."""
    if train.person.size or test.person.size:
        return
    if spec.events:
        raise InvalidRequest(
            f"events: nobody did any of {', '.join(map(repr, spec.events))} in the window "
            "before either cutoff; name the events that show a customer is active (the "
            "setting predictions_churn_events; none named: any event)"
        )
    if spec.population == "purchasers":
        raise InvalidRequest(
            f"population: nobody with a {spec.conversion_event!r} event was active before "
            "either cutoff; the setting predictions_conversion_event names the purchase "
            'event, or ask about everyone (predictions_churn_population = "everyone")'
        )


def _enough(train: _Frame, test: _Frame, train_cutoff: datetime, test_cutoff: datetime) -> None:
    counts = {"training": _counts(train), "test": _counts(test)}
    lacks = churn.missing({k: (v["churned"], v["stayed"]) for k, v in counts.items()})
    if not lacks:
        return
    found = "; ".join(
        f"the {period} period (cutoff {cutoff.date().isoformat()}) has {c['persons']} "
        f"persons, {c['churned']} who churned and {c['stayed']} who stayed"
        for (period, c), cutoff in zip(counts.items(), (train_cutoff, test_cutoff), strict=True)
    )
    raise Conflict(
        f"too little data: {found}; churn risk needs at least {churn.MIN_POSITIVES} of each "
        f"in both: {', '.join(lacks)} (more history, or a population of everyone)"
    )
