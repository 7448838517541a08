"""Profiles (the ``profiles`` permission: read keys, analysts, privacy officers, admins): a
thin face over :class:`touchpoints.profiles.Profiles`. Every answer that shows a person is
recorded in the audit log (``profile.read``, ``profile.timeline``, ``profile.merges``,
``profile.search``), naming the person by number only.

``GET /v1/profiles/{key}`` is the hot path (an app or a call-centre screen looking a customer
up), so the server answers it from a plain Starlette route in front of FastAPI (``lookup_route``,
as the collector does): the key check, the identity map and the serialised profile are all in
memory, so a repeated lookup never leaves the event loop; only a profile not yet cached is
assembled from the warehouse, in a worker thread. Measured on two cores (benchmarks/identity.py),
FastAPI's dependency solving, thread hops and response validation cost about 0.4 ms a lookup.
The FastAPI route below stays the documented contract (OpenAPI) and answers the same way; it
serves the requests the lean route leaves to it (those with a query string, e.g. ``history``).
The lean route's audit line is buffered (written within 100 ms, and at shutdown; its cost:
:mod:`touchpoints.access.audit`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as PlainRequest
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from touchpoints.access.keys import ApiKey
from touchpoints.activate.audiences.results import PersonMemberships, PersonTraits
from touchpoints.api.auth import audited, authorise, require
from touchpoints.api.errors import error_response
from touchpoints.api.state import core
from touchpoints.errors import TouchpointsError
from touchpoints.profiles.results import ConsentHistory, MergeLog, PersonList, Profile, Timeline

if TYPE_CHECKING:
    from touchpoints.core import Touchpoints

router = APIRouter(tags=["profiles"])
_JSON = "application/json"
Reader = Annotated[ApiKey, Depends(require("profiles"))]


@router.get("/v1/profiles")
def search_profiles(
    request: Request,
    key: Reader,
    trait: Annotated[str, Query(min_length=1, max_length=200)],
    value: Annotated[str, Query(min_length=1, max_length=1000)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> PersonList:
    """Persons with the trait equal to the value (letter case aside), in any event."""
    found = core(request).profiles.find(trait, value, limit)
    for person in found.persons:
        audited(request, key, "profile.search", person, durable=False)
    return found


@router.get("/v1/profiles/{key:path}/timeline")
def profile_timeline(
    request: Request,
    reader: Reader,
    key: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before: Annotated[str | None, Query(description="the 'next' cursor of a page")] = None,
) -> Timeline:
    """The person's events across every channel, newest first, a page at a time."""
    page = core(request).profiles.timeline_page(key, limit, before)
    audited(request, reader, "profile.timeline", page.person, durable=False)
    return page


@router.get("/v1/profiles/{key:path}/consent")
def profile_consent(request: Request, reader: Reader, key: str) -> ConsentHistory:
    """The person's consent per category as it stands (chosen, or the default), and every
    change they made with when, where (channel) and through which source."""
    history = core(request).profiles.consent_history(key)
    audited(request, reader, "profile.consent", history.person, durable=False)
    return history


@router.get("/v1/profiles/{key:path}/computed-traits")
def profile_computed_traits(request: Request, reader: Reader, key: str) -> PersonTraits:
    """The person's computed traits, each with its definition in a line and its value (a
    count that found nothing: 0), as last computed."""
    found = core(request).traits.of_person(key)
    audited(request, reader, "profile.traits", found.person, durable=False)
    return found


@router.get("/v1/profiles/{key:path}/audiences")
def profile_audiences(
    request: Request,
    reader: Reader,
    key: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> PersonMemberships:
    """The audiences the person is in (since when), and their entries and exits, newest
    first."""
    found = core(request).audiences.of_person(key, limit)
    audited(request, reader, "profile.audiences", found.person, durable=False)
    return found


@router.get("/v1/profiles/{key:path}/merges")
def profile_merges(request: Request, reader: Reader, key: str) -> MergeLog:
    """The merges that made the person and the unmerges of its identifiers, oldest first."""
    log = core(request).profiles.merge_log(key)
    audited(request, reader, "profile.merges", log.person, durable=False)
    return log


@router.get(
    "/v1/profiles/{key:path}",
    response_class=Response,
    responses={200: {"model": Profile, "description": "The person's 360° profile"}},
)
def get_profile(request: Request, reader: Reader, key: str, history: bool = False) -> Response:
    """The 360° profile of the person behind any identifier (TYPE:VALUE) or person:N:
    identifiers, traits with their source, computed attributes, merges; ``history``: every
    value each trait had. Answered from a cache of the serialised profile."""
    profiles = core(request).profiles
    person = profiles.resolve(key)
    body = profiles.json(person, history=history)
    audited(request, reader, "profile.read", f"person:{person}", durable=False)
    return Response(body, media_type=_JSON)


class _LookupRoute(Route):
    """``GET /v1/profiles/{key}`` without a query string; everything else under the path
    (timeline, merges, ``?history=true``, other methods) falls through to FastAPI."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["query_string"]
            or scope["path"].endswith(
                ("/timeline", "/merges", "/consent", "/computed-traits", "/audiences")
            )
        ):
            return Match.NONE, {}
        return super().matches(scope)


def lookup_route(tp: Touchpoints) -> Route:
    """The lean route for ``GET /v1/profiles/{key}`` (see the module's docstring)."""
    profiles = tp.profiles

    async def lookup_profile(request: PlainRequest) -> Response:
        key = request.path_params["key"]
        try:
            reader = authorise(tp.keys, request.headers.get("authorization"), "profiles")
            person = profiles.resolve_cached(key)
            body = None if person is None else profiles.cached_json(person)
            if body is None:
                person, body = await run_in_threadpool(_assembled, key)
            origin = tp.proxies.client_address(request)
            tp.audit.record(reader.id, "profile.read", f"person:{person}", origin)
        except TouchpointsError as exc:
            return error_response(exc)
        return Response(body, media_type=_JSON)

    def _assembled(key: str) -> tuple[int, bytes]:
        person = profiles.resolve(key)
        return person, profiles.json(person)

    return _LookupRoute("/v1/profiles/{key:path}", lookup_profile, methods=["GET"])
