"""Personalisation: the placements a website or an app asks ``POST /v1/decide`` about, their
rules (conditions in the audience language, the content each shows) and how the persons shown
the rules' content converted against the control group held out (the uplift, with its 95%
interval). Aggregate figures only (``analytics``): no person is named.

Everything is read through ``tp.placements``, the service of ``/v1/placements``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from touchpoints.web.i18n import N_
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 96
NAV = (("/personalisation", N_("Personalisation")),)
PERMISSION = "analytics"  # definitions and counts (access/roles.py)


def routes(dashboard: Dashboard) -> list[Route]:
    async def personalisation(request: Request, session: Session) -> Response:
        placements = await run_in_threadpool(_data, dashboard)
        return dashboard.render(request, "personalisation.html", session, placements=placements)

    return [Route("/personalisation", dashboard.page(personalisation, PERMISSION))]


def _data(dashboard: Dashboard) -> list[dict[str, Any]]:
    service = dashboard.tp.placements
    found = []
    for placement in service.listing().placements:
        rules = [
            {
                "key": rule["key"],
                "name": rule.get("name") or "",
                "condition": _text(rule.get("condition")),
                "content": _text(rule["content"]),
                "score": _text(rule.get("score")),
                "weight": rule.get("weight"),
            }
            for rule in placement.rules
        ]
        found.append(
            {
                "placement": placement,
                "default": _text(placement.default),
                "rules": rules,
                "uplift": service.uplift(placement.key),
            }
        )
    return found


def _text(value: Any) -> str:
    """A condition, a content or a score as compact JSON (empty for none)."""
    return "" if value is None else orjson.dumps(value).decode()
