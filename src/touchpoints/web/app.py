"""The dashboard: server-rendered pages at ``/`` on the API's port.

Pages call the same services as the API (``tp.journeys.run(query)`` with the typed questions
of :mod:`touchpoints.journeys.queries`, ``tp.profiles``, ``tp.identity``, …) and read the
typed answers: no second query path. A question asked wrongly is answered with its reason
and the status of its kind (:mod:`touchpoints.errors`), as the API answers it.

Each chart is an Apache ECharts option (:mod:`touchpoints.web.charts`) drawn by
``static/app.js``; its numbers are also a table on the page and a CSV download
(``?csv=<table>``). Nothing is loaded from the internet: ECharts and
htmx are vendored under ``static/vendor`` with their licences.

Each page is a module of :mod:`touchpoints.web.pages` (found at start, in ``ORDER``), with its
routes and its place in the navigation. Access: a login form takes a read or admin key and
sets an http-only, same-site session cookie (:mod:`touchpoints.web.sessions`); without it
every page redirects to the login.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, quote, urlencode

from markupsafe import Markup
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from touchpoints.journeys.queries import Answers
from touchpoints.journeys.spec import validated
from touchpoints.web.sessions import COOKIE, LIFETIME_SECONDS, LoginRefused, Session, Sessions

if TYPE_CHECKING:
    from touchpoints.core import Touchpoints

R = TypeVar("R", bound=BaseModel)

HERE = Path(__file__).parent
Handler = Callable[[Request, Session], Awaitable[Response]]


@dataclass
class Table:
    """A chart's numbers: shown under the chart and offered as CSV."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue()


def csv_response(tables: dict[str, Table], wanted: str, page: str) -> Response:
    """The table ``wanted`` of a page as a CSV download, or 404 naming the tables there are."""
    table = tables.get(wanted)
    if table is None:
        known = ", ".join(sorted(tables))
        return PlainTextResponse(f"csv: no table {wanted!r} on this page; give one of {known}", 404)
    return PlainTextResponse(
        table.csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{page}-{table.name}.csv"'},
    )


async def form_fields(request: Request) -> dict[str, str]:
    """An url-encoded form's fields (the first value of each)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def _chart(option: dict[str, Any]) -> Markup:
    """An ECharts option as an HTML attribute value (app.js draws it)."""
    return Markup.escape(json.dumps(option, separators=(",", ":")))


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=str(HERE / "templates"))
    found.env.filters["number"] = _number
    found.env.filters["chart"] = _chart
    return found


def page_modules() -> list[Any]:
    """The modules of ``touchpoints.web.pages``, in their ``ORDER``."""
    from touchpoints.web import pages

    found = [
        importlib.import_module(f"{pages.__name__}.{info.name}")
        for info in pkgutil.iter_modules(pages.__path__)
        if not info.name.startswith("_")
    ]
    return sorted(found, key=lambda module: module.ORDER)


class Dashboard:
    def __init__(self, tp: Touchpoints) -> None:
        self.tp = tp
        self.sessions = Sessions(tp.keys)
        self.templates = templates()
        self.pages = page_modules()
        self.nav = [entry for module in self.pages for entry in module.NAV]

    def routes(self) -> list[BaseRoute]:
        return [
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            *[route for module in self.pages for route in module.routes(self)],
        ]

    # -- access ----------------------------------------------------------------------------
    def page(
        self, handler: Handler, admin: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` for a signed-in session (with ``admin``, an admin key's); otherwise a
        redirect to the login (or 403 for a read key on an admin page)."""

        async def page(request: Request) -> Response:
            session = self.sessions.get(request.cookies.get(COOKIE))
            if session is None:
                if request.headers.get("hx-request"):  # a fragment: reload into the login
                    return Response(status_code=401, headers={"HX-Redirect": "/login"})
                wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(wanted)}", status_code=303)
            if admin and not session.admin:
                return PlainTextResponse(
                    "this page needs an admin key: sign out and sign in with one", 403
                )
            return await handler(request, session)

        return page

    async def ask(self, kind: type[Answers[R]], params: dict[str, Any]) -> R:
        """A journey question from a page's fields, checked (an
        :class:`~touchpoints.journeys.spec.AnalysisError` names the field) and answered by
        ``Journeys.run`` in a worker thread."""
        given = {k: v for k, v in params.items() if v is not None}
        question = validated(kind, given)  # type: ignore[type-var]
        return await run_in_threadpool(self.tp.journeys.run, question)  # type: ignore[no-any-return]

    def event_names(self) -> list[str]:
        """The event names there are, most frequent first (for the event fields'
        suggestions; blocking: call it in a worker thread)."""
        return [name for name in self.tp.events.count_by("event") if name]

    def csrf_ok(self, session: Session, fields: dict[str, str]) -> bool:
        """Whether a posted form carries this session's form token."""
        return fields.get("csrf") == session.csrf

    async def login(self, request: Request) -> Response:
        target = _safe_next(request.query_params.get("next"))
        if request.method == "GET":
            return self.render(request, "login.html", None, next=target, error=None)
        fields = await form_fields(request)
        try:
            session = self.sessions.login(fields.get("key", ""))
        except LoginRefused as exc:
            return self.render(
                request, "login.html", None, next=target, error=str(exc), status_code=401
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            session.token,
            max_age=LIFETIME_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def logout(self, request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        session = self.sessions.get(token)
        fields = await form_fields(request)
        if session is not None and not self.csrf_ok(session, fields):
            return PlainTextResponse("the form is out of date: reload the page", 403)
        self.sessions.logout(token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # -- rendering -------------------------------------------------------------------------
    def render(
        self,
        request: Request,
        name: str,
        session: Session | None,
        status_code: int = 200,
        **context: Any,
    ) -> Response:
        kept = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "csv"])
        return self.templates.TemplateResponse(
            request,
            name,
            {
                "session": session,
                "nav": self.nav,
                "path": request.url.path,
                # A table's CSV link keeps the page's question: ``{{ csv_link }}<table>``.
                "csv_link": f"?{kept}&csv=" if kept else "?csv=",
                **context,
            },
            status_code=status_code,
            headers={"Cache-Control": "no-store"},
        )


def _safe_next(target: str | None) -> str:
    """Where to go after the login: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
