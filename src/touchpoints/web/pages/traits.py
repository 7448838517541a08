"""Computed traits: every computed trait with its definition and how many persons have a
value; for sessions with ``profiles``, a trait's largest values by person (each person
listed recorded as ``profile.list``); admins define, change and delete them.

Everything goes through ``tp.traits`` (the service of ``/v1/traits/computed``); changes are
audited as the API audits them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from touchpoints.activate.audiences.conditions import valid_key
from touchpoints.activate.audiences.service import loaded
from touchpoints.errors import NotFound, TouchpointsError, status_of
from touchpoints.web.forms import form_fields
from touchpoints.web.i18n import N_
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 94
NAV = (("/traits", N_("Computed traits")),)
PERMISSION = "analytics"  # definitions and counts (access/roles.py); values need profiles
VALUES = 20

STARTER = """\
key: configurations_30d
name: Configurations saved in the last 30 days
kind: count
event: Configuration Saved
within_days: 30
"""


def routes(dashboard: Dashboard) -> list[Route]:
    async def traits(request: Request, session: Session) -> Response:
        return await _page(dashboard, request, session)

    async def create(request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        text = fields.get("definition", "")
        try:
            made = await run_in_threadpool(lambda: dashboard.tp.traits.create(loaded(text)))
        except TouchpointsError as exc:
            error = dashboard.language(request).explain(exc)
            return await _page(dashboard, request, session, text, error, status_of(exc))
        await dashboard.audit(
            request, session.actor.id, "trait.create", f"trait:{made.key}", made.kind
        )
        return RedirectResponse(f"/traits?show={made.key}", status_code=303)

    async def change(request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        key, action = request.path_params["key"], request.path_params["action"]
        service = dashboard.tp.traits
        try:
            if action == "delete":
                await run_in_threadpool(service.remove, key)
            elif action == "change":
                text = fields.get("definition", "")
                await run_in_threadpool(lambda: service.change(key, loaded(text)))
            else:
                raise NotFound(f"no such change to a computed trait: {action!r}")
        except TouchpointsError as exc:
            error = dashboard.language(request).explain(exc)
            return await _page(dashboard, request, session, None, error, status_of(exc))
        await dashboard.audit(request, session.actor.id, f"trait.{action}", f"trait:{key}")
        target = "/traits" if action == "delete" else f"/traits?show={key}"
        return RedirectResponse(target, status_code=303)

    return [
        Route("/traits", dashboard.page(traits, PERMISSION)),
        Route("/traits/new", dashboard.page(create, "admin"), methods=["POST"]),
        Route("/traits/{key:str}/{action:str}", dashboard.page(change, "admin"), methods=["POST"]),
    ]


async def _page(
    dashboard: Dashboard,
    request: Request,
    session: Session,
    text: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    show = request.query_params.get("show")
    show = show if show and valid_key(show) else None
    persons = session.allows("profiles")
    data = await run_in_threadpool(_data, dashboard, show, persons)
    for value in data.get("values", []):
        await dashboard.audit(
            request, session.actor.id, "profile.list", value.person, f"trait {show}",
            durable=False,
        )  # fmt: skip
    return dashboard.render(
        request,
        "traits.html",
        session,
        status_code=status,
        **data,
        show=show,
        definition=text if text is not None else STARTER,
        error=error,
        admin=session.allows("admin"),
        persons=persons,
        link=lambda person: "/people/" + quote(person, safe=":"),
        dumps=lambda value: orjson.dumps(value).decode(),
    )


def _data(dashboard: Dashboard, show: str | None, persons: bool) -> dict[str, Any]:
    service = dashboard.tp.traits
    data: dict[str, Any] = {"traits": service.listing().traits}
    if show is not None and persons and any(t.key == show for t in data["traits"]):
        found = service.values(show, VALUES)
        data["values"], data["total"] = found.values, found.total
    return data
