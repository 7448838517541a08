"""Funnels: ordered steps (event names, with autocomplete from the data), a window, strict or
relaxed order and a breakdown, asked as a GET form so that a funnel is a shareable address.
Shows persons beside devices per step (``funnel(spec, compare_units=True)``), conversion from
step 1 and from the previous step, time to convert, the breakdown as grouped bars, and the
people who dropped off at a step (``drop_offs``), a page at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from touchpoints.errors import TouchpointsError, status_of
from touchpoints.journeys.queries import MAX_STEPS, DropOffsQuery, FunnelComparisonQuery
from touchpoints.journeys.results import DropOffPage, FunnelComparison, StepCount
from touchpoints.journeys.spec import short_span
from touchpoints.web import labels
from touchpoints.web.app import FormError, Shown, Table, csv_response
from touchpoints.web.charts import bars, percent
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 30
NAV = (("/journeys/funnels", N_("Funnels")),)
PERMISSION = "analytics"  # aggregate figures (access/roles.py)

EXAMPLE = ("Product Viewed", "Configuration Saved", "Order Completed")
BREAKDOWNS = ("channel", "device_type", "age_group")
BREAKDOWN_NAMES = {
    "channel": N_("channel"),
    "device_type": N_("device type"),
    "age_group": N_("age group"),
}
PAGE_SIZE = 25


def routes(dashboard: Dashboard) -> list[Route]:
    async def funnels(request: Request, session: Session) -> Response:
        language = dashboard.language(request)
        form = _form(request)
        names = await run_in_threadpool(dashboard.event_names)
        context: dict[str, Any] = {
            "form": form,
            "event_names": names,
            "query": _query(form),
            "max_steps": MAX_STEPS,
            "error": None,
        }
        try:
            spec = _spec(form)
            wanted = _drop_off_request(request)
            if wanted is not None and not session.allows("profiles"):  # lists of persons
                return dashboard.forbidden(request, session, "profiles")
            both = await dashboard.ask(FunnelComparisonQuery, spec)
            dropped = None
            if wanted is not None:
                step, offset = wanted
                dropped = await dashboard.ask(
                    DropOffsQuery,
                    {"funnel": spec, "step": step, "limit": PAGE_SIZE, "offset": offset},
                )
                for unit in dropped.units:  # persons listed: recorded as the API records them
                    await dashboard.audit(
                        request,
                        session.actor.id,
                        "profile.list",
                        f"person:{unit.person}",
                        "funnel drop-offs",
                        durable=False,
                    )
        except TouchpointsError as exc:
            context["error"] = language.explain(exc)
            return dashboard.render(
                request, "funnels.html", session, status_code=status_of(exc), tables={}, **context
            )
        data = _view(both, dropped, wanted[1] if wanted else 0, context["query"], language)
        if (csv := request.query_params.get("csv")) is not None:
            return csv_response(data["tables"], csv, "funnel", language)
        return dashboard.render(request, "funnels.html", session, **context, **data)

    return [Route("/journeys/funnels", dashboard.page(funnels, PERMISSION))]


# -- the question -----------------------------------------------------------------------------
def _form(request: Request) -> dict[str, Any]:
    """The form's fields as given; with no steps at all, the example funnel."""
    query = request.query_params
    given = query.getlist("step")
    steps = [s.strip() for s in given if s.strip()] if given else list(EXAMPLE)
    return {
        "steps": steps,
        "asked_steps": given,
        "window": query.get("window", "14d").strip(),
        "order": query.get("order", "relaxed"),
        "breakdown": query.get("breakdown", "").strip(),
        "since": query.get("since", "").strip(),
        "until": query.get("until", "").strip(),
    }


def _query(form: dict[str, Any]) -> str:
    """The funnel as a query string: the address of this very question."""
    fields = [("step", step) for step in form["steps"]]
    fields += [(k, form[k]) for k in ("window", "order", "breakdown", "since", "until") if form[k]]
    return urlencode(fields)


def _spec(form: dict[str, Any]) -> dict[str, Any]:
    """The funnel as :class:`FunnelComparisonQuery` takes it (``POST /v1/journeys/funnels``;
    as the CLI takes a window: '14d', '12h', '30m', '2w', '90' seconds, else ISO 8601)."""
    spec: dict[str, Any] = {
        "steps": [{"event": step} for step in form["steps"]],
        "order": form["order"],
    }
    if form["window"]:
        spec["window"] = short_span(form["window"])
    if form["breakdown"] and form["breakdown"] != "none":
        spec["breakdown"] = form["breakdown"]
    for key in ("since", "until"):
        if form[key]:
            spec[key] = form[key]
    return spec


def _whole(request: Request, name: str, default: int | None) -> int | None:
    text = request.query_params.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise FormError(
            N_("%(name)s: give a whole number, not %(text)s"), name=name, text=repr(text)
        ) from None


def _drop_off_request(request: Request) -> tuple[int, int] | None:
    """(step, offset) when the drop-offs of a step are asked for."""
    step = _whole(request, "dropoffs", None)
    if step is None:
        return None
    offset = _whole(request, "offset", 0) or 0
    if offset < 0:
        raise FormError(N_("offset: give 0 or more, not %(offset)s"), offset=offset)
    return step, offset


# -- the view ---------------------------------------------------------------------------------
def duration(seconds: float | None) -> str:
    """A time in the unit that reads best: '45 s', '12.5 min', '3.2 h', '14 d' (the CSV's
    form in every language; the page writes it in its own: ``Language.duration``)."""
    if seconds is None:
        return ""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{seconds:.0f} s"


