"""Retention: cohorts by the week or month people started, and the share of each cohort that
came back in every period after, as a heat map; periods not reached yet stay empty."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from touchpoints.errors import TouchpointsError, status_of
from touchpoints.journeys.queries import RetentionQuery
from touchpoints.journeys.results import RetentionResult
from touchpoints.web.app import Table, csv_response
from touchpoints.web.charts import heatmap, percent
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 50
NAV = (("/journeys/retention", N_("Retention")),)
PERMISSION = "analytics"  # aggregate figures (access/roles.py)
FIELDS = ("period", "periods", "start_event", "return_event", "unit", "since", "until")


def routes(dashboard: Dashboard) -> list[Route]:
    async def retention(request: Request, session: Session) -> Response:
        language = dashboard.language(request)
        asked = {name: request.query_params.get(name, "") for name in FIELDS}
        defaults = {name: RetentionQuery.model_fields[name].default for name in FIELDS}
        context: dict[str, Any] = {
            "form": {k: asked[k] or ("" if defaults[k] is None else defaults[k]) for k in FIELDS},
            "events": await run_in_threadpool(dashboard.event_names),
            "error": None,
        }
        spec = {name: value for name, value in asked.items() if value != ""}
        try:
            found = await dashboard.ask(RetentionQuery, spec)
        except TouchpointsError as exc:
            context["error"] = language.explain(exc)
            return dashboard.render(
                request, "retention.html", session, status_code=status_of(exc), tables={}, **context
            )
        data = _view(found, language)
        if (wanted := request.query_params.get("csv")) is not None:
            return csv_response(data["tables"], wanted, "retention", language)
        return dashboard.render(request, "retention.html", session, **context, **data)

    return [Route("/journeys/retention", dashboard.page(retention, PERMISSION))]


def _view(found: RetentionResult, language: Language) -> dict[str, Any]:
    """The cohort table and its heat map."""
    _ = language.gettext
    cohorts, monthly = found.cohorts, found.period == "month"
    offsets = range(found.periods + 1)

    def offset(n: int) -> str:
        return _("month %(n)s", n=n) if monthly else _("week %(n)s", n=n)

    def returned(n: int) -> list[str]:
        if monthly:
            return [_("month %(n)s returned", n=n), _("month %(n)s %%", n=n)]
        return [_("week %(n)s returned", n=n), _("week %(n)s %%", n=n)]

    table = Table(
        "cohorts",
        _("Came back per month after starting (%% of the cohort)")
        if monthly
        else _("Came back per week after starting (%% of the cohort)"),
        [_("cohort"), _("size"), *[c for n in offsets for c in returned(n)]],
        [
            [
                c.cohort,
                c.size,
                *[v for n, s in zip(c.returned, c.share, strict=True)
                  for v in (n, percent(s))],
            ]
            for c in cohorts
        ],
    )  # fmt: skip
    chart = heatmap(
        [offset(n) for n in offsets],
        [f"{language.date(c.cohort)} · {language.number(c.size)}" for c in cohorts],
        [[percent(s) for s in c.share] for c in cohorts],
        label=_("came back %%"),
    )
    series = chart["series"][0]
    series["label"] |= {"formatter": "{@[2]}", "fontSize": 11}
    chart["visualMap"] |= {"text": [_("%% came back"), ""], "itemHeight": 160}
    chart["grid"]["bottom"] = 84  # room for the colour scale under the axis labels
    return {
        "tables": {table.name: table},
        "cohorts": cohorts,
        "as_of": found.as_of,
        "cohort_chart": chart,
        "height": max(260, 140 + 26 * len(cohorts)),
    }
