"""A demo web site with the chat widget, at ``/assistant/demo`` when ``assistant_demo_site``
is on: a car maker's page (the demo's Nordwind) that embeds ``widget.js`` as any site
would, and a sign-in that takes any user id and signs it as a real site's server does
(``user_hash``, with ``assistant_identity_secret``). Anyone may sign in as anyone here: it
is for demos on fictitious data, and off by default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from touchpoints.assist.verification import user_hash
from touchpoints.web.forms import form_fields

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

COOKIE = "tp_demo_user"


def routes(dashboard: Dashboard) -> list[BaseRoute]:
    if not dashboard.tp.settings.assistant_demo_site:
        return []
    keys: list[str] = []

    def write_key() -> str:
        """An in-memory write key for the demo page's widget, made once."""
        if not keys:
            keys.append(dashboard.tp.keys.add_ephemeral("write", "assistant-demo"))
        return keys[0]

    async def site(request: Request) -> Response:
        secret = dashboard.tp.settings.assistant_identity_secret
        user = request.cookies.get(COOKIE) if secret else None
        return dashboard.render(
            request,
            "assistant_demo.html",
            None,
            key=write_key(),
            user=user,
            user_hash=user_hash(secret, user) if secret and user else None,
            can_sign_in=bool(secret),
        )

    async def sign_in(request: Request) -> Response:
        fields = await form_fields(request)
        user = fields.get("user_id", "").strip()[:200]
        response = RedirectResponse("/assistant/demo", status_code=303)
        if user:
            response.set_cookie(COOKIE, user, httponly=True, samesite="strict", path="/assistant")
        return response

    async def sign_out(request: Request) -> Response:
        response = RedirectResponse("/assistant/demo", status_code=303)
        response.delete_cookie(COOKIE, path="/assistant")
        return response

    return [
        Route("/assistant/demo", site),
        Route("/assistant/demo/sign-in", sign_in, methods=["POST"]),
        Route("/assistant/demo/sign-out", sign_out, methods=["POST"]),
    ]
