"""Profiles (read keys) and identity operations (admin keys): a thin face over the core.

``GET /v1/profiles/{key}`` is the hot path (an app or a call-centre screen looking a customer
up), so the server answers it from a plain Starlette route in front of FastAPI (``lookup_route``,
as the collector does): the key check, the identity map and the serialised profile are all in
memory, so a repeated lookup never leaves the event loop; only a profile not yet cached is
assembled from the warehouse, in a worker thread. Measured on two cores (benchmarks/identity.py),
FastAPI's dependency solving, thread hops and response validation cost about 0.4 ms a lookup.
The FastAPI route below stays the documented contract (OpenAPI) and answers the same way; it
serves the requests the lean route leaves to it (those with a query string, e.g. ``history``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as PlainRequest
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from touchpoints.api.auth import authorise, require
from touchpoints.api.errors import error_response
from touchpoints.errors import BadRequest, InvalidRequest, NotFound, TouchpointsError
from touchpoints.events import stored_event_json
from touchpoints.privacy.keys import ApiKey
from touchpoints.profiles import parse_key
from touchpoints.profiles.profile import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from touchpoints.core import Touchpoints

router = APIRouter(tags=["profiles"])
_JSON = "application/json"
Reader = Annotated[ApiKey, Depends(require("read"))]
Admin = Annotated[ApiKey, Depends(require("admin"))]


def _person(request: Request, key: str) -> int:
    return int(request.app.state.tp.profiles.resolve(key))


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


@router.get(
    "/v1/profiles/{key:path}",
    response_class=Response,
    responses={
        200: {
            "description": "The person's profile",
            "content": {_JSON: {"schema": {"type": "object", "additionalProperties": True}}},
        }
    },
)
def get_profile(request: Request, _: Reader, key: str, history: bool = False) -> Response:
    person = _person(request, key)
    return Response(request.app.state.tp.profiles.json(person, history=history), media_type=_JSON)


class _LookupRoute(Route):
    """``GET /v1/profiles/{key}`` without a query string; everything else under the path
    (timeline, merges, ``?history=true``, other methods) falls through to FastAPI."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["query_string"]
            or scope["path"].endswith(("/timeline", "/merges"))
        ):
            return Match.NONE, {}
        return super().matches(scope)


def lookup_route(tp: Touchpoints) -> Route:
    """The lean route for ``GET /v1/profiles/{key}`` (see the module's docstring)."""
    profiles = tp.profiles

    async def lookup_profile(request: PlainRequest) -> Response:
        key = request.path_params["key"]
        try:
            authorise(tp.keys, request.headers.get("authorization"), "read")
            person = profiles.resolve_cached(key)
            body = None if person is None else profiles.cached_json(person)
            if body is None:
                body = await run_in_threadpool(_assembled, key)
        except TouchpointsError as exc:
            return error_response(exc)
        return Response(body, media_type=_JSON)

    def _assembled(key: str) -> bytes:
        return profiles.json(profiles.resolve(key))

    return _LookupRoute("/v1/profiles/{key:path}", lookup_profile, methods=["GET"])


class UnmergeRequest(BaseModel):
    identifier: str = Field(description="TYPE:VALUE of the identifier to detach")
    note: str = Field(default="", max_length=500)


@router.post("/v1/identity/unmerge")
def unmerge(request: Request, _: Admin, body: UnmergeRequest) -> dict[str, Any]:
    tp = request.app.state.tp
    try:
        identifier = parse_key(body.identifier)
    except BadRequest as exc:
        raise InvalidRequest(f"identifier: {exc}") from None
    if identifier.type == "person":
        raise InvalidRequest("identifier: name an identifier (e.g. anonymous_id:…), not a person")
    sid = tp.identity.sid_of(identifier)
    if sid is None:
        raise NotFound(f"no identifier {identifier}")
    persons = tp.identity.detach(sid, note=body.note)
    return {"detached": str(identifier), "persons": [f"person:{p}" for p in persons]}


@router.post("/v1/identity/rebuild")
def rebuild_identity(request: Request, _: Admin) -> dict[str, Any]:
    from touchpoints.identity.rebuild import rebuild

    return asdict(rebuild(request.app.state.tp.identity))
