"""Audiences: every audience with its size; a builder (a definition in YAML or JSON, snippets
for each kind of condition, what a definition may name, and a preview count before saving);
each audience's condition, size over time (a chart, its table and CSV), destinations, and,
for sessions with ``profiles``, its members and their entries and exits (each person listed
recorded as ``profile.list``). Admins define, change, delete, send to a destination.

Everything goes through ``tp.audiences`` (the service of ``/v1/audiences``); changes are
audited as the API audits them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
import yaml
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from touchpoints.activate.audiences.conditions import KINDS, PREDICTIONS, valid_key
from touchpoints.activate.audiences.results import Audience
from touchpoints.activate.audiences.service import loaded
from touchpoints.errors import InvalidRequest, NotFound, TouchpointsError, status_of
from touchpoints.web.app import Table, csv_response
from touchpoints.web.charts import lines
from touchpoints.web.forms import form_fields
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 93
NAV = (("/audiences", N_("Audiences")),)
PERMISSION = "analytics"  # sizes and definitions (access/roles.py); members need profiles
MEMBERS = 50
HISTORY = 50
DAYS = 90
_ACTIONS = ("change", "delete", "send", "send-file", "stop-sending", "export-now")

STARTER = """\
key: high_intent
name: High intent, no order
description: Saved a configuration twice in 30 days and never ordered
condition:
  and:
    - event: Configuration Saved
      at_least: 2
      within_days: 30
    - not:
        event: Order Completed