def _label(step: StepCount) -> str:
    return f"{step.step} · {step.event}"


def _view(
    found: FunnelComparison,
    dropped: DropOffPage | None,
    offset: int,
    query: str,
    language: Language,
) -> dict[str, Any]:
    _ = language.gettext
    person, device = found.person, found.device
    steps = person.steps
    step_names = [_label(s) for s in steps]

    def took(seconds: float | None) -> Shown:
        return Shown(duration(seconds), language.duration(seconds))

    step_table = Table(
        "steps",
        _("Persons and devices per step"),
        [_("step"), _("event"), _("persons"), _("%% of step 1"), _("%% of previous"),
         _("dropped before"), _("median time from step 1"), _("devices"),
         _("devices %% of step 1")],
        [
            [
                s.step, s.event, s.units, percent(s.conversion, 1),
                percent(s.from_previous, 1), s.dropped, took(s.median_seconds),
                d.units, percent(d.conversion, 1),
            ]
            for s, d in zip(steps, device.steps, strict=True)
        ],
    )  # fmt: skip
    histogram = person.time_to_convert.histogram
    time_table = Table(
        "time_to_convert",
        _("Time to convert (step 1 to the last step)"),
        [_("time"), _("persons"), _("devices")],
        [
            [Shown(b.label, language.span(b.lower_seconds, b.upper_seconds)), b.units, d.units]
            for b, d in zip(histogram, device.time_to_convert.histogram, strict=True)
        ],
    )
    tables = [step_table, time_table]
    per_person, per_device = _("per person"), _("per device")
    data: dict[str, Any] = {
        "person": person,
        "device": device,
        "funnel_chart": bars(
            step_names,
            {
                per_person: [s.units for s in steps],
                per_device: [d.units for d in device.steps],
            },
        ),  # fmt: skip
        "time_chart": bars(
            [row[0].text for row in time_table.rows],
            {
                per_person: [row[1] for row in time_table.rows],
                per_device: [row[2] for row in time_table.rows],
            },
        ),  # fmt: skip
    }
    # Ten buckets side by side: slanted labels keep them apart on a narrow chart.
    data["time_chart"]["xAxis"]["axisLabel"] = {"interval": 0, "rotate": 30}
    if person.breakdown is not None:
        groups = person.groups

        def group(value: str | None) -> Shown:
            return Shown(_group_name(value), _group_label(language, person.breakdown, value))

        by = _breakdown(language, person.breakdown)
        group_table = Table(
            "breakdown",
            _("Persons per step by %(breakdown)s", breakdown=by),
            [_("group"), _("step"), _("event"), _("persons"), _("%% of step 1"),
             _("%% of previous"), _("dropped before"), _("median time from step 1"),
             _("median time to convert")],
            [
                [
                    group(g.value), s.step, s.event, s.units,
                    percent(s.conversion, 1), percent(s.from_previous, 1), s.dropped,
                    took(s.median_seconds), took(g.time_to_convert.median_seconds),
                ]
                for g in groups
                for s in g.steps
            ],
        )  # fmt: skip
        tables.append(group_table)
        data["breakdown_chart"] = bars(
            step_names,
            {group(g.value).text: [s.units for s in g.steps] for g in groups},
        )
    if dropped is not None:
        data["drop_offs"] = _drop_off_view(dropped, offset, steps, query, language)
        tables.append(data["drop_offs"]["table"])
    data["tables"] = {t.name: t for t in tables}
    return data


def _breakdown(language: Language, breakdown: str) -> str:
    """What a funnel is broken down by, in words: "channel", "trait city"."""
    if breakdown.startswith("trait:"):
        return language.gettext("trait %(key)s", key=breakdown.removeprefix("trait:"))
    return (
        language.translate(BREAKDOWN_NAMES[breakdown])
        if breakdown in BREAKDOWN_NAMES
        else breakdown
    )


def _group_name(value: str | None) -> str:
    return "(none)" if value is None else str(value)


def _group_label(language: Language, breakdown: str | None, value: str | None) -> str:
    """A breakdown group as the page shows it: a channel or an age group by its label."""
    if value is None:
        return labels.placeholder(language, "(none)")
    if breakdown == "channel":
        return labels.channel(language, value)
    if breakdown == "age_group":
        return labels.label(language, "age group", value)
    return str(value)


def _drop_off_view(
    page: DropOffPage, offset: int, steps: list[StepCount], query: str, language: Language
) -> dict[str, Any]:
    """One page of the people who reached a step and not the next, with paging links."""
    _ = language.gettext
    step, total = page.step, page.total
    table = Table(
        "dropoffs",
        _("Reached step %(step)s, not step %(next)s", step=step, next=step + 1),
        [_("person"), _("entered at"), _("reached step %(step)s at", step=step)],
        [[f"person:{u.person}", u.entered_at, u.reached_at] for u in page.units],
    )

    def at(start: int) -> str:
        return f"?{query}&{urlencode({'dropoffs': step, 'offset': start})}#drop-offs"

    return {
        "table": table,
        "step": step,
        "from_event": steps[step - 1].event,
        "to_event": steps[step].event,
        "total": total,
        "size": PAGE_SIZE,
        "first": offset + 1 if page.units else 0,
        "last": offset + len(page.units),
        "previous": at(max(offset - PAGE_SIZE, 0)) if offset > 0 else None,
        "next": at(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
        "csv": f"?{query}&{urlencode({'dropoffs': step, 'offset': offset, 'csv': 'dropoffs'})}",
    }
