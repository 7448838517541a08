"""Churn risk's models applied to a feature matrix: fit the gradient-boosted trees and the
logistic-regression baseline, measure them, explain a person's risk, and keep the fitted
estimators as bytes. Pure functions of arrays; the service
(:mod:`touchpoints.predictions.churn_service`) reads the data and keeps the cards.

Explanations are tree SHAP values (Lundberg et al. 2020, the ``shap`` package's exact
algorithm for trees), computed on the model's log-odds; they add up to the person's log-odds
minus the base log-odds. Shown as *points* of risk (percentage points of probability), each
feature's share of the difference between the person's risk and the base risk is
proportional to its log-odds contribution, so the points add up to that difference exactly
and keep their signs.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

# Below these the metrics of a test period are noise and the trees memorise.
MIN_POSITIVES = 100
MIN_NEGATIVES = 100
CALIBRATION_BINS = 10
TOP_SHARE = 0.10
ESTIMATOR_FORMAT = "joblib/sklearn-1"

TREE_PARAMETERS: dict[str, float] = {
    "learning_rate": 0.05,
    "max_iter": 200,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
}


@dataclass
class Fitted:
    """The two models of one training run (sklearn estimators)."""

    trees: Any  # HistGradientBoostingClassifier
    baseline: Any  # Pipeline: impute, scale, LogisticRegression


def fit(x: Array, y: npt.NDArray[np.int64]) -> Fitted:
    """Gradient-boosted trees (missing values handled by the trees) and, beside them, a
    logistic regression on the features imputed with their medians and standardised."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    params = TREE_PARAMETERS
    trees = HistGradientBoostingClassifier(
        learning_rate=params["learning_rate"],
        max_iter=int(params["max_iter"]),
        max_leaf_nodes=int(params["max_leaf_nodes"]),
        min_samples_leaf=int(params["min_samples_leaf"]),
        l2_regularization=params["l2_regularization"],
        early_stopping=False,
        random_state=0,
    ).fit(x, y)
    baseline = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000),
    ).fit(x, y)
    return Fitted(trees, baseline)


def risk(estimator: Any, x: Array) -> Array:
    """The probability of churning, per row."""
    return np.asarray(estimator.predict_proba(x)[:, 1], dtype=np.float64)


def baseline_parameters(fitted: Fitted, names: list[str]) -> dict[str, float]:
    """The logistic regression's coefficients per standardised feature, and its intercept."""
    model = fitted.baseline[-1]
    out = {name: float(c) for name, c in zip(names, model.coef_[0], strict=True)}
    out["intercept"] = float(model.intercept_[0])
    return out


