"""Predictions: the models in use and what they found. The 12-month value's distribution,
churn risk by stage and by channel, the churn model's calibration and lift on its test period
(against its logistic baseline), the features that move a person's risk most, the
lifetime-value model's latest holdout comparison, and the model cards. Aggregate figures
(``analytics``); the top customers name persons and are shown only to a session with
``profiles`` (each one recorded in the audit log as ``profile.predictions``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from touchpoints.predictions.results import PredictionsOverview, TopCustomers
from touchpoints.web import labels
from touchpoints.web.app import Shown, Table, csv_response
from touchpoints.web.charts import bars, lines, percent
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 75
NAV = (("/predictions", N_("Predictions")),)
PERMISSION = "analytics"  # aggregate figures (access/roles.py); top customers need profiles
TOP = 10


def routes(dashboard: Dashboard) -> list[Route]:
    async def predictions(request: Request, session: Session) -> Response:
        language = dashboard.language(request)
        tp = dashboard.tp
        found = await run_in_threadpool(tp.figures.overview)
        top = None
        if session.allows("profiles") and found.ltv_persons:
            top = await run_in_threadpool(tp.figures.top_customers, TOP)
            for customer in top.customers:
                await dashboard.audit(
                    request,
                    session.actor.id,
                    "profile.predictions",
                    f"person:{customer.person}",
                    durable=False,
                )
        data = _view(found, top, language)
        if (wanted := request.query_params.get("csv")) is not None:
            return csv_response(data["tables"], wanted, "predictions", language)
        return dashboard.render(request, "predictions.html", session, found=found, top=top, **data)

    return [Route("/predictions", dashboard.page(predictions, PERMISSION))]


def _view(
    found: PredictionsOverview, top: TopCustomers | None, language: Language
) -> dict[str, Any]:
    """Each chart's table and ECharts option (the tables are the CSV downloads too)."""
    _ = language.gettext
    tables: dict[str, Table] = {}
    charts: dict[str, dict[str, Any]] = {}
    if found.clv is not None:
        buckets = found.clv.buckets
        spans = [
            _("%(low)s+", low=language.number(int(b.low)))
            if b.high is None
            else _(
                "%(low)s to %(high)s",
                low=language.number(int(b.low)),
                high=language.number(int(b.high)),
            )
            for b in buckets
        ]
        tables["clv"] = Table(
            "clv",
            _("Persons by predicted value of the next 12 months"),
            [_("from"), _("to"), _("persons"), _("predicted value")],
            [[b.low, b.high, b.persons, round(b.value, 2)] for b in buckets],
        )
        charts["clv"] = bars(spans, {_("persons"): [b.persons for b in buckets]})
    for name, groups, title, heading, label in (
        ("churn_stage", found.churn_by_stage, _("Churn risk by furthest stage"), _("stage"),
         labels.stage),
        ("churn_channel", found.churn_by_channel, _("Churn risk by main channel"), _("channel"),
         labels.channel),
    ):  # fmt: skip
        if not groups:
            continue
        names = [label(language, g.name) if g.name else _("none") for g in groups]
        tables[name] = Table(
            name,
            title,
            [heading, _("persons"), _("mean churn risk (%%)"), _("risk of 50 %% or more")],
            [
                [Shown(g.name or "", shown), g.persons, percent(g.mean_risk), g.high_risk]
                for g, shown in zip(groups, names, strict=True)
            ],
        )
        charts[name] = bars(
            names, {_("mean churn risk (%%)"): [percent(g.mean_risk) for g in groups]}
        )
    if found.calibration:
        tables["calibration"] = Table(
            "calibration",
            _("Calibration: predicted risk and share who churned in the test period"),
            [_("predicted from (%%)"), _("to (%%)"), _("persons"), _("predicted (%%)"),
             _("churned (%%)")],
            [[percent(b.low), percent(b.high), b.persons, percent(b.predicted), percent(b.actual)]
             for b in found.calibration],
        )  # fmt: skip
        charts["calibration"] = lines(
            [percent(b.predicted) for b in found.calibration],
            {_("churned (%%)"): [percent(b.actual) for b in found.calibration]},
            diagonal=True,
        )
    if found.lift:
        baseline = {d.decile: d for d in found.baseline_lift}
        tables["lift"] = Table(
            "lift",
            _("Lift by decile of churn risk in the test period (1: the riskiest tenth)"),
            [_("decile"), _("persons"), _("churned (%%)"), _("lift"), _("cumulative lift"),
             _("baseline lift")],
            [[d.decile, d.persons, percent(d.actual), round(d.lift, 2), round(d.cumulative_lift, 2),
              round(baseline[d.decile].lift, 2) if d.decile in baseline else None]
             for d in found.lift],
        )  # fmt: skip
        charts["lift"] = bars(
            [str(d.decile) for d in found.lift],
            {
                _("model"): [round(d.lift, 2) for d in found.lift],
                _("baseline"): [
                    round(baseline[d.decile].lift, 2) if d.decile in baseline else None
                    for d in found.lift
                ],
            },
        )
    if found.feature_importance:
        shown = found.feature_importance[:15]
        tables["importance"] = Table(
            "importance",
            _("What moves a person's churn risk most (mean points either way)"),
            [_("feature"), _("points")],
            [[Shown(f.feature, f.label), f.points] for f in shown],
        )
        charts["importance"] = bars(
            [f.label for f in shown], {_("points"): [f.points for f in shown]}, horizontal=True
        )
    if found.holdout:
        tables["holdout"] = Table(
            "holdout",
            _("Holdout: purchases per customer by repeat purchases before"),
            [_("repeat purchases"), _("customers"), _("actual"), _("predicted")],
            [[r.frequency, r.customers, round(r.actual, 3), round(r.predicted, 3)]
             for r in found.holdout],
        )  # fmt: skip
        charts["holdout"] = lines(
            [r.frequency for r in found.holdout],
            {
                _("actual"): [round(r.actual, 3) for r in found.holdout],
                _("predicted"): [round(r.predicted, 3) for r in found.holdout],
            },
        )
    if top is not None:
        tables["top"] = Table(
            "top",
            _("Customers of highest predicted value"),
            [_("person"), _("predicted value, 12 months"), _("still a customer (%%)"),
             _("expected purchases, 12 months"), _("churn risk (%%)")],
            [[f"person:{c.person}", round(c.predicted_clv_12m, 2), percent(c.p_alive),
              round(c.expected_purchases_365d, 2), percent(c.churn_risk)]
             for c in top.customers],
        )  # fmt: skip
    cards = [c for c in (found.ltv_model, found.churn_model, found.holdout_model) if c]
    return {
        "tables": tables,
        "charts": charts,
        "cards": cards,
        "importance_height": max(260, 60 + 26 * len(found.feature_importance[:15])),
    }
