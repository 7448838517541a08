"""The dashboard: server-rendered pages at ``/`` on the API's port.

Pages call the same Python functions as the API (``tp.identity``, ``tp.events``,
``tp.journeys``, …): no second query path. Each chart is an Apache ECharts option built here
and drawn by ``static/app.js``; its numbers are also a table on the page and a CSV download
(``?csv=<table>``). Nothing is loaded from the internet: ECharts and htmx are vendored under
``static/vendor`` with their licences.

Access: a login form takes a read or admin key and sets an http-only, same-site session
cookie (:mod:`touchpoints.web.sessions`); without it every page redirects to the login.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from touchpoints.web.sessions import COOKIE, LIFETIME_SECONDS, LoginRefused, Session, Sessions

if TYPE_CHECKING:
    from touchpoints.core import Touchpoints

HERE = Path(__file__).parent
NAV = (("/", "Overview"), ("/journeys/map", "Journey map"))


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


class Dashboard:
    def __init__(self, tp: Touchpoints) -> None:
        self.tp = tp
        self.sessions = Sessions(tp.keys)
        self.templates = templates()

    def routes(self) -> list[BaseRoute]:
        return [
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/", self._page(self.overview)),
            Route("/live", self._page(self.live)),
            Route("/journeys/map", self._page(self.journey_map)),
        ]

    # -- access ----------------------------------------------------------------------------
    def _page(
        self, handler: Callable[[Request, Session], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` for a signed-in session; otherwise a redirect to the login."""

        async def page(request: Request) -> Response:
            session = self.sessions.get(request.cookies.get(COOKIE))
            if session is None:
                if request.headers.get("hx-request"):  # a fragment: reload into the login
                    return Response(status_code=401, headers={"HX-Redirect": "/login"})
                wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(wanted)}", status_code=303)
            return await handler(request, session)

        return page

    async def login(self, request: Request) -> Response:
        target = _safe_next(request.query_params.get("next"))
        if request.method == "GET":
            return self._render(request, "login.html", None, next=target, error=None)
        form = await _form(request)
        try:
            session = self.sessions.login(form.get("key", ""))
        except LoginRefused as exc:
            return self._render(
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
        form = await _form(request)
        if session is not None and form.get("csrf") != session.csrf:
            return PlainTextResponse("the form is out of date: reload the page", 403)
        self.sessions.logout(token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # -- pages -----------------------------------------------------------------------------
    async def overview(self, request: Request, session: Session) -> Response:
        data = await run_in_threadpool(self._overview_data)
        tables = data["tables"]
        if (wanted := request.query_params.get("csv")) is not None:
            return _csv(tables, wanted, "overview")
        return self._render(request, "overview.html", session, **data)

    def _overview_data(self) -> dict[str, Any]:
        from touchpoints.warehouse import EventFilter

        tp = self.tp
        identity = tp.identity.summary()
        now = datetime.now(UTC).replace(tzinfo=None)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        stats = tp.events.stats()
        events = {
            "total": stats["total"],
            "today": tp.events.count(EventFilter(since=today)),
            "week": tp.events.count(EventFilter(since=now - timedelta(days=7))),
        }
        stages = tp.journeys.stages()
        stage_table = Table(
            "stages",
            "Persons per journey stage",
            ["stage", "now in it", "ever entered"],
            [[s["stage"], s["current"], s["reached"]] for s in stages],
        )
        channel_table = Table(
            "channels",
            "Events per channel",
            ["channel", "events"],
            [[name, n] for name, n in stats["by_channel"].items()],
        )
        return {
            "identity": identity,
            "events": events,
            "channels": len(stats["by_channel"]),
            "tables": {t.name: t for t in (stage_table, channel_table)},
            "stage_chart": _bars(
                [row[0] for row in stage_table.rows],
                {
                    "now in it": [r[1] for r in stage_table.rows],
                    "ever entered": [r[2] for r in stage_table.rows],
                },
            ),  # fmt: skip
            "channel_chart": _bars(
                [row[0] for row in channel_table.rows],
                {"events": [row[1] for row in channel_table.rows]},
                horizontal=True,
            ),
        }

    async def journey_map(self, request: Request, session: Session) -> Response:
        """The stages with reach, conversion, time and pain points; stage and channel
        transitions as Sankey diagrams; for a date range when one is given."""
        from touchpoints.journeys.service import JourneyQueryError

        since = request.query_params.get("since") or None
        until = request.query_params.get("until") or None
        context: dict[str, Any] = {"since": since or "", "until": until or "", "error": None}
        try:
            found = await run_in_threadpool(self.tp.journeys.journey_map, 5, True, since, until)
        except JourneyQueryError as exc:
            context["error"] = str(exc)
            return self._render(
                request, "journey_map.html", session, status_code=422, tables={}, **context
            )
        data = _journey_map_view(found)
        if (wanted := request.query_params.get("csv")) is not None:
            return _csv(data["tables"], wanted, "journey-map")
        return self._render(request, "journey_map.html", session, **context, **data)

    async def live(self, request: Request, session: Session) -> Response:
        """The live event counter (polled by the overview)."""
        total = await run_in_threadpool(self.tp.events.count)
        return HTMLResponse(f'<span id="live-total" data-total="{total}">{total:,}</span>')

    # -- rendering -------------------------------------------------------------------------
    def _render(
        self,
        request: Request,
        name: str,
        session: Session | None,
        status_code: int = 200,
        **context: Any,
    ) -> Response:
        return self.templates.TemplateResponse(
            request,
            name,
            {"session": session, "nav": NAV, "path": request.url.path, **context},
            status_code=status_code,
            headers={"Cache-Control": "no-store"},
        )


def _journey_map_view(found: dict[str, Any]) -> dict[str, Any]:
    """The journey map's tables and charts."""
    steps = found["stages"]
    stages = Table(
        "stages",
        "Stages: reach, conversion and time to move on",
        ["stage", "reached", "went on", "next stage", "dropped", "conversion %",
         "median days", "p90 days", "top channels"],
        [
            [
                s["stage"], s["reached"], s["went_on"], s["next_stage"], s["dropped"],
                None if s["conversion"] is None else round(100 * s["conversion"], 1),
                _days(s["median_seconds"]), _days(s["p90_seconds"]),
                ", ".join(c["channel"] for c in s["top_channels"][:3]),
            ]
            for s in steps
        ],
    )  # fmt: skip
    pains = Table(
        "pain_points",
        "Pain points: relative risk of dropping out",
        ["pain point", "persons", "relative risk", "stages"],
        [
            [
                p["name"],
                p["persons"],
                p["relative_risk"],
                "; ".join(
                    f"{r['stage']} {r['persons']} ({round(100 * r['drop_rate'])}% dropped)"
                    for r in p["by_stage"]
                ),
            ]
            for p in found["pain_points"]
        ],
    )
    stage_moves = Table(
        "stage_transitions",
        "Stage transitions (persons)",
        ["from", "to", "persons"],
        [[t["source"], t["target"], t["persons"]] for t in found["stage_transitions"]],
    )
    channel_moves = Table(
        "channel_transitions",
        "Channel transitions (visits)",
        ["from", "to", "count"],
        [[t["source"], t["target"], t["count"]] for t in found["channel_transitions"]],
    )
    order = {s["stage"]: i for i, s in enumerate(steps)}
    forward = [t for t in found["stage_transitions"] if order[t["target"]] > order[t["source"]]]
    return {
        "tables": {t.name: t for t in (stages, pains, stage_moves, channel_moves)},
        "backward": sum(t["persons"] for t in found["stage_transitions"])
        - sum(t["persons"] for t in forward),
        "stage_chart": _bars(
            [s["stage"] for s in steps],
            {"reached": [s["reached"] for s in steps], "went on": [s["went_on"] for s in steps]},
        ),  # fmt: skip
        "pain_chart": _bars(
            [p["name"] for p in found["pain_points"]],
            {"relative risk": [p["relative_risk"] for p in found["pain_points"]]},
            horizontal=True,
        ),
        "stage_sankey": _sankey(
            [s["stage"] for s in steps],
            [(t["source"], t["target"], t["persons"]) for t in forward],
        ),
        "channel_sankey": _sankey(
            None,
            [
                (f"{t['source']} →", f"→ {t['target']}", t["count"])
                for t in found["channel_transitions"]
            ],
        ),  # fmt: skip
    }


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 86400, 1)


def _sankey(nodes: list[str] | None, links: list[tuple[str, str, int]]) -> dict[str, Any]:
    """An ECharts Sankey diagram; ``nodes`` in order (else those the links name)."""
    names = nodes if nodes is not None else sorted({n for a, b, _ in links for n in (a, b)})
    used = {n for a, b, _ in links for n in (a, b)}
    return {
        "tooltip": {"trigger": "item"},
        "series": [
            {
                "type": "sankey",
                "layoutIterations": 0 if nodes is not None else 32,
                "emphasis": {"focus": "adjacency"},
                "nodeAlign": "left",
                "data": [{"name": n} for n in names if n in used],
                "links": [{"source": a, "target": b, "value": v} for a, b, v in links],
                "lineStyle": {"color": "gradient", "curveness": 0.5, "opacity": 0.35},
            }
        ],
    }


def _bars(labels: list[str], series: dict[str, list[int]], horizontal: bool = False) -> dict:
    """An ECharts bar chart: one bar series per entry of ``series``."""
    category = {"type": "category", "data": labels, "axisLabel": {"interval": 0}}
    value = {"type": "value"}
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"show": len(series) > 1, "top": 0},
        "grid": {"left": 8, "right": 24, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": value if horizontal else category,
        "yAxis": {**category, "inverse": True} if horizontal else value,
        "series": [{"name": name, "type": "bar", "data": data} for name, data in series.items()],
    }


def _csv(tables: dict[str, Table], wanted: str, page: str) -> Response:
    table = tables.get(wanted)
    if table is None:
        known = ", ".join(sorted(tables))
        return PlainTextResponse(f"csv: no table {wanted!r} on this page; give one of {known}", 404)
    return PlainTextResponse(
        table.csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{page}-{table.name}.csv"'},
    )


async def _form(request: Request) -> dict[str, str]:
    """An url-encoded form's fields (the first value of each)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _safe_next(target: str | None) -> str:
    """Where to go after the login: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
