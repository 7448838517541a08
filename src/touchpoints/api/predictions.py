"""Predictions: lifetime value and churn risk (see docs/predictions.md).

Aggregate figures need ``analytics`` (they name no person); a person's predictions and the
list of top customers need ``profiles`` and are recorded in the audit log
(``profile.predictions``); training, scoring and holdout evaluations change the models in
use or their scores and need ``admin`` (``predictions.train``, ``predictions.score``,
``predictions.evaluate``). A model not trained yet is a 409 that says what to run.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from touchpoints.access.keys import ApiKey
from touchpoints.api.auth import audited, require
from touchpoints.api.state import core
from touchpoints.predictions import ChurnTraining, HoldoutQuery, LtvTraining
from touchpoints.predictions.actions import PersonActions
from touchpoints.predictions.offers import (
    OfferEvaluation,
    OfferEvaluationQuery,
    OffersQuery,
    PersonOffers,
)
from touchpoints.predictions.recommend import Method
from touchpoints.predictions.results import (
    HoldoutEvaluation,
    ModelCard,
    ModelCards,
    PersonPredictions,
    PredictionsOverview,
    ScoringRun,
    TopCustomers,
)

router = APIRouter(prefix="/v1/predictions", tags=["predictions"])
Analyst = Annotated[ApiKey, Depends(require("analytics"))]
Reader = Annotated[ApiKey, Depends(require("profiles"))]
Admin = Annotated[ApiKey, Depends(require("admin"))]


@router.get("")
def overview(request: Request, _: Analyst) -> PredictionsOverview:
    """The models in use and their aggregate figures: the 12-month value's distribution,
    churn risk by stage and channel, calibration and lift on the churn model's test period,
    feature importance, and the latest holdout comparison of the lifetime-value model."""
    return core(request).figures.overview()


@router.get("/models")
def models(
    request: Request,
    _: Analyst,
    kind: Literal["ltv", "ltv_holdout", "churn", "offers"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> ModelCards:
    """Every training run's model card, newest first (failed runs too, with the reason)."""
    return core(request).predictions.cards(limit, kind)


@router.get("/top-customers")
def top_customers(
    request: Request, key: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> TopCustomers:
    """The persons of highest predicted 12-month value, with their churn risk."""
    found = core(request).figures.top_customers(limit)
    for customer in found.customers:
        audited(request, key, "profile.predictions", f"person:{customer.person}", durable=False)
    return found


@router.get("/persons/{key:path}")
def person(request: Request, reader: Reader, key: str) -> PersonPredictions:
    """A person's lifetime value and churn risk with its reasons (TYPE:VALUE or
    person:N); each null with the reason where the latest scoring left the person out."""
    found = core(request).figures.person(key)
    audited(request, reader, "profile.predictions", f"person:{found.person}", durable=False)
    return found


@router.get("/offers/{key:path}")
def offers(
    request: Request, reader: Reader, key: str, method: Method | None = None
) -> PersonOffers:
    """The person's next best offers: the items they are likeliest to buy next, from what
    they and others viewed, configured and bought (item-to-item co-occurrence, or matrix
    factorisation: ``method``, unset: the setting predictions_offers_method), without what
    they bought; none where their consent does not allow predictions."""
    found = core(request).offers.for_person(key, OffersQuery(method=method))
    audited(request, reader, "profile.predictions", f"person:{found.person}", "offers")
    return found


@router.get("/actions/{key:path}")
def actions(request: Request, reader: Reader, key: str) -> PersonActions:
    """The person's next best actions: the rules of the next_best_actions file that hold
    for their latest figures, highest priority first, each with the figures that made it
    hold (409 without rules)."""
    tp = core(request)
    found = tp.figures.actions(key, tp.action_rules)
    audited(request, reader, "profile.predictions", f"person:{found.person}", "actions")
    return found


@router.post("/offers/evaluate")
def evaluate_offers(
    request: Request, _: Analyst, body: OfferEvaluationQuery | None = None
) -> OfferEvaluation:
    """Precision@10 and recall@10 of both methods of choosing offers (co-occurrence, matrix
    factorisation) on a time split, beside a popularity baseline (aggregate figures;
    nothing is stored)."""
    return core(request).offers.evaluate(body or OfferEvaluationQuery())


@router.post("/ltv/train")
def train_ltv(request: Request, key: Admin, body: LtvTraining | None = None) -> ModelCard:
    """Fit BG/NBD and Gamma-Gamma on a window's purchases; the new model is the one in use.
    Too little data is a 409 saying how much there is; a bad setting a 422 naming it."""
    card = core(request).predictions.train_ltv(body)
    audited(request, key, "predictions.train", f"model:{card.id}", "ltv")
    return card


@router.post("/churn/train")
def train_churn(request: Request, key: Admin, body: ChurnTraining | None = None) -> ModelCard:
    """Train the churn-risk models on a time split; the new model is the one in use."""
    card = core(request).churn.train(body)
    audited(request, key, "predictions.train", f"model:{card.id}", "churn")
    return card


@router.post("/ltv/evaluate")
def evaluate(request: Request, key: Admin, body: HoldoutQuery) -> HoldoutEvaluation:
    """Fit on a calibration period and compare predicted with actual purchases in the
    holdout period after it (kept as an ``ltv_holdout`` card; the model in use stays)."""
    found = core(request).predictions.evaluate(body)
    audited(request, key, "predictions.evaluate", f"model:{found.model.id}")
    return found


@router.post("/score")
def score(request: Request, key: Admin) -> ScoringRun:
    """Score every person with the models in use now (lifetime value, churn risk, next best
    products), then choose their next best actions (as the scheduled job does)."""
    run = core(request).figures.score()
    parts = (
        ("ltv", run.ltv),
        ("churn", run.churn),
        ("offers", run.offers),
        ("actions", run.actions),
    )
    detail = ", ".join(f"{name} {part.persons} persons" for name, part in parts if part is not None)
    audited(request, key, "predictions.score", None, detail)
    return run
