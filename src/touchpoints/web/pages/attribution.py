"""Attribution: conversions and their value credited to channels or campaigns. A model
chooser draws one model's credits as bars; the table holds all six side by side, with the
totals and the Markov model's removal effects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from touchpoints.errors import TouchpointsError, status_of
from touchpoints.journeys.queries import AttributionQuery
from touchpoints.journeys.results import Attribution
from touchpoints.web import labels
from touchpoints.web.app import FormError, Shown, Table, csv_response
from touchpoints.web.charts import bars
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 70
NAV = (("/journeys/attribution", N_("Attribution")),)
PERMISSION = "analytics"  # aggregate figures (access/roles.py)
MODELS = {
    "first_touch": N_("first touch"),
    "last_touch": N_("last touch"),
    "linear": N_("linear"),
    "time_decay": N_("time decay"),
    "position_based": N_("position based"),
    "markov": N_("Markov (removal effect)"),
}
FIELDS = ("conversion", "by", "lookback_days", "value_property", "half_life_days")


def routes(dashboard: Dashboard) -> list[Route]:
    async def attribution(request: Request, session: Session) -> Response:
        language = dashboard.language(request)
        params = request.query_params
        defaults = {name: AttributionQuery.model_fields[name].default for name in FIELDS}
        form = {name: params.get(name, _shown(defaults[name])) for name in FIELDS}
        form["model"] = params.get("model") or "markov"
        context: dict[str, Any] = {
            "form": form,
            "models": {name: language.translate(label) for name, label in MODELS.items()},
            "events": await run_in_threadpool(dashboard.event_names),
            "error": None,
        }
        try:
            found = await dashboard.ask(AttributionQuery, _question(form))
        except TouchpointsError as exc:
            context["error"] = language.explain(exc)
            return dashboard.render(
                request,
                "attribution.html",
                session,
                status_code=status_of(exc),
                tables={},
                **context,
            )
        data = _view(found, form["model"], language)
        if (wanted := params.get("csv")) is not None:
            return csv_response(data["tables"], wanted, "attribution", language)
        return dashboard.render(request, "attribution.html", session, **context, **data)

    return [Route("/journeys/attribution", dashboard.page(attribution, PERMISSION))]


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
        raise FormError(
            N_("%(name)s: %(text)s is not a number of days"), name=name, text=repr(text)
        ) from None


def _question(form: dict[str, str]) -> dict[str, Any]:
    """The service's parameters from the form (the model only picks what the bars draw)."""
    if form["model"] not in MODELS:
        raise FormError(
            N_("model: %(model)s is not one of %(known)s"),
            model=repr(form["model"]),
            known=", ".join(MODELS),
        )
    if not form["conversion"].strip():
        raise FormError(N_("conversion: give the name of the event that is a conversion"))
    return {
        "conversion": form["conversion"],
        "by": form["by"],
        "lookback_days": _days("lookback_days", form["lookback_days"]),
        "value_property": form["value_property"].strip() or None,
        "half_life_days": _days("half_life_days", form["half_life_days"]),
    }


def _view(found: Attribution, model: str, language: Language) -> dict[str, Any]:
    """Every model's credits as tables; the chosen model's as bars, biggest first (channels by
    their labels; campaigns as they are)."""
    _ = language.gettext
    credits = found.credits
    by = found.by
    chosen_model = language.translate(MODELS[model])

    def key(name: str) -> Shown:
        return Shown(name, labels.channel(language, name) if by == "channel" else name)

    heading = _("channel") if by == "channel" else _("campaign")
    models = [labels.label(language, "attribution model", m) for m in MODELS]
    conversions = Table(
        "conversions",
        _("Conversions credited per channel: %(model)s", model=chosen_model)
        if by == "channel"
        else _("Conversions credited per campaign: %(model)s", model=chosen_model),
        [heading, _("touchpoints"), *models, _("removal effect %%")],
        [
            [key(c.key), c.touchpoints, *[round(c.conversions[m], 2) for m in MODELS],
             round(100 * c.removal_effect, 2)]
            for c in credits
        ],
    )  # fmt: skip
    value = Table(
        "value",
        _("Value credited per channel: %(model)s", model=chosen_model)
        if by == "channel"
        else _("Value credited per campaign: %(model)s", model=chosen_model),
        [heading, *models],
        [[key(c.key), *[round(c.value[m], 2) for m in MODELS]] for c in credits],
    )
    chosen = sorted(credits, key=lambda c: (-c.conversions[model], c.key))
    keys = [key(c.key).text for c in chosen]
    height = max(220, 70 + 28 * len(keys))
    return {
        "tables": {t.name: t for t in (conversions, value)},
        "found": found,
        "effects": [
            (key(c.key).text, c.removal_effect)
            for c in sorted(credits, key=lambda c: (-c.removal_effect, c.key))
        ],
        "height": height,
        "conversion_chart": bars(
            keys,
            {
                _("conversions (%(model)s)", model=chosen_model): [
                    round(c.conversions[model], 2) for c in chosen
                ]
            },
            horizontal=True,
        ),
        "value_chart": bars(
            keys,
            {
                _("value (%(model)s)", model=chosen_model): [
                    round(c.value[model], 2) for c in chosen
                ]
            },
            horizontal=True,
        ),
    }
