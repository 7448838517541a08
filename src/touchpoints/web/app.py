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
routes and its place in the navigation. Access: the sign-in form takes a user's name and
password or a read or admin key (:mod:`touchpoints.web.signin`) and sets an http-only,
same-site session cookie (:mod:`touchpoints.web.sessions`); without it every page redirects
to the login. Each page names the permission it needs (``dashboard.page(handler,
"profiles")``; :mod:`touchpoints.access.roles`): a session without it gets 403, and the
navigation shows only what the session may open.

Every page speaks English and German (:mod:`touchpoints.web.i18n`): one Jinja environment per
language, with that language's catalog installed (``jinja2.ext.i18n``, new-style gettext) and
its number and date filters; ``Dashboard.language(request)`` gives the page modules the same
language for the texts they make.
"""

from __future__ import annotations

import csv
import hmac
import importlib
import io
import json
import pkgutil
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

import jinja2
from markupsafe import Markup
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from touchpoints.access.lockout import SignInLimiter
from touchpoints.access.roles import checked
from touchpoints.errors import InvalidRequest
from touchpoints.journeys.queries import Answers
from touchpoints.journeys.spec import validated
from touchpoints.times import iso
from touchpoints.web import demo_site, i18n, labels, signin
from touchpoints.web.i18n import N_, Explained, Language
from touchpoints.web.sessions import COOKIE, LoginTokens, Session, Sessions

if TYPE_CHECKING:
    from touchpoints.core import Touchpoints

R = TypeVar("R", bound=BaseModel)

HERE = Path(__file__).parent
Handler = Callable[[Request, Session], Awaitable[Response]]


class FormError(Explained, InvalidRequest):
    """A field of a page's form that cannot be read (422), said in the reader's language:
    ``FormError(N_("%(name)s: give a whole number, not %(text)s"), name=…, text=…)``."""


@dataclass(frozen=True)
class Shown:
    """A table cell that the page shows as ``text`` and the CSV holds as ``value``: a channel's
    label in the page's language over its name, a duration in words over its plain form."""

    value: Any
    text: str


