"""predict: train the lifetime-value and churn-risk models, score everyone, check the
lifetime-value model on a holdout period, list the model cards (through the API)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.table import Table

from touchpoints.cli.base import DataDir, app, client_for, fail, out
from touchpoints.predictions import ChurnTraining, HoldoutQuery, LtvTraining
from touchpoints.predictions.offers import OfferEvaluation, OfferEvaluationQuery, PersonOffers
from touchpoints.predictions.recommend import Method
from touchpoints.predictions.results import HoldoutEvaluation, ModelCard, ModelCards, ScoringRun

predict_app = typer.Typer(
    help="Predictions: lifetime value and churn risk (train, score, evaluate, models).",
    no_args_is_help=True,
)
app.add_typer(predict_app, name="predict")

Q = TypeVar("Q", bound=BaseModel)
Day = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="A day, YYYY-MM-DD (UTC)")]


@predict_app.command()
def train(
    kind: Annotated[
        Literal["ltv", "churn", "all"],
        typer.Argument(help="ltv: lifetime value; churn: churn risk; all: both"),
    ] = "all",
    data_dir: DataDir = None,
    since: Day = None,
    until: Day = None,
    window_days: Annotated[
        int | None, typer.Option(min=7, max=730, help="churn: the window [setting]")
    ] = None,
) -> None:
    """Train the models on the data so far; each new model is the one in use. Every run
    is kept as a model card (touchpoints predict models)."""
    with client_for(data_dir) as api:
        if kind in ("ltv", "all"):
            query = _checked(LtvTraining, since=_day(since), until=_day(until))
            _print_card(api.post("/v1/predictions/ltv/train", query, ModelCard))
        if kind in ("churn", "all"):
            churn = _checked(ChurnTraining, until=_day(until), window_days=window_days)
            _print_card(api.post("/v1/predictions/churn/train", churn, ModelCard))


@predict_app.command()
def score(data_dir: DataDir = None) -> None:
    """Score every person with the models in use now (the server also does so on a
    schedule: the setting predictions_score_interval_hours)."""
    with client_for(data_dir) as api:
        run: ScoringRun = api.post("/v1/predictions/score", None, ScoringRun)
    if run.ltv is not None:
        out.print(
            f"lifetime value: {run.ltv.persons:,} persons scored with model {run.ltv.model_id}; "
            f"12-month value {run.ltv.predicted_clv_12m:,.2f} together, "
            f"mean p_alive {run.ltv.mean_p_alive:.3f}",
            highlight=False,
        )
    else:
        out.print(f"lifetime value: not scored: {run.ltv_error}", highlight=False)
    if run.churn is not None:
        out.print(
            f"churn risk: {run.churn.persons:,} persons scored with model "
            f"{run.churn.model_id}; mean risk {run.churn.mean_churn_risk:.1%}",
            highlight=False,
        )
    else:
        out.print(f"churn risk: not scored: {run.churn_error}", highlight=False)
    if run.offers is not None:
        out.print(
            f"next best products: {run.offers.persons:,} persons given offers by "
            f"{run.offers.method} (model {run.offers.model_id}, {run.offers.items:,} items)",
            highlight=False,
        )
    else:
        out.print(f"next best products: not scored: {run.offers_error}", highlight=False)
    if run.actions is not None:
        out.print(
            f"next best actions: a rule holds for {run.actions.persons:,} persons "
            f"({run.actions.rules_version})",
            highlight=False,
        )
    else:
        out.print(f"next best actions: none chosen: {run.actions_error}", highlight=False)


@predict_app.command()
def evaluate(
    calibration_end: Annotated[
        datetime, typer.Argument(formats=["%Y-%m-%d"], help="Last day of the calibration period")
    ],
    holdout_end: Annotated[
        datetime, typer.Argument(formats=["%Y-%m-%d"], help="Last day of the holdout period")
    ],
    data_dir: DataDir = None,
    since: Day = None,
) -> None:
    """Fit the lifetime-value model on a calibration period and compare its predicted
    purchases with the actual ones in the holdout period after it."""
    query = _checked(
        HoldoutQuery,
        calibration_end=calibration_end.date(),
        holdout_end=holdout_end.date(),
        since=_day(since),
    )
    with client_for(data_dir) as api:
        found: HoldoutEvaluation = api.post(
            "/v1/predictions/ltv/evaluate", query, HoldoutEvaluation
        )
    table = Table(title=f"holdout {found.holdout_from} to {found.holdout_until}")
    for column in ("frequency", "customers", "actual", "predicted"):
        table.add_column(column, justify="right")
    for row in found.rows:
        table.add_row(
            row.frequency, f"{row.customers:,}", f"{row.actual:.3f}", f"{row.predicted:.3f}"
        )
    out.print(table)
    out.print(
        f"model card {found.model.id}: {found.customers:,} customers; purchases in the holdout: "
        f"{found.actual_total:,} actual, {found.predicted_total:,.1f} predicted; mean absolute "
        f"error {found.mean_absolute_error:.3f} a customer",
        highlight=False,
    )


@predict_app.command()
def offers(
    key: Annotated[
        str,
        typer.Argument(help="Any identifier as TYPE:VALUE (email:anna@example.com) or person:N"),
    ],
    data_dir: DataDir = None,
    method: Annotated[
        Method | None,
        typer.Option(help="co-occurrence or factorisation [setting predictions_offers_method]"),
    ] = None,
) -> None:
    """The person's next best offers: the items they are likeliest to buy next (from what
    persons viewed and bought: item-to-item co-occurrence or matrix factorisation), without
    what they bought."""
    with client_for(data_dir) as api:
        found: PersonOffers = api.get(f"/v1/predictions/offers/{key}", PersonOffers, method=method)
    table = Table()
    for column in ("item", "score", "because of"):
        table.add_column(column, overflow="fold")
    for offer in found.offers:
        table.add_row(offer.item, f"{offer.score:.3f}", ", ".join(offer.because))
    out.print(table)
    out.print(
        f"person:{found.person} ({found.method}) bought: {', '.join(found.bought) or 'nothing'}",
        highlight=False,
    )


@predict_app.command("evaluate-offers")
def evaluate_offers(
    data_dir: DataDir = None,
    until: Day = None,
    holdout_days: Annotated[int, typer.Option(min=7, max=730)] = 90,
) -> None:
    """Precision@10 and recall@10 of both ways of choosing offers (co-occurrence, matrix
    factorisation) on a time split, beside the ten best sellers."""
    query = _checked(OfferEvaluationQuery, until=_day(until), holdout_days=holdout_days)
    with client_for(data_dir) as api:
        found: OfferEvaluation = api.post("/v1/predictions/offers/evaluate", query, OfferEvaluation)
    out.print(
        f"learnt up to {found.cutoff}, {found.persons:,} persons bought a new item by "
        f"{found.until}, {found.items:,} items:",
        highlight=False,
    )
    table = Table()
    for column in ("method", "precision@10", "recall@10", "beats the best sellers"):
        table.add_column(column)
    for measured in found.methods:
        name = measured.method + (" (in use)" if measured.method == found.method else "")
        beats = (
            "-" if measured.method == "popularity" else ("yes" if measured.beats_baseline else "no")
        )
        table.add_row(
            name, f"{measured.precision_at_10:.3f}", f"{measured.recall_at_10:.3f}", beats
        )
    out.print(table)
    out.print(
        f"offers precision@10 {found.model.precision_at_10:.3f}, recall@10 "
        f"{found.model.recall_at_10:.3f} ({found.method}); best sellers "
        f"{found.baseline.precision_at_10:.3f}, {found.baseline.recall_at_10:.3f}"
        + ("" if found.beats_baseline else " (the offers do not beat the best sellers)"),
        highlight=False,
    )


@predict_app.command()
def models(
    data_dir: DataDir = None,
    kind: Annotated[
        Literal["ltv", "ltv_holdout", "churn", "offers"] | None,
        typer.Option(help="Only this kind"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """The model cards of the training runs, newest first."""
    with client_for(data_dir) as api:
        found: ModelCards = api.get("/v1/predictions/models", ModelCards, kind=kind, limit=limit)
    table = Table()
    for column in ("id", "kind", "status", "trained", "data until", "figures"):
        table.add_column(column, overflow="fold")
    for card in found.cards:
        table.add_row(
            str(card.id),
            card.kind,
            card.status,
            card.trained_at.isoformat(timespec="seconds"),
            card.data_until.isoformat(),
            card.message or _figures(card),
        )
    out.print(table)


def _figures(card: ModelCard) -> str:
    metrics = card.metrics or {}
    if card.kind == "churn":
        model = metrics.get("model", {})
        base = metrics.get("baseline", {})
        return (
            f"AUC {model.get('auc', 0):.3f} (baseline {base.get('auc', 0):.3f}), "
            f"top-decile lift {model.get('top_decile_lift', 0):.2f}"
        )
    if card.kind == "offers":
        return (
            f"{card.features.get('method')}: {metrics.get('offered', 0):,} persons offered "
            f"{metrics.get('items', 0):,} items"
        )
    if card.kind == "ltv_holdout":
        return (
            f"holdout purchases {metrics.get('holdout_actual')} actual, "
            f"{metrics.get('holdout_predicted', 0):.1f} predicted"
        )
    return f"{metrics.get('customers', 0):,} customers, {metrics.get('repeat_buyers', 0):,} repeat"


def _checked(kind: type[Q], **fields: Any) -> Q:
    """The question, or the command ends with what is wrong with it (as the API's 422)."""
    try:
        return kind(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise fail(f"{where}: {message}" if where else message) from None


def _day(moment: datetime | None) -> date | None:
    return None if moment is None else moment.date()


def _print_card(card: ModelCard) -> None:
    out.print(f"{card.kind} model {card.id} trained: {_figures(card)}", highlight=False)
