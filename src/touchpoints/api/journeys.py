"""Journey analytics (the ``analytics`` permission): every route takes a typed question and
returns the typed answer of ``Journeys.run``, so ``/openapi.json`` documents both. The two
questions whose answers name persons, one person's stages and a funnel's drop-offs, need
``profiles`` as well, and are recorded in the audit log (``profile.stages``; ``profile.list``
for each person of a drop-off list).

Each analysis has its own address (query parameters for the GET ones, a JSON body for
funnels and retention), and ``POST /v1/journeys/query`` takes any question by its ``kind``
(the CLI asks that way). Analyses run in a worker thread: they can take seconds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from touchpoints.access.keys import ApiKey
from touchpoints.api.auth import allow, audited, require
from touchpoints.api.state import core
from touchpoints.journeys.queries import (
    Answers,
    AttributionQuery,
    ChannelMixQuery,
    DropOffsQuery,
    FunnelComparisonQuery,
    FunnelQuery,
    FunnelSpec,
    JourneyMapQuery,
    JourneyQuery,
    PathsQuery,
    RetentionQuery,
    StageHistoryQuery,
    StagesQuery,
    VariantsQuery,
)
from touchpoints.journeys.results import (
    Attribution,
    ChannelMix,
    DropOffPage,
    FunnelComparison,
    FunnelResult,
    JourneyMap,
    PathReport,
    RetentionResult,
    StageDistribution,
    StageHistory,
    VariantReport,
)
from touchpoints.journeys.service import R

router = APIRouter(tags=["journeys"])
Analytics = Annotated[ApiKey, Depends(require("analytics"))]
# Questions whose answers name persons.
PERSONAL = (StageHistoryQuery, DropOffsQuery)


async def _run(request: Request, query: Answers[R], caller: ApiKey) -> R:
    if isinstance(query, PERSONAL):
        allow(caller, "profiles")
    answer = await run_in_threadpool(core(request).journeys.run, query)
    if isinstance(answer, StageHistory):
        audited(request, caller, "profile.stages", answer.person, durable=False)
    elif isinstance(answer, DropOffPage):
        for unit in answer.units:  # the persons listed, one line each (as a search's hits)
            audited(
                request,
                caller,
                "profile.list",
                f"person:{unit.person}",
                "funnel drop-offs",
                durable=False,
            )
    return answer


@router.post("/v1/journeys/query")
async def run_query(
    request: Request, caller: Analytics, query: Annotated[JourneyQuery, Body()]
) -> (
    StageDistribution
    | StageHistory
    | JourneyMap
    | FunnelResult
    | FunnelComparison
    | DropOffPage
    | RetentionResult
    | PathReport
    | VariantReport
    | ChannelMix
    | Attribution
):
    """Any journey question, named by its ``kind`` (``stages``, ``stage_history``,
    ``journey_map``, ``funnel``, ``funnel_comparison``, ``drop_offs``, ``retention``,
    ``paths``, ``variants``, ``channel_mix``, ``attribution``); the answer is that kind's."""
    return await _run(request, query, caller)  # type: ignore[arg-type]


@router.get("/v1/journeys/stages")
async def stages(request: Request, caller: Analytics) -> StageDistribution:
    """Per stage of the model, in journey order: persons in it now (their furthest stage)
    and persons who ever entered it."""
    return await _run(request, StagesQuery(), caller)


@router.get("/v1/journeys/stages/{key:path}")
async def stage_history(request: Request, caller: Analytics, key: str) -> StageHistory:
    """The stages one person (any identifier, or person:N) entered, with when and how."""
    return await _run(request, StageHistoryQuery(person=key), caller)


@router.get("/v1/journeys/map")
async def journey_map(
    request: Request, caller: Analytics, query: Annotated[JourneyMapQuery, Query()]
) -> JourneyMap:
    """Per stage: reach, conversion to later stages, median and p90 time to move on,
    drop-off, top channels and touchpoints; pain points with their relative risk of dropping
    out; stage-to-stage and channel-to-channel transitions (for a Sankey diagram).
    ``since`` (inclusive) and ``until`` (exclusive), ISO 8601 in UTC: of what happened in
    that range only. ``channel``: of the persons who used it; ``age_group``: of the persons
    in that age band (the channel mix's default bands, or ``unknown``); ``segment``: of the
    persons whose latest value of a trait is the one given (``key=value``, e.g. city=Hamburg)."""
    return await _run(request, query, caller)


class FunnelComparisonBody(FunnelSpec):
    compare_units: bool = False


@router.post("/v1/journeys/funnels")
async def funnels(
    request: Request, caller: Analytics, body: FunnelComparisonBody
) -> FunnelResult | FunnelComparison:
    """Body: ``steps`` ([{event, properties?}], 2 to 20), ``window`` (seconds or ISO 8601,
    default P14D), ``order`` (relaxed, strict), ``unit`` (person, device), ``breakdown``
    (channel, device_type, age_group, trait:KEY), ``age_bands``, ``since``, ``until``, and
    ``compare_units`` (true: per person and per device side by side)."""
    spec = body.model_dump(exclude={"compare_units", "kind"})
    if body.compare_units:
        return await _run(request, FunnelComparisonQuery.model_validate(spec), caller)
    return await _run(request, FunnelQuery.model_validate(spec), caller)


@router.post("/v1/journeys/funnels/drop-offs")
async def funnel_drop_offs(
    request: Request,
    caller: Analytics,
    body: FunnelSpec,
    step: Annotated[int, Query(ge=1, description="Reached this step, not the next")],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> DropOffPage:
    """The persons (or devices) who reached ``step`` of the funnel in the body and no further."""
    query = DropOffsQuery.model_validate(
        {"funnel": body, "step": step, "limit": limit, "offset": offset}
    )
    return await _run(request, query, caller)


@router.post("/v1/journeys/retention")
async def retention(request: Request, caller: Analytics, body: RetentionQuery) -> RetentionResult:
    """Body: ``period`` (week, month), ``periods``, ``start_event``, ``return_event``,
    ``unit`` (person, device), ``since``, ``until``, ``as_of``; all optional."""
    return await _run(request, body, caller)


@router.get("/v1/journeys/paths")
async def paths(
    request: Request, caller: Analytics, query: Annotated[PathsQuery, Query()]
) -> PathReport:
    """The most frequent paths after each person's first ``start`` event or before their
    first ``end`` event (give one); steps rarer than ``min_share`` are grouped as (other)."""
    return await _run(request, query, caller)


@router.get("/v1/journeys/variants")
async def variants(
    request: Request, caller: Analytics, query: Annotated[VariantsQuery, Query()]
) -> VariantReport:
    """The distinct stage sequences people follow, most common first."""
    return await _run(request, query, caller)


@router.get("/v1/journeys/channel-mix")
async def channel_mix(
    request: Request, caller: Analytics, query: Annotated[ChannelMixQuery, Query()]
) -> ChannelMix:
    """Per age band: the share of its people using each channel and the share of its
    contacts on each channel, as heat-map matrices."""
    return await _run(request, query, caller)


@router.get("/v1/journeys/attribution")
async def attribution(
    request: Request, caller: Analytics, query: Annotated[AttributionQuery, Query()]
) -> Attribution:
    """Conversions and their value credited to channels or campaigns: first touch, last
    touch, linear, time decay, position based, and Markov removal effect."""
    return await _run(request, query, caller)