# -- metrics ---------------------------------------------------------------------------------
def metrics(y: npt.NDArray[np.int64], p: Array) -> dict[str, Any]:
    """AUC, PR-AUC (average precision), lift in the top 10 %, Brier score and the
    calibration curve (10 equal-width bins of predicted risk; empty bins left out)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    return {
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "top_decile_lift": top_lift(y, p),
        "brier": float(brier_score_loss(y, p)),
        "calibration": calibration(y, p),
        "lift": lift_curve(y, p),
    }


def lift_curve(y: npt.NDArray[np.int64], p: Array) -> list[dict[str, float]]:
    """Per decile of persons by risk (1: the riskiest tenth): persons, mean predicted risk,
    churn rate, and the lift (its churn rate over everyone's) and cumulative lift."""
    order = np.argsort(-p, kind="stable")
    overall = float(np.mean(y)) or 1.0
    out = []
    seen = 0
    churned = 0
    for decile, chosen in enumerate(np.array_split(order, 10), start=1):
        if not chosen.size:
            continue
        seen += chosen.size
        churned += int(np.sum(y[chosen]))
        rate = float(np.mean(y[chosen]))
        out.append(
            {
                "decile": decile,
                "persons": int(chosen.size),
                "predicted": float(np.mean(p[chosen])),
                "actual": rate,
                "lift": rate / overall,
                "cumulative_lift": churned / seen / overall,
            }
        )
    return out


def top_lift(y: npt.NDArray[np.int64], p: Array, share: float = TOP_SHARE) -> float:
    """The churn rate among the ``share`` of persons with the highest risk (at least one,
    ties broken by order), over the churn rate of all."""
    count = max(1, int(np.ceil(share * y.size)))
    top = np.argsort(-p, kind="stable")[:count]
    return float(np.mean(y[top]) / np.mean(y))


def calibration(y: npt.NDArray[np.int64], p: Array) -> list[dict[str, float]]:
    """Per bin of predicted risk: its range, persons, mean predicted risk and churn rate
    (the bins of scikit-learn's ``calibration_curve(strategy="uniform")``)."""
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    ids = np.searchsorted(edges[1:-1], p)  # an edge belongs to the bin below, as there
    out = []
    for b in range(CALIBRATION_BINS):
        chosen = ids == b
        if not np.any(chosen):
            continue
        out.append(
            {
                "from": float(edges[b]),
                "to": float(edges[b + 1]),
                "persons": int(np.sum(chosen)),
                "predicted": float(np.mean(p[chosen])),
                "actual": float(np.mean(y[chosen])),
            }
        )
    return out


def missing(counts: dict[str, tuple[int, int]]) -> list[str]:
    """What keeps a training from the minimum: per period (``{"training": (churned,
    stayed), …}``), the persons who churned or stayed that it lacks; empty: enough."""
    lacks = []
    for period, (churned, stayed) in counts.items():
        if churned < MIN_POSITIVES:
            lacks.append(f"{MIN_POSITIVES - churned} more who churned in the {period} period")
        if stayed < MIN_NEGATIVES:
            lacks.append(f"{MIN_NEGATIVES - stayed} more who stayed in the {period} period")
    return lacks


# -- explanations ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Explained:
    risk: Array  # per person
    base: float  # the risk of a person with the average contributions (the base value)
    points: Array  # persons × features: percentage points of risk, adding up to risk - base


def explain(trees: Any, x: Array) -> Explained:
    """Each person's risk and each feature's points (see the module's docstring)."""
    import shap

    explainer = shap.TreeExplainer(trees)
    phi = np.asarray(explainer.shap_values(x), dtype=np.float64)
    base_logit = float(np.ravel(explainer.expected_value)[0])
    logit = base_logit + phi.sum(axis=1)
    person_risk = _sigmoid(logit)
    base = float(_sigmoid(np.array([base_logit]))[0])
    total = phi.sum(axis=1, keepdims=True)
    difference = (person_risk - base)[:, None]
    # Where the contributions cancel out, the slope of the logistic curve scales them.
    slope = (person_risk * (1 - person_risk))[:, None]
    tiny = np.abs(total) < 1e-9
    scale = np.where(tiny, slope, difference / np.where(tiny, 1.0, total))
    return Explained(person_risk, base, 100.0 * phi * scale)


def base_risk(trees: Any) -> float:
    """The risk of a person with average contributions (the explanations' starting point)."""
    import shap

    return float(_sigmoid(np.ravel(shap.TreeExplainer(trees).expected_value)[:1])[0])


# Feature importance is the mean absolute SHAP value over at most this many persons of the
# test period (a seeded sample beyond it): tree SHAP for all 54,093 test persons of the
# benchmark's 100,000 took 67 s of the training's 187 (7 s for the sample); the sample kept
# the order of the eight most important features, each within 0.1 points of risk.
IMPORTANCE_SAMPLE = 5_000


def sample(x: Array, size: int = IMPORTANCE_SAMPLE) -> Array:
    """At most ``size`` rows of ``x``, the same ones for the same data (seeded)."""
    if x.shape[0] <= size:
        return x
    chosen = np.random.default_rng(0).choice(x.shape[0], size, replace=False)
    return x[np.sort(chosen)]


def importance(names: list[str], points: Array) -> list[dict[str, Any]]:
    """Each feature's mean absolute points of risk over the persons explained, biggest
    first: how much it moves a person's risk either way (mean |SHAP|, in points)."""
    mean = np.mean(np.abs(points), axis=0) if points.size else np.zeros(len(names))
    order = np.argsort(-mean, kind="stable")
    return [{"feature": names[i], "points": round(float(mean[i]), 3)} for i in order]


def top_contributions(
    names: list[str], values: Array, points: Array, limit: int = 5
) -> list[dict[str, Any]]:
    """A person's features with the most points either way, biggest first: {feature, value,
    points} (value None where it is missing)."""
    order = np.argsort(-np.abs(points), kind="stable")[:limit]
    return [
        {
            "feature": names[i],
            "value": None if not np.isfinite(values[i]) else float(values[i]),
            "points": round(float(points[i]), 2),
        }
        for i in order
        if abs(points[i]) >= 0.005
    ]


def percentiles(p: Array) -> Array:
    """Each risk's percentile among all (100: the highest; ties share the highest rank)."""
    from scipy.stats import rankdata

    return np.asarray(100.0 * rankdata(p, method="max") / p.size, dtype=np.float64)


def _sigmoid(z: Array) -> Array:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


# -- keeping the estimators ------------------------------------------------------------------
def dump(fitted: Fitted) -> tuple[bytes, str]:
    """The fitted models as joblib bytes, and their SHA-256."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump({"trees": fitted.trees, "baseline": fitted.baseline}, buffer)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def load(data: bytes, sha256: str) -> Fitted:
    """The fitted models from :func:`dump`'s bytes, only if they are the bytes the model
    card names. A pickle runs code as it loads: touchpoints loads only what it wrote into
    its own warehouse (whoever can write that file owns the data already); the hash guards
    against a card and an estimator that do not belong together."""
    import joblib

    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError("the stored churn model does not match its model card")
    found = joblib.load(io.BytesIO(data))
    return Fitted(found["trees"], found["baseline"])