"""
# One snippet per kind of condition, for the builder's buttons.
SNIPPETS = {
    "and": "and:\n  - event: Product Viewed\n  - consent: marketing\n",
    "or": "or:\n  - event: Order Completed\n  - event: Quote Requested\n",
    "not": "not:\n  event: Order Completed\n",
    "event": "event: Configuration Saved\nat_least: 2\nwithin_days: 30\n"
    "where:\n  model: Nordwind E3\n",
    "trait": "trait: city\nequals: Hamburg\n",
    "computed_trait": "computed_trait: orders_90d\ngte: 1\n",
    "prediction": "prediction: churn_risk\ngte: 0.5\n",
    "journey_stage": "journey_stage: consideration\ncurrent: true\n",
    "consent": "consent: marketing\ngranted: true\n",
    "audience": "audience: high_intent\n",
}
assert tuple(SNIPPETS) == KINDS


def routes(dashboard: Dashboard) -> list[Route]:
    async def audiences(request: Request, session: Session) -> Response:
        return await _list(dashboard, request, session)

    async def create(request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        text = fields.get("definition", "")
        try:
            made = await run_in_threadpool(_create, dashboard, text)
        except TouchpointsError as exc:
            error = dashboard.language(request).explain(exc)
            return await _list(dashboard, request, session, text, error, status_of(exc))
        target = f"audience:{made.key}"
        await dashboard.audit(
            request, session.actor.id, "audience.create", target, f"{made.size} members"
        )
        return RedirectResponse(f"/audiences/{made.key}?done=create", status_code=303)

    async def preview(request: Request, session: Session) -> Response:
        """The builder's count (an htmx fragment): nothing is saved."""
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        language = dashboard.language(request)
        try:
            found = await run_in_threadpool(_preview, dashboard, fields.get("definition", ""))
        except TouchpointsError as exc:
            # 200: htmx puts only a success's answer in the page, and the mistake is the answer.
            return HTMLResponse(_fragment("preview-error", "error", language.explain(exc)))
        text = language.gettext(
            "%(size)s of %(persons)s persons are in it now.",
            size=language.number(found.size),
            persons=language.number(found.persons),
        )
        return HTMLResponse(_fragment("preview-count", "notice", text, found.size))

    async def audience(request: Request, session: Session) -> Response:
        return await _show(dashboard, request, session)

    async def change(request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        key, action = request.path_params["key"], request.path_params["action"]
        try:
            line = await run_in_threadpool(_change, dashboard, key, action, fields)
        except TouchpointsError as exc:
            error = dashboard.language(request).explain(exc)
            text = fields.get("definition") if action == "change" else None
            return await _show(dashboard, request, session, error, status_of(exc), text)
        await dashboard.audit(request, session.actor.id, *line)
        if action == "delete":
            return RedirectResponse("/audiences?done=delete", status_code=303)
        if action == "send" and line[2] and ", file" in line[2]:
            action = "send-file"
        return RedirectResponse(f"/audiences/{key}?done={action}", status_code=303)

    return [
        Route("/audiences", dashboard.page(audiences, PERMISSION)),
        Route("/audiences/new", dashboard.page(create, "admin"), methods=["POST"]),
        Route("/audiences/preview", dashboard.page(preview, PERMISSION), methods=["POST"]),
        Route("/audiences/{key:str}", dashboard.page(audience, PERMISSION)),
        Route(
            "/audiences/{key:str}/{action:str}", dashboard.page(change, "admin"), methods=["POST"]
        ),
    ]


def _fragment(element: str, kind: str, text: str, size: int | None = None) -> str:
    """The preview's answer: a paragraph htmx puts in the builder (text escaped)."""
    from markupsafe import escape

    data = f' data-size="{size}"' if size is not None else ""
    role = "alert" if kind == "error" else "status"
    return f'<p id="{element}" class="{kind}" role="{role}"{data}>{escape(text)}</p>'


# -- the service, from the forms ---------------------------------------------------------------
def _create(dashboard: Dashboard, text: str) -> Audience:
    return dashboard.tp.audiences.create(loaded(text))


def _preview(dashboard: Dashboard, text: str) -> Any:
    data = loaded(text)
    if isinstance(data, dict) and "condition" not in data:
        data = {"condition": data}
    return dashboard.tp.audiences.preview(data)


def _change(
    dashboard: Dashboard, key: str, action: str, fields: dict[str, str]
) -> tuple[str, str, str | None]:
    """What the form asks of the audience ``key``; the audit line (action, target, detail)."""
    service = dashboard.tp.audiences
    target = f"audience:{key}"
    if action == "change":
        changed = service.change(key, loaded(fields.get("definition", "")))
        return "audience.change", target, f"{changed.size} members"
    if action == "delete":
        service.remove(key)
        return "audience.delete", target, None
    if action in ("send", "stop-sending", "export-now"):
        try:
            destination = int(fields.get("destination", ""))
        except ValueError:
            raise InvalidRequest("destination: choose a destination") from None
        if action == "send":
            schedule = fields.get("schedule", "").strip() or None
            linked = service.link(key, destination, fields.get("mode") or None, schedule)
            mode = next(d.mode for d in linked.destinations if d.destination == destination)
            detail = f"destination {destination}, {mode}" + (f", {schedule}" if schedule else "")
            return "audience.link", target, detail
        if action == "export-now":
            run = service.export_now(key, destination)
            return "audience.export", target, f"destination {destination}, {run.rows} rows"
        service.unlink(key, destination)
        return "audience.unlink", target, f"destination {destination}"
    raise NotFound(f"no such change to an audience: {action!r}")


# -- the pages ---------------------------------------------------------------------------------
async def _list(
    dashboard: Dashboard,
    request: Request,
    session: Session,
    text: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    data = await run_in_threadpool(_listing, dashboard, session.allows("admin"))
    done = request.query_params.get("done")
    return dashboard.render(
        request,
        "audiences.html",
        session,
        status_code=status,
        **data,
        definition=text if text is not None else STARTER,
        error=error,
        done=done if done in ("delete",) else None,
        admin=session.allows("admin"),
        snippets=SNIPPETS,
    )


def _listing(dashboard: Dashboard, admin: bool) -> dict[str, Any]:
    tp = dashboard.tp
    data: dict[str, Any] = {"audiences": tp.audiences.listing().audiences}
    if admin:
        data["names"] = {
            "events": dashboard.event_names()[:40],
            "computed_traits": [t.key for t in tp.traits.listing().traits],
            "audience_keys": [a.key for a in data["audiences"]],
            "stages": [stage.name for stage in tp.journeys.model.stages],
            "consent": list(tp.settings.consent_categories),
            "predictions": list(PREDICTIONS),
        }
    return data


async def _show(
    dashboard: Dashboard,
    request: Request,
    session: Session,
    error: str | None = None,
    status: int = 200,
    text: str | None = None,
) -> Response:
    key = request.path_params["key"]
    language = dashboard.language(request)
    if not valid_key(key):
        return _missing(dashboard, request, session, key, language)
    try:
        data = await run_in_threadpool(_details, dashboard, key, session.allows("profiles"))
    except NotFound:
        return _missing(dashboard, request, session, key, language)
    view = _chart(data["sizes"], language)
    if (wanted := request.query_params.get("csv")) is not None:
        return csv_response(view["tables"], wanted, f"audience-{key}", language)
    for member in data.get("members", []):
        await dashboard.audit(
            request, session.actor.id, "profile.list", member.person, f"audience {key}",
            durable=False,
        )  # fmt: skip
    done = request.query_params.get("done")
    audience: Audience = data["audience"]
    shown = yaml.safe_dump(
        {
            "key": audience.key,
            "name": audience.name,
            **({"description": audience.description} if audience.description else {}),
            "condition": audience.condition,
        },
        sort_keys=False,
        allow_unicode=True,
    )
    return dashboard.render(
        request,
        "audience.html",
        session,
        status_code=status,
        **data,
        **view,
        definition=text if text is not None else shown,
        condition_json=orjson.dumps(audience.condition, option=orjson.OPT_INDENT_2).decode(),
        error=error,
        done=done if done in ("create", *_ACTIONS) else None,
        admin=session.allows("admin"),
        persons=session.allows("profiles"),
        schedule_example="every 2 hours",  # the schedule's words are a grammar, not prose
        link=lambda person: "/people/" + quote(person, safe=":"),
    )


def _missing(
    dashboard: Dashboard, request: Request, session: Session, key: str, language: Language
) -> Response:
    message = language.gettext("There is no audience %(key)s.", key=key)
    return dashboard.render(request, "forbidden.html", session, status_code=404, message=message)


def _details(dashboard: Dashboard, key: str, with_persons: bool) -> dict[str, Any]:
    tp = dashboard.tp
    audience = tp.audiences.get(key)
    data: dict[str, Any] = {
        "audience": audience,
        "sizes": tp.audiences.sizes(key, DAYS).sizes,
        "destinations": tp.destinations.listing().destinations,
    }
    if with_persons:
        data["members"] = tp.audiences.members(key, MEMBERS).members
        data["history"] = tp.audiences.history(key, HISTORY).changes
    return data


def _chart(sizes: list[Any], language: Language) -> dict[str, Any]:
    """Size at the end of each day, with the days between filled (a day without a row kept
    the size before it), and entries and exits per day: a chart and its table."""
    _ = language.gettext
    days: list[Any] = []
    for point in sizes:
        while days and days[-1][0] + timedelta(days=1) < point.day:
            previous = days[-1]
            days.append((previous[0] + timedelta(days=1), previous[1], 0, 0))
        days.append((point.day, point.size, point.entered, point.exited))
    table = Table(
        "sizes",
        _("Members at the end of each day, entries and exits"),
        [_("day"), _("members"), _("entered"), _("exited")],
        [list(row) for row in days],
    )
    option = lines(
        [language.date(row[0]) for row in days],
        {
            _("members"): [row[1] for row in days],
            _("entered"): [row[2] for row in days],
            _("exited"): [row[3] for row in days],
        },
    )
    return {"tables": {"sizes": table}, "chart": option, "table": table}
