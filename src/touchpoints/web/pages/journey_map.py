"""Journey map: the stages with reach, conversion, time and pain points; stage and channel
transitions as Sankey diagrams; for whole journeys or a date range, of everyone or of the
persons who used a channel, are in an age group or a segment (a trait's value)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from touchpoints.errors import TouchpointsError, status_of
from touchpoints.journeys.queries import JourneyMapQuery
from touchpoints.journeys.results import JourneyMap
from touchpoints.web.app import Table, csv_response
from touchpoints.web.charts import bars, days, sankey
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 20
NAV = (("/journeys/map", "Journey map"),)
FILTERS = ("since", "until", "channel", "age_group", "segment")


def routes(dashboard: Dashboard) -> list[Route]:
    async def journey_map(request: Request, session: Session) -> Response:
        from touchpoints.channels import CHANNELS
        from touchpoints.journeys.ages import DEFAULT_BANDS, UNKNOWN

        asked = {k: request.query_params.get(k) or None for k in FILTERS}
        context: dict[str, Any] = {
            **{k: v or "" for k, v in asked.items()},
            "channels": CHANNELS,
            "age_groups": [*DEFAULT_BANDS, UNKNOWN],
            "filtered": any(asked.values()),
            "error": None,
        }
        try:
            found = await dashboard.ask(JourneyMapQuery, asked)
        except TouchpointsError as exc:
            context["error"] = str(exc)
            return dashboard.render(
                request,
                "journey_map.html",
                session,
                status_code=status_of(exc),
                tables={},
                **context,
            )
        data = _view(found)
        if (wanted := request.query_params.get("csv")) is not None:
            return csv_response(data["tables"], wanted, "journey-map")
        return dashboard.render(request, "journey_map.html", session, **context, **data)

    return [Route("/journeys/map", dashboard.page(journey_map))]


def _view(found: JourneyMap) -> dict[str, Any]:
    """The journey map's tables and charts."""
    steps = found.stages
    stages = Table(
        "stages",
        "Stages: reach, conversion and time to move on",
        ["stage", "reached", "went on", "next stage", "dropped", "conversion %",
         "median days", "p90 days", "top channels"],
        [
            [
                s.stage, s.reached, s.went_on, s.next_stage, s.dropped,
                None if s.conversion is None else round(100 * s.conversion, 1),
                days(s.median_seconds), days(s.p90_seconds),
                ", ".join(str(c.channel) for c in s.top_channels[:3]),
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
                p.name,
                p.persons,
                p.relative_risk,
                "; ".join(
                    f"{r.stage} {r.persons} ({round(100 * r.drop_rate)}% dropped)"
                    for r in p.by_stage
                ),
            ]
            for p in found.pain_points
        ],
    )
    stage_moves = Table(
        "stage_transitions",
        "Stage transitions (persons)",
        ["from", "to", "persons"],
        [[t.source, t.target, t.persons] for t in found.stage_transitions],
    )
    channel_moves = Table(
        "channel_transitions",
        "Channel transitions (visits)",
        ["from", "to", "count"],
        [[t.source, t.target, t.count] for t in found.channel_transitions],
    )
    order = {s.stage: i for i, s in enumerate(steps)}
    forward = [t for t in found.stage_transitions if order[t.target] > order[t.source]]
    return {
        "tables": {t.name: t for t in (stages, pains, stage_moves, channel_moves)},
        "backward": sum(t.persons for t in found.stage_transitions)
        - sum(t.persons for t in forward),
        "stage_chart": bars(
            [s.stage for s in steps],
            {"reached": [s.reached for s in steps], "went on": [s.went_on for s in steps]},
        ),  # fmt: skip
        "pain_chart": bars(
            [p.name for p in found.pain_points],
            {"relative risk": [p.relative_risk for p in found.pain_points]},
            horizontal=True,
        ),
        "stage_sankey": sankey(
            [s.stage for s in steps],
            [(t.source, t.target, t.persons) for t in forward],
        ),
        "channel_sankey": sankey(
            None,
            [(f"{t.source} →", f"→ {t.target}", t.count) for t in found.channel_transitions],
        ),  # fmt: skip
    }