@dataclass
class Table:
    """A chart's numbers: shown under the chart and offered as CSV.

    ``title`` and ``columns`` are in the page's language (in the CSV too). The cells are the
    values themselves: the page writes them in its language (``1.234``, ``01.07.2026``), the CSV
    as a program reads them (``1234``, ``2026-07-01``, ``2026-07-01T14:03:00.000Z``, names
    rather than labels), whatever the language."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([_inert(column) for column in self.columns])
        writer.writerows([[_csv_value(value) for value in row] for row in self.rows])
        return out.getvalue()


def _csv_value(value: Any) -> Any:
    if isinstance(value, Shown):
        return _csv_value(value.value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return _inert(value)
    return value


# What a spreadsheet takes as the start of a formula (OWASP, CSV injection), and text that is
# a plain number (-7, +3, -2.5e3), which it takes as that number and runs nothing.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _inert(text: str) -> str:
    """A CSV cell's text that no spreadsheet runs as a formula: with a leading ' when it
    starts like one (names, events and traits come from senders), unless a plain number."""
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_response(
    tables: dict[str, Table], wanted: str, page: str, language: Language | None = None
) -> Response:
    """The table ``wanted`` of a page as a CSV download, or 404 naming the tables there are."""
    table = tables.get(wanted)
    if table is None:
        message = N_("csv: no table %(wanted)s on this page; give one of %(known)s")
        found = {"wanted": repr(wanted), "known": ", ".join(sorted(tables))}
        text = language.translate(message, **found) if language else message % found
        return PlainTextResponse(text, 404)
    return PlainTextResponse(
        table.csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{page}-{table.name}.csv"'},
    )


def _chart(option: dict[str, Any]) -> Markup:
    """An ECharts option as an HTML attribute value (app.js draws it)."""
    return Markup.escape(json.dumps(option, separators=(",", ":")))


def _label(language: Language, name: Any, kind: str) -> str:
    return labels.label(language, kind, name)


def templates(language: Language) -> Jinja2Templates:
    """The templates in ``language``: its catalog behind ``_``/``gettext``/``ngettext``/
    ``pgettext`` (new-style: ``_("%(n)s people", n=…)`` escapes ``n``), and its filters for
    numbers (``number``, ``decimal``, ``percent``, ``share``: 0.25 as 25.0 %), days and
    moments (``date``, ``moment``), durations, table cells (``cell``) and the labels of names
    (``label``)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks: whitespace as in the catalog
    env.install_gettext_translations(language.translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        chart=_chart,
        number=language.number,
        decimal=language.decimal,
        percent=language.percent,
        share=lambda share: language.percent(None if share is None else 100 * share),
        date=language.date,
        moment=language.moment,
        duration=language.duration,
        cell=language.cell,
        # A name touchpoints gives as its label: ``{{ channel | label("channel") }}``.
        label=partial(_label, language),
    )
    env.globals["language"] = language
    return Jinja2Templates(env=env)


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
        self.sessions = Sessions(tp.keys, tp.users)
        self.login_tokens = LoginTokens()
        self.limiter = SignInLimiter()
        self.languages = i18n.load()
        self.templates = {code: templates(found) for code, found in self.languages.items()}
        self.pages = page_modules()
        # (address, label, the permission its page needs): a session sees what it may open.
        self.nav = [
            (href, label, checked(getattr(module, "PERMISSION", "admin")))
            for module in self.pages
            for href, label in module.NAV
        ]

    def routes(self) -> list[BaseRoute]:
        return [
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
            Route("/login", partial(signin.login, self), methods=["GET", "POST"]),
            Route("/logout", partial(signin.logout, self), methods=["POST"]),
            Route("/language/{code}", self.choose_language),
            *demo_site.routes(self),
            *[route for module in self.pages for route in module.routes(self)],
        ]

    # -- access ----------------------------------------------------------------------------
    def page(self, handler: Handler, permission: str) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` for a signed-in session allowed ``permission``; without a session a
        redirect to the login, without the permission 403."""
        checked(permission)

        async def page(request: Request) -> Response:
            session = self.sessions.get(request.cookies.get(COOKIE))
            if session is None:
                if request.headers.get("hx-request"):  # a fragment: reload into the login
                    return Response(status_code=401, headers={"HX-Redirect": "/login"})
                wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(wanted)}", status_code=303)
            if not session.allows(permission):
                return self.forbidden(request, session, permission)
            return await handler(request, session)

        page.permission = permission  # type: ignore[attr-defined]  # tests/unit/test_roles.py
        return page

    def forbidden(self, request: Request, session: Session, permission: str) -> Response:
        """403: the session's role may not do this (said with the permission it lacks)."""
        language = self.language(request)
        text = language.gettext(
            "Your role (%(role)s) does not allow this: it needs the permission “%(permission)s”.",
            role=labels.role(language, session.actor),
            permission=labels.label(language, "permission", permission),
        )
        if request.method != "GET" or request.headers.get("hx-request"):
            return PlainTextResponse(text, 403)
        return self.render(request, "forbidden.html", session, status_code=403, message=text)

    def landing(self, session: Session, target: str) -> str:
        """Where a new session goes: ``target``, or for the overview without ``analytics``
        (a privacy officer) the first page the session may open."""
        if target != "/" or session.allows("analytics"):
            return target
        return next((href for href, _l, p in self.nav if session.allows(p)), "/")

    def https(self, request: Request) -> bool:
        """Whether the request came over https (directly, or to a trusted proxy)."""
        return self.tp.proxies.over_https(request)

    def client(self, request: Request) -> str | None:
        """The client's address (behind a trusted proxy, the one it forwarded for)."""
        return self.tp.proxies.client_address(request)

    async def audit(
        self,
        request: Request,
        actor: str,
        action: str,
        target: str | None = None,
        detail: str | None = None,
        *,
        durable: bool = True,
    ) -> None:
        """Record a line in the audit log (written at once in a worker thread, unless
        ``durable`` is False: reads, written by the log's thread within 100 ms)."""
        record = partial(self.tp.audit.record, actor, action, target, self.client(request), detail)
        if durable:
            await run_in_threadpool(record, durable=True)
        else:
            record()

    # -- language --------------------------------------------------------------------------
    def language(self, request: Request) -> Language:
        """The request's language: its ``tp_lang`` cookie, else its browser's
        ``Accept-Language``, else English."""
        code = i18n.choose(
            request.cookies.get(i18n.COOKIE),
            request.headers.get("accept-language"),
            tuple(self.languages),
        )
        return self.languages[code]

    async def choose_language(self, request: Request) -> Response:
        """The switch on every page: remember the language in a cookie for a year and go back
        (to ``next``, a path on this site). Open without a session: the login page has it."""
        code = request.path_params["code"]
        target = signin.safe_next(request.query_params.get("next"))
        response = RedirectResponse(target, status_code=303)
        if code in self.languages:
            response.set_cookie(
                i18n.COOKIE,
                code,
                max_age=i18n.COOKIE_SECONDS,
                httponly=True,
                samesite="strict",
                secure=self.https(request),
                path="/",
            )
        return response

    def stale_form(self, request: Request) -> Response:
        """The answer to a form post without this session's form token."""
        text = self.language(request).gettext("the form is out of date: reload the page")
        return PlainTextResponse(text, 403)

    async def ask(self, kind: type[Answers[R]], params: dict[str, Any]) -> R:
        """A journey question from a page's fields, checked (an
        :class:`~touchpoints.journeys.spec.AnalysisError` names the field) and answered by
        ``Journeys.run`` in a worker thread."""
        given = {k: v for k, v in params.items() if v is not None}
        question = validated(kind, given)  # type: ignore[type-var]
        return await run_in_threadpool(self.tp.journeys.run, question)

    def event_names(self) -> list[str]:
        """The event names there are, most frequent first (for the event fields'
        suggestions; blocking: call it in a worker thread)."""
        return [name for name in self.tp.events.count_by("event") if name]

    def csrf_ok(self, session: Session, fields: dict[str, str]) -> bool:
        """Whether a posted form carries this session's form token."""
        given = fields.get("csrf", "")
        return hmac.compare_digest(given.encode(), session.csrf.encode())

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
        language = self.language(request)
        here = request.url.path + (f"?{kept}" if kept else "")
        return self.templates[language.code].TemplateResponse(
            request,
            name,
            {
                "session": session,
                "nav": [
                    (href, language.translate(label))
                    for href, label, permission in self.nav
                    if session is not None and session.allows(permission)
                ],
                "path": request.url.path,
                # A table's CSV link keeps the page's question: ``{{ csv_link }}<table>``.
                "csv_link": f"?{kept}&csv=" if kept else "?csv=",
                # The language switch: each language's address, back to this page.
                "switch": [
                    (found, f"/language/{code}?{urlencode({'next': here})}")
                    for code, found in self.languages.items()
                ],
                **context,
            },
            status_code=status_code,
            headers={
                "Cache-Control": "no-store",
                "Content-Language": language.code,
                "Vary": "Accept-Language, Cookie",
            },
        )
