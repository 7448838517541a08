"""Journey analytics (read keys): a thin face over :class:`touchpoints.journeys.Journeys`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from touchpoints.api.auth import require
from touchpoints.journeys.service import JourneyQueryError
from touchpoints.privacy.keys import ApiKey
from touchpoints.profiles import ProfileNotFound

router = APIRouter(tags=["journeys"])
Reader = Annotated[ApiKey, Depends(require("read"))]


@router.get("/v1/journeys/stages")
async def stages(request: Request, _: Reader) -> dict[str, Any]:
    """Per stage of the model, in journey order: persons in it now (their furthest stage)
    and persons who ever entered it."""
    journeys = request.app.state.tp.journeys
    return {"stages": await run_in_threadpool(journeys.stages)}


@router.get("/v1/journeys/stages/{key:path}")
async def stage_history(request: Request, _: Reader, key: str) -> dict[str, Any]:
    """The stages one person (any identifier, or person:N) entered, with when and how."""
    tp = request.app.state.tp
    try:
        person = tp.profiles.resolve(key)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    except ProfileNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    history = await run_in_threadpool(tp.journeys.stage_history, person)
    return {
        "person": f"person:{person}",
        "current": history[-1]["stage"] if history else None,
        "stages": history,
    }


async def _answer(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run an analysis in a worker thread; a question asked wrongly is a 422 naming why."""
    try:
        return await run_in_threadpool(call, *args, **kwargs)
    except JourneyQueryError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/v1/journeys/map")
async def journey_map(
    request: Request,
    _: Reader,
    top: Annotated[int, Query(ge=1, le=50)] = 5,
    collapse: bool = True,
    since: str | None = None,
    until: str | None = None,
    channel: str | None = None,
    age_group: str | None = None,
    segment: str | None = None,
) -> dict[str, Any]:
    """Per stage: reach, conversion to later stages, median and p90 time to move on,
    drop-off, top channels and touchpoints; pain points with their relative risk of dropping
    out; stage-to-stage and channel-to-channel transitions (for a Sankey diagram).
    ``since`` (inclusive) and ``until`` (exclusive), ISO 8601 in UTC: of what happened in
    that range only. ``channel``: of the persons who used it; ``age_group``: of the persons
    in that age band (the channel mix's default bands, or ``unknown``); ``segment``: of the
    persons whose latest value of a trait is the one given (``key=value``, e.g. city=Hamburg)."""
    journeys = request.app.state.tp.journeys
    return await _answer(
        journeys.journey_map, top, collapse, since, until, channel, age_group, segment
    )


@router.post("/v1/journeys/funnels")
async def funnels(request: Request, _: Reader, body: dict[str, Any]) -> dict[str, Any]:
    """Body: ``steps`` ([{event, properties?}], 2 to 20), ``window`` (seconds or ISO 8601,
    default P14D), ``order`` (relaxed, strict), ``unit`` (person, device), ``breakdown``
    (channel, device_type, age_group, trait:KEY), ``age_bands``, ``since``, ``until``, and
    ``compare_units`` (true: per person and per device side by side)."""
    spec = dict(body)
    compare = bool(spec.pop("compare_units", False))
    return await _answer(request.app.state.tp.journeys.funnel, spec, compare)


@router.post("/v1/journeys/funnels/drop-offs")
async def funnel_drop_offs(
    request: Request,
    _: Reader,
    body: dict[str, Any],
    step: Annotated[int, Query(ge=1, description="Reached this step, not the next")],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The persons (or devices) who reached ``step`` of the funnel in the body and no further."""
    return await _answer(request.app.state.tp.journeys.drop_offs, body, step, limit, offset)


@router.post("/v1/journeys/retention")
async def retention(request: Request, _: Reader, body: dict[str, Any]) -> dict[str, Any]:
    """Body: ``period`` (week, month), ``periods``, ``start_event``, ``return_event``,
    ``unit`` (person, device), ``since``, ``until``, ``as_of``; all optional."""
    return await _answer(request.app.state.tp.journeys.retention, body)


@router.get("/v1/journeys/paths")
async def paths(
    request: Request,
    _: Reader,
    start: str | None = None,
    end: str | None = None,
    depth: Annotated[int, Query(ge=1, le=20)] = 5,
    step: Literal["event", "channel"] = "event",
    min_share: Annotated[float, Query(ge=0, le=1)] = 0.05,
    collapse: bool = True,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """The most frequent paths after each person's first ``start`` event or before their
    first ``end`` event (give one); steps rarer than ``min_share`` are grouped as (other)."""
    return await _answer(
        request.app.state.tp.journeys.paths,
        start=start,
        end=end,
        depth=depth,
        step=step,
        min_share=min_share,
        collapse_repeats=collapse,
        limit=limit,
    )


@router.get("/v1/journeys/variants")
async def variants(
    request: Request, _: Reader, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> dict[str, Any]:
    """The distinct stage sequences people follow, most common first."""
    return await _answer(request.app.state.tp.journeys.variants, limit)


@router.get("/v1/journeys/channel-mix")
async def channel_mix(
    request: Request,
    _: Reader,
    bands: Annotated[list[str] | None, Query(description="e.g. 18-24 (repeat), 65+")] = None,
    as_of: Annotated[date | None, Query(description="Ages on this day (default today)")] = None,
) -> dict[str, Any]:
    """Per age band: the share of its people using each channel and the share of its
    contacts on each channel, as heat-map matrices."""
    return await _answer(request.app.state.tp.journeys.channel_mix, bands, as_of)


@router.get("/v1/journeys/attribution")
async def attribution(
    request: Request,
    _: Reader,
    conversion: str = "Order Completed",
    by: Literal["channel", "campaign"] = "channel",
    lookback_days: Annotated[float, Query(gt=0, le=3650)] = 30,
    value_property: str | None = "revenue",
    half_life_days: Annotated[float, Query(gt=0, le=3650)] = 7,
) -> dict[str, Any]:
    """Conversions and their value credited to channels or campaigns: first touch, last
    touch, linear, time decay, position based, and Markov removal effect."""
    return await _answer(
        request.app.state.tp.journeys.attribution,
        conversion=conversion,
        by=by,
        lookback_days=lookback_days,
        value_property=value_property,
        half_life_days=half_life_days,
    )
