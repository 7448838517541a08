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
from touchpoints.web import labels
from touchpoints.web.app import Shown, Table, csv_response
from touchpoints.web.charts import bars, days, sankey
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 20
NAV = (("/journeys/map", N_("Journey map")),)
PERMISSION = "analytics"  # aggregate figures (access/roles.py)
FILTERS = ("since", "until", "channel", "age_group", "segment")


def routes(dashboard: Dashboard) -> list[Route]:
    async def journey_map(request: Request, session: Session) -> Response:
        from touchpoints.channels import CHANNELS
        from touchpoints.journeys.ages import DEFAULT_BANDS, UNKNOWN

        language = dashboard.language(request)
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
            context["error"] = language.explain(exc)
            return dashboard.render(
                request,
                "journey_map.html",
                session,
                status_code=status_of(exc),
                tables={},
                **context,
            )
        data = _view(found, language)
        if (wanted := request.query_params.get("csv")) is not None:
            return csv_response(data["tables"], wanted, "journey-map", language)
        return dashboard.render(request, "journey_map.html", session, **context, **data)

    return [Route("/journeys/map", dashboard.page(journey_map, PERMISSION))]


def _view(found: JourneyMap, language: Language) -> dict[str, Any]:
    """The journey map's tables and charts (stages and channels by their labels)."""
    _ = language.gettext
    steps = found.stages

    def stage(name: str) -> Shown:
        return Shown(name, labels.stage(language, name))

    def channel(name: str | None) -> str:
        return labels.channel(language, str(name))

    stages = Table(
        "stages",
        _("Stages: reach, conversion and time to move on"),
        [_("stage"), _("reached"), _("went on"), _("next stage"), _("dropped"),
         _("conversion %%"), _("median days"), _("p90 days"), _("top channels")],
        [
            [
                stage(s.stage), s.reached, s.went_on,
                s.next_stage, s.dropped,
                None if s.conversion is None else round(100 * s.conversion, 1),
                days(s.median_seconds), days(s.p90_seconds),
                Shown(
                    ", ".join(str(c.channel) for c in s.top_channels[:3]),
                    ", ".join(channel(str(c.channel)) for c in s.top_channels[:3]),
                ),
            ]
            for s in steps
        ],
    )  # fmt: skip

    def by_stage(rows: list[Any]) -> Shown:
        # "consideration 120 (35% dropped)": the CSV in English, the page in its language.
        english = "; ".join(
            f"{r.stage} {r.persons} ({round(100 * r.drop_rate)}% dropped)" for r in rows
        )
        shown = "; ".join(
            _(
                "%(stage)s %(persons)s (%(share)s%% dropped)",
                stage=labels.stage(language, r.stage),
                persons=language.number(r.persons),
                share=language.number(round(100 * r.drop_rate)),
            )
            for r in rows
        )
        return Shown(english, shown)

    pains = Table(
        "pain_points",
        _("Pain points: relative risk of dropping out"),
        [_("pain point"), _("persons"), _("relative risk"), _("stages")],
        [[p.name, p.persons, p.relative_risk, by_stage(p.by_stage)] for p in found.pain_points],
    )
    stage_moves = Table(
        "stage_transitions",
        _("Stage transitions (persons)"),
        [_("from"), _("to"), _("persons")],
        [[stage(t.source), stage(t.target), t.persons] for t in found.stage_transitions],
    )
    channel_moves = Table(
        "channel_transitions",
        _("Channel transitions (visits)"),
        [_("from"), _("to"), _("count")],
        [
            [Shown(t.source, channel(t.source)), Shown(t.target, channel(t.target)), t.count]
            for t in found.channel_transitions
        ],
    )
    order = {s.stage: i for i, s in enumerate(steps)}
    forward = [t for t in found.stage_transitions if order[t.target] > order[t.source]]

    def label(name: str) -> str:
        return labels.stage(language, name)

    return {
        "tables": {t.name: t for t in (stages, pains, stage_moves, channel_moves)},
        "backward": sum(t.persons for t in found.stage_transitions)
        - sum(t.persons for t in forward),
        "stage_chart": bars(
            [label(s.stage) for s in steps],
            {_("reached"): [s.reached for s in steps], _("went on"): [s.went_on for s in steps]},
        ),  # fmt: skip
        "pain_chart": bars(
            [p.name for p in found.pain_points],
            {_("relative risk"): [p.relative_risk for p in found.pain_points]},
            horizontal=True,
        ),
        "stage_sankey": sankey(
            [label(s.stage) for s in steps],
            [(label(t.source), label(t.target), t.persons) for t in forward],
        ),
        "channel_sankey": sankey(
            None,
            [
                (f"{channel(t.source)} →", f"→ {channel(t.target)}", t.count)
                for t in found.channel_transitions
            ],
        ),
    }
