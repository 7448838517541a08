"""The agent console: the assistant's queues per team with their waiting times, the
conversations handed over (and those with the assistant alone), one conversation beside the
customer's profile and the handover summary, a reply box whose messages reach the customer's
widget, closing with an outcome; and the assistant's figures (containment, handover rate per
intent, time to the first human response against its target).

Everything goes through the services of ``/v1/assistant`` (``tp.agents``, ``figures``); a
reply and a close are audited as the API audits them. The conversation's messages refresh
every three seconds (htmx, a fragment of this page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from touchpoints.assist.agents import audit_target
from touchpoints.assist.figures import figures
from touchpoints.assist.queries import AgentReplyIn, CloseIn
from touchpoints.errors import InvalidRequest, NotFound, TouchpointsError, status_of
from touchpoints.web.app import Shown, Table, csv_response
from touchpoints.web.charts import bars
from touchpoints.web.forms import form_fields
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.core import Touchpoints
    from touchpoints.web.app import Dashboard

ORDER = 88
NAV = (("/assistant", N_("Assistant")),)
PERMISSION = "assist"  # agents answer customers (access/roles.py)
OUTCOMES = {
    "resolved": N_("resolved"),
    "unresolved": N_("unresolved"),
    "abandoned": N_("abandoned"),
    "spam": N_("spam"),
}
STATES = {
    "bot": N_("with the assistant"),
    "queued": N_("waiting for a person"),
    "agent": N_("with a person"),
    "closed": N_("closed"),
}
_TRAITS = ("first_name", "last_name", "email", "phone", "city", "postal_code", "customer_number")


def routes(dashboard: Dashboard) -> list[Route]:
    async def console(request: Request, session: Session) -> Response:
        return await _page(dashboard, request, session)

    async def messages(request: Request, session: Session) -> Response:
        conversation = request.path_params["conversation_id"]
        try:
            detail = await run_in_threadpool(dashboard.tp.agents.detail, conversation)
        except TouchpointsError as exc:
            return Response(dashboard.language(request).explain(exc), status_of(exc))
        return dashboard.render(request, "assistant_messages.html", session, detail=detail)

    async def reply(request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        conversation = request.path_params["conversation_id"]
        try:
            text = AgentReplyIn(text=fields.get("text", "").strip() or "").text
        except ValueError:
            error = dashboard.language(request).gettext("Write a reply first.")
            return await _page(dashboard, request, session, error, 422, conversation)
        try:
            await run_in_threadpool(dashboard.tp.agents.reply, conversation, text, session.actor.id)
        except TouchpointsError as exc:
            error = dashboard.language(request).explain(exc)
            return await _page(dashboard, request, session, error, status_of(exc), conversation)
        target = audit_target(conversation)
        await dashboard.audit(request, session.actor.id, "assistant.reply", target)
        return RedirectResponse(f"/assistant?{urlencode({'conversation': conversation})}", 303)

    async def close(request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        conversation = request.path_params["conversation_id"]
        try:
            outcome = CloseIn.model_validate({"outcome": fields.get("outcome", "resolved")}).outcome
            found = await run_in_threadpool(
                dashboard.tp.agents.close, conversation, outcome, session.actor.id
            )
        except (TouchpointsError, ValueError) as exc:
            language = dashboard.language(request)
            error = language.explain(exc) if isinstance(exc, TouchpointsError) else str(exc)
            status = status_of(exc) if isinstance(exc, TouchpointsError) else 422
            return await _page(dashboard, request, session, error, status, conversation)
        target = audit_target(conversation, found.person)
        await dashboard.audit(request, session.actor.id, "assistant.close", target, outcome)
        return RedirectResponse(f"/assistant?{urlencode({'closed': conversation})}", 303)

    page = dashboard.page
    return [
        Route("/assistant", page(console, PERMISSION)),
        Route(
            "/assistant/conversations/{conversation_id:str}/messages", page(messages, PERMISSION)
        ),
        Route(
            "/assistant/conversations/{conversation_id:str}/reply",
            page(reply, PERMISSION),
            methods=["POST"],
        ),
        Route(
            "/assistant/conversations/{conversation_id:str}/close",
            page(close, PERMISSION),
            methods=["POST"],
        ),
    ]


async def _page(
    dashboard: Dashboard,
    request: Request,
    session: Session,
    error: str | None = None,
    status: int = 200,
    chosen: str | None = None,
) -> Response:
    language = dashboard.language(request)
    chosen = chosen or request.query_params.get("conversation") or None
    shown = request.query_params.get("show", "waiting")
    data = await run_in_threadpool(
        _data, dashboard.tp, chosen, shown, session.allows("analytics"), language
    )
    if data.pop("missing", False):
        error = error or language.gettext("That conversation is not here (any more).")
        status = 404 if status == 200 else status
    if (wanted := request.query_params.get("csv")) is not None:
        return csv_response(data["tables"], wanted, "assistant", language)
    if data.get("detail") is not None:
        person = data["detail"].conversation.person
        target = audit_target(chosen or "", person)
        await dashboard.audit(request, session.actor.id, "assistant.read", target, durable=False)
    return dashboard.render(
        request,
        "assistant.html",
        session,
        status_code=status,
        error=error,
        shown=shown,
        closed=request.query_params.get("closed"),
        outcomes={name: language.translate(label) for name, label in OUTCOMES.items()},
        states={name: language.translate(label) for name, label in STATES.items()},
        profiles=session.allows("profiles"),
        **data,
    )


def _data(
    tp: Touchpoints, chosen: str | None, shown: str, with_figures: bool, language: Language
) -> dict[str, Any]:
    agents = tp.agents
    listing = {"waiting": "open", "all": None, "closed": "closed"}.get(shown, "open")
    if shown == "waiting":
        found = [c for c in agents.listing("open").conversations if c.state != "bot"]
    else:
        found = agents.listing(listing).conversations
    data: dict[str, Any] = {
        "queues": agents.queues(),
        "conversations": found[-200:] if shown != "waiting" else found,
        "detail": None,
        "profile": None,
        "tables": {},
        "target": tp.assistant.settings.first_response_seconds,
    }
    if chosen:
        try:
            data["detail"] = agents.detail(chosen)
        except (NotFound, InvalidRequest):
            data["missing"] = True
        else:
            person = data["detail"].conversation.person
            if person is not None:
                data["profile"] = _profile(tp, int(person.removeprefix("person:")))
    if with_figures:
        data.update(_figures(tp, language))
    return data


def _profile(tp: Touchpoints, person: int) -> dict[str, Any] | None:
    """What the console shows of the customer beside the conversation."""
    try:
        profile = tp.profiles.get(person)
    except NotFound:
        return None
    traits = {name: profile.traits[name].value for name in _TRAITS if name in profile.traits}
    return {"person": profile.person, "traits": traits, "computed": profile.computed}


def _figures(tp: Touchpoints, language: Language) -> dict[str, Any]:
    _ = language.gettext
    found = figures(tp.assistant.store, 30, tp.assistant.settings.first_response_seconds)
    table = Table(
        "handover",
        _("Handover rate by intent (last 30 days)"),
        [_("intent"), _("conversations"), _("handed over"), _("handover rate")],
        [
            [Shown(row.intent, row.intent), row.conversations, row.handed_over, row.handover_rate]
            for row in found.by_intent
        ],
    )
    rates = [round(100 * (row.handover_rate or 0), 1) for row in found.by_intent]
    chart = bars([row.intent for row in found.by_intent], {_("handover rate (%%)"): rates}, True)
    return {
        "figures": found,
        "handover_table": table,
        "handover_chart": chart,
        "tables": {"handover": table},
        "chart_height": 80 + 28 * max(1, len(found.by_intent)),
    }
