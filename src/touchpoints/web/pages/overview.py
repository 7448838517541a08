"""Overview: people (identified and anonymous), events today and in 7 days, channels,
persons per stage, events per channel, and a live count of incoming events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from touchpoints.web import labels
from touchpoints.web.app import Shown, Table, csv_response
from touchpoints.web.charts import bars
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 10
NAV = (("/", N_("Overview")),)
PERMISSION = "analytics"  # aggregate figures (access/roles.py)


def routes(dashboard: Dashboard) -> list[Route]:
    async def overview(request: Request, session: Session) -> Response:
        language = dashboard.language(request)
        data = await run_in_threadpool(_data, dashboard, language)
        if (wanted := request.query_params.get("csv")) is not None:
            return csv_response(data["tables"], wanted, "overview", language)
        return dashboard.render(request, "overview.html", session, **data)

    async def live(request: Request, session: Session) -> Response:
        """The live event counter (polled by the overview)."""
        total = await run_in_threadpool(dashboard.tp.events.count)
        shown = dashboard.language(request).number(total)
        return HTMLResponse(f'<span id="live-total" data-total="{total}">{shown}</span>')

    return [
        Route("/", dashboard.page(overview, PERMISSION)),
        Route("/live", dashboard.page(live, PERMISSION)),
    ]


def _data(dashboard: Dashboard, language: Language) -> dict[str, Any]:
    from touchpoints.journeys.queries import StagesQuery
    from touchpoints.warehouse import EventFilter

    tp = dashboard.tp
    identity = tp.identity.summary()
    now = datetime.now(UTC).replace(tzinfo=None)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    stats = tp.events.stats()
    events = {
        "total": stats.total,
        "today": tp.events.count(EventFilter(since=today)),
        "week": tp.events.count(EventFilter(since=now - timedelta(days=7))),
    }
    stages = tp.journeys.run(StagesQuery()).stages
    _ = language.gettext
    stage_table = Table(
        "stages",
        _("Persons per journey stage"),
        [_("stage"), _("now in it"), _("ever entered")],
        [[Shown(s.stage, labels.stage(language, s.stage)), s.current, s.reached] for s in stages],
    )
    channel_table = Table(
        "channels",
        _("Events per channel"),
        [_("channel"), _("events")],
        [[Shown(name, labels.channel(language, name)), n] for name, n in stats.by_channel.items()],
    )
    return {
        "identity": identity,
        "events": events,
        "channels": len(stats.by_channel),
        "tables": {t.name: t for t in (stage_table, channel_table)},
        "stage_chart": bars(
            [row[0].text for row in stage_table.rows],
            {
                _("now in it"): [r[1] for r in stage_table.rows],
                _("ever entered"): [r[2] for r in stage_table.rows],
            },
        ),  # fmt: skip
        "channel_chart": bars(
            [row[0].text for row in channel_table.rows],
            {_("events"): [row[1] for row in channel_table.rows]},
            horizontal=True,
        ),
    }
