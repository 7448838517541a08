"""Attribution: conversions and their value credited to channels or campaigns. A model
chooser draws one model's credits as bars; the table holds all six side by side, with the
totals and the Markov model's removal effects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from touchpoints.errors import InvalidRequest, TouchpointsError, status_of
from touchpoints.journeys.queries import AttributionQuery
from touchpoints.journeys.results import Attribution
from touchpoints.web.app import Table, csv_response
from touchpoints.web.charts import bars
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 70
NAV = (("/journeys/attribution", "Attribution"),)
MODELS = {
    "first_touch": "first touch",
    "last_touch": "last touch",
    "linear": "linear",
    "time_decay": "time decay",
    "position_based": "position based",
    "markov": "Markov (removal effect)",
}
FIELDS = ("conversion", "by", "lookback_days", "value_property", "half_life_days")


def routes(dashboard: Dashboard) -> list[Route]:
    async def attribution(request: Request, session: Session) -> Response:
        params = request.query_params
        defaults = {name: AttributionQuery.model_fields[name].default for name in FIELDS}
        form = {name: params.get(name, _shown(defaults[name])) for name in FIELDS}
        form["model"] = params.get("model") or "markov"
        context: dict[str, Any] = {
            "form": form,
            "models": MODELS,
            "events": await run_in_threadpool(dashboard.event_names),
            "error": None,
        }
        try:
            found = await dashboard.ask(AttributionQuery, _question(form))
        except TouchpointsError as exc:
            context["error"] = str(exc)
            return dashboard.render(
                request,
                "attribution.html",
                session,
                status_code=status_of(exc),
                tables={},
                **context,
            )
        data = _view(found, form["model"])
        if (wanted := params.get("csv")) is not None:
            return csv_response(data["tables"], wanted, "attribution")
        return dashboard.render(request, "attribution.html", session, **context, **data)

    return [Route("/journeys/attribution", dashboard.page(attribution))]


def _shown(value: Any) -> str:
    """A default as the form shows it (30.0 as 30)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _days(name: str, text: str) -> float:
    """A number of days (its bounds are the question's to check, and name)."""
    try:
        return float(text)
    except ValueError:
        raise InvalidRequest(f"{name}: {text!r} is not a number of days") from None


def _question(form: dict[str, str]) -> dict[str, Any]:
    """The service's parameters from the form (the model only picks what the bars draw)."""
    if form["model"] not in MODELS:
        raise InvalidRequest(f"model: {form['model']!r} is not one of {', '.join(MODELS)}")
    if not form["conversion"].strip():
        raise InvalidRequest("conversion: give the name of the event that is a conversion")
    return {
        "conversion": form["conversion"],
        "by": form["by"],
        "lookback_days": _days("lookback_days", form["lookback_days"]),
        "value_property": form["value_property"].strip() or None,
        "half_life_days": _days("half_life_days", form["half_life_days"]),
    }


def _view(found: Attribution, model: str) -> dict[str, Any]:
    """Every model's credits as tables; the chosen model's as bars, biggest first."""
    credits = found.credits
    by = found.by
    conversions = Table(
        "conversions",
        f"Conversions credited per {by}: {MODELS[model]}",
        [by, "touchpoints", *MODELS, "removal effect %"],
        [
            [c.key, c.touchpoints, *[round(c.conversions[m], 2) for m in MODELS],
             round(100 * c.removal_effect, 2)]
            for c in credits
        ],
    )  # fmt: skip
    value = Table(
        "value",
        f"Value credited per {by}: {MODELS[model]}",
        [by, *MODELS],
        [[c.key, *[round(c.value[m], 2) for m in MODELS]] for c in credits],
    )
    chosen = sorted(credits, key=lambda c: (-c.conversions[model], c.key))
    keys = [c.key for c in chosen]
    height = max(220, 70 + 28 * len(keys))
    return {
        "tables": {t.name: t for t in (conversions, value)},
        "found": found,
        "effects": sorted(credits, key=lambda c: (-c.removal_effect, c.key)),
        "height": height,
        "conversion_chart": bars(
            keys,
            {f"conversions ({MODELS[model]})": [round(c.conversions[model], 2) for c in chosen]},
            horizontal=True,
        ),
        "value_chart": bars(
            keys,
            {f"value ({MODELS[model]})": [round(c.value[model], 2) for c in chosen]},
            horizontal=True,
        ),
    }
