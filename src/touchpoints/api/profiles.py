"""Profiles (read keys) and identity operations (admin keys): a thin face over the core."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from touchpoints.api.auth import require
from touchpoints.events import stored_event_json
from touchpoints.privacy.keys import ApiKey
from touchpoints.profiles import ProfileNotFound, parse_key

router = APIRouter(tags=["profiles"])
Reader = Annotated[ApiKey, Depends(require("read"))]
Admin = Annotated[ApiKey, Depends(require("admin"))]


def _person(request: Request, key: str) -> int:
    try:
        return request.app.state.tp.profiles.resolve(key)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    except ProfileNotFound as exc:
        raise HTTPException(404, str(exc)) from None


def encode_cursor(event: dict[str, Any]) -> str:
    return f"{event['timestamp'].isoformat()}_{event['seq']}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    moment, sep, seq = cursor.rpartition("_")
    try:
        return datetime.fromisoformat(moment), int(seq)
    except ValueError:
        raise HTTPException(
            400, f"before: {cursor!r} is not a cursor from a 'next' field"
        ) from None


@router.get("/v1/profiles")
def search_profiles(
    request: Request,
    _: Reader,
    trait: Annotated[str, Query(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")],
    value: Annotated[str, Query(min_length=1)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    persons = request.app.state.tp.profiles.search(trait, value, limit)
    return {"persons": [f"person:{p}" for p in persons]}


@router.get("/v1/profiles/{key:path}/timeline")
def profile_timeline(
    request: Request,
    _: Reader,
    key: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before: Annotated[str | None, Query(description="the 'next' cursor of a page")] = None,
) -> dict[str, Any]:
    person = _person(request, key)
    rows = request.app.state.tp.profiles.timeline(
        person, limit, decode_cursor(before) if before else None
    )
    return {
        "person": f"person:{person}",
        "events": [stored_event_json(row) for row in rows],
        "next": encode_cursor(rows[-1]) if len(rows) == limit else None,
    }


@router.get("/v1/profiles/{key:path}/merges")
def profile_merges(request: Request, _: Reader, key: str) -> dict[str, Any]:
    person = _person(request, key)
    return {"person": f"person:{person}", "merges": request.app.state.tp.profiles.merges(person)}


@router.get("/v1/profiles/{key:path}")
def get_profile(request: Request, _: Reader, key: str, history: bool = False) -> dict[str, Any]:
    person = _person(request, key)
    try:
        return request.app.state.tp.profiles.get(person).as_dict(history=history)
    except ProfileNotFound as exc:
        raise HTTPException(404, str(exc)) from None


class UnmergeRequest(BaseModel):
    identifier: str = Field(description="TYPE:VALUE of the identifier to detach")
    note: str = Field(default="", max_length=500)


@router.post("/v1/identity/unmerge")
def unmerge(request: Request, _: Admin, body: UnmergeRequest) -> dict[str, Any]:
    tp = request.app.state.tp
    try:
        identifier = parse_key(body.identifier)
    except ValueError as exc:
        raise HTTPException(422, f"identifier: {exc}") from None
    if identifier.type == "person":
        raise HTTPException(
            422, "identifier: name an identifier (e.g. anonymous_id:…), not a person"
        )
    sid = tp.identity.sid_of(identifier)
    if sid is None:
        raise HTTPException(404, f"no identifier {identifier}")
    persons = tp.identity.detach(sid, note=body.note)
    return {"detached": str(identifier), "persons": [f"person:{p}" for p in persons]}


@router.post("/v1/identity/rebuild")
def rebuild_identity(request: Request, _: Admin) -> dict[str, Any]:
    from touchpoints.identity.rebuild import rebuild

    return asdict(rebuild(request.app.state.tp.identity))
