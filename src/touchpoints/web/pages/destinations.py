"""Destinations: where activation sends, for those who watch deliveries. Every destination
with its state, messages per state and success rate (``analytics``); the latest attempts and
the dead letters, which name persons by number, for sessions with ``profiles``; disabling,
enabling and replaying dead letters for admins.

Every change goes through ``tp.destinations`` (the service of ``/v1/destinations``) and is
audited as the API audits it (``destination.disable``, ``destination.enable``,
``destination.replay``). Secrets are never on the page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from touchpoints.errors import InvalidRequest, TouchpointsError, status_of
from touchpoints.web.forms import form_fields
from touchpoints.web.i18n import N_
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 92
NAV = (("/destinations", N_("Destinations")),)
PERMISSION = "analytics"  # the destinations and their figures (access/roles.py)
_ACTIONS = ("disable", "enable", "replay")


def routes(dashboard: Dashboard) -> list[Route]:
    async def destinations(request: Request, session: Session) -> Response:
        return await _page(dashboard, request, session)

    async def change(request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        action = request.path_params["action"]
        destination = request.path_params["destination_id"]
        try:
            detail = await run_in_threadpool(_change, dashboard, action, destination)
        except TouchpointsError as exc:
            error = dashboard.language(request).explain(exc)
            return await _page(dashboard, request, session, error, status_of(exc))
        target = f"destination:{destination}"
        await dashboard.audit(request, session.actor.id, f"destination.{action}", target, detail)
        done = urlencode({"done": action, "destination": destination})
        return RedirectResponse(f"/destinations?{done}", status_code=303)

    return [
        Route("/destinations", dashboard.page(destinations, PERMISSION)),
        Route(
            "/destinations/{destination_id:int}/{action:str}",
            dashboard.page(change, "admin"),
            methods=["POST"],
        ),
    ]


def _change(dashboard: Dashboard, action: str, destination: int) -> str | None:
    service = dashboard.tp.destinations
    if action == "disable":
        service.disable(destination, "disabled on the Destinations page")
        return None
    if action == "enable":
        service.enable(destination)
        return None
    if action == "replay":
        return f"{service.replay(destination, []).replayed} messages"
    raise InvalidRequest(f"no such change to a destination: {action!r}")


async def _page(
    dashboard: Dashboard,
    request: Request,
    session: Session,
    error: str | None = None,
    status: int = 200,
) -> Response:
    data = await run_in_threadpool(_data, dashboard, session.allows("profiles"))
    done = request.query_params.get("done")
    return dashboard.render(
        request,
        "destinations.html",
        session,
        status_code=status,
        **data,
        error=error,
        done=done if done in _ACTIONS else None,
        done_destination=request.query_params.get("destination", ""),
        admin=session.allows("admin"),
    )


def _data(dashboard: Dashboard, with_persons: bool) -> dict[str, Any]:
    service = dashboard.tp.destinations
    data: dict[str, Any] = {"destinations": service.listing().destinations, "persons": with_persons}
    if with_persons:
        data["attempts"] = service.attempts(None, 50).attempts
        data["dead"] = service.messages(None, "dead", 50).messages
    return data
