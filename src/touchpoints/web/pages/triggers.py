"""Triggers: every trigger with what it does and how often it fired (``analytics``); for
admins, a form to write a new one or change one (YAML or JSON, its mistakes shown with their
place), and to delete one; for sessions with ``profiles``, the recent firings, which name
persons by number (each person listed recorded as ``profile.list``).

Everything goes through ``tp.triggers`` (the service of ``/v1/triggers``); changes are
audited as the API audits them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import yaml
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from touchpoints.activate.audiences.conditions import valid_key
from touchpoints.activate.audiences.service import loaded
from touchpoints.activate.triggers.definition import (
    AudienceWhen,
    DelayStep,
    EventWhen,
    SendStep,
    TriggerDefinition,
    duration_text,
)
from touchpoints.activate.triggers.results import Trigger
from touchpoints.errors import NotFound, TouchpointsError, status_of
from touchpoints.web.forms import form_fields
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 94
NAV = (("/triggers", N_("Triggers")),)
PERMISSION = "analytics"  # definitions and counts (access/roles.py); firings need profiles
FIRINGS = 50

STARTER = """\
key: cart_reminder
name: Cart reminder
when:
  event: Product Added
  where:
    price: {gte: 100}
steps:
  - delay: 30m
    check:
      not:
        event: Order Completed
        within_days: 1
  - send: 1
    event: Cart Reminder
limit:
  times: 1
  per: 7d
"""


def routes(dashboard: Dashboard) -> list[Route]:
    async def triggers(request: Request, session: Session) -> Response:
        return await _page(dashboard, request, session)

    async def save(request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        text, original = fields.get("definition", ""), fields.get("original", "")
        try:
            saved = await run_in_threadpool(_save, dashboard, text, original)
        except TouchpointsError as exc:
            error = dashboard.language(request).explain(exc)
            return await _page(dashboard, request, session, text, original, error, status_of(exc))
        action = "trigger.change" if original else "trigger.create"
        steps = len(saved.definition.get("steps", []))
        detail = f"{steps} steps, {'enabled' if saved.enabled else 'disabled'}"
        await dashboard.audit(request, session.actor.id, action, f"trigger:{saved.key}", detail)
        done = "change" if original else "create"
        return RedirectResponse(f"/triggers?done={done}&key={saved.key}", status_code=303)

    async def delete(request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        key = request.path_params["key"]
        try:
            await run_in_threadpool(dashboard.tp.triggers.remove, key)
        except TouchpointsError as exc:
            error = dashboard.language(request).explain(exc)
            return await _page(dashboard, request, session, None, "", error, status_of(exc))
        await dashboard.audit(request, session.actor.id, "trigger.delete", f"trigger:{key}")
        return RedirectResponse("/triggers?done=delete", status_code=303)

    return [
        Route("/triggers", dashboard.page(triggers, PERMISSION)),
        Route("/triggers/save", dashboard.page(save, "admin"), methods=["POST"]),
        Route("/triggers/{key:str}/delete", dashboard.page(delete, "admin"), methods=["POST"]),
    ]


def _save(dashboard: Dashboard, text: str, original: str) -> Trigger:
    data = loaded(text)
    service = dashboard.tp.triggers
    if original:
        if not valid_key(original):
            raise NotFound(f"no trigger {original}")
        return service.change(original, data)
    return service.create(data)


async def _page(
    dashboard: Dashboard,
    request: Request,
    session: Session,
    text: str | None = None,
    original: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    with_persons = session.allows("profiles")
    data = await run_in_threadpool(_data, dashboard, with_persons)
    for firing in data.get("firings", []):
        await dashboard.audit(
            request, session.actor.id, "profile.list", firing.person, "trigger firings",
            durable=False,
        )  # fmt: skip
    editing = request.query_params.get("edit", "")
    if text is None:
        found = next((t for t in data["triggers"] if t.key == editing), None)
        if found is not None:
            original = found.key
            text = yaml.safe_dump(found.definition, sort_keys=False, allow_unicode=True)
        else:
            text = STARTER
    done = request.query_params.get("done")
    language = dashboard.language(request)
    summaries = {t.key: summary(t.definition, language) for t in data["triggers"]}
    return dashboard.render(
        request,
        "triggers.html",
        session,
        status_code=status,
        **data,
        definition=text,
        original=original,
        error=error,
        done=done if done in ("create", "change", "delete") else None,
        done_key=request.query_params.get("key", ""),
        admin=session.allows("admin"),
        persons=with_persons,
        summaries=summaries,
        link=lambda person: "/people/" + quote(person, safe=":"),
    )


def _data(dashboard: Dashboard, with_persons: bool) -> dict[str, Any]:
    tp = dashboard.tp
    data: dict[str, Any] = {
        "triggers": tp.triggers.listing().triggers,
        "destinations": tp.destinations.listing().destinations,
    }
    if with_persons:
        data["firings"] = tp.triggers.firings(None, None, FIRINGS).firings
    return data


def summary(definition: dict[str, Any], language: Language) -> str:
    """What a trigger does, in a line, in the page's language (the API's ``summary`` is
    English)."""
    _ = language.gettext
    found = TriggerDefinition.model_validate(definition)
    when = found.when
    if isinstance(when, EventWhen):
        names = when.event if isinstance(when.event, str) else ", ".join(when.event)
        cause = _("event %(names)s", names=names)
    elif isinstance(when, AudienceWhen):
        if when.on == "entered":
            cause = _("enters audience %(key)s", key=when.audience)
        else:
            cause = _("exits audience %(key)s", key=when.audience)
    else:
        cause = _("enters journey stage %(stage)s", stage=when.journey_stage)
    steps = []
    for step in found.steps:
        if isinstance(step, SendStep):
            steps.append(_("send to destination %(id)s", id=step.send))
        elif isinstance(step, DelayStep):
            wait = duration_text(step.delay)
            if step.check is not None:
                steps.append(_("wait %(duration)s, then check", duration=wait))
            else:
                steps.append(_("wait %(duration)s", duration=wait))
        else:
            steps.append(_("set trait %(trait)s", trait=step.set_trait))
    line = f"{cause} → {'; '.join(steps)}"
    if found.limit is not None:
        cap = _(
            "at most %(times)s per %(duration)s",
            times=found.limit.times,
            duration=duration_text(found.limit.per),
        )
        line += f" ({cap})"
    return line
