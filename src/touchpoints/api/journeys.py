"""Journey analytics (read keys): a thin face over :class:`touchpoints.journeys.Journeys`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from touchpoints.api.auth import require
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
