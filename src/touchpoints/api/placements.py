"""Personalisation: placements (admins change them, every change audited; read keys see them
and their control-group uplift) and the decision a website or an app asks for.

``POST /v1/decide`` comes from the browser, which holds the public write key (as
analytics.js does: Basic auth with the key as user name, or ``writeKey`` in the body), so a
write key may ask by ``anonymousId`` and ``userId``; asking by any other identifier needs a
key that reads profiles (and is recorded in the audit log as reading the person). It is the
hot path of a page, so the server answers it from a plain Starlette route in front of
FastAPI, as it does profile lookups: the key, the placement, the identity map and the
person's facts are all in memory; only the first decision for a person after a change to
them reads the warehouse, in a worker thread. Like the collector's routes it answers
browsers on other origins (CORS) and is limited per key by ``rate_limit_collect``, not the
API's rate. The FastAPI route below is the documented contract (OpenAPI) and answers the
same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Path, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.requests import Request as PlainRequest
from starlette.responses import Response as PlainResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from touchpoints.access.keys import ApiKey, secret_from_header
from touchpoints.access.limits import RateLimiter
from touchpoints.activate.audiences.conditions import KEY_PATTERN
from touchpoints.activate.decide import DecideQuery, decide_query
from touchpoints.activate.decide.definitions import PlacementDefinition
from touchpoints.activate.decide.results import Decision, Placement, PlacementList, Uplift
from touchpoints.api.auth import audited, authorise, require
from touchpoints.api.errors import error_response
from touchpoints.api.state import core
from touchpoints.errors import InvalidRequest, TooManyRequests, TouchpointsError, Unauthorized

if TYPE_CHECKING:
    from touchpoints.access.keys import KeyStore
    from touchpoints.core import Touchpoints

router = APIRouter(tags=["personalisation"])
Admin = Annotated[ApiKey, Depends(require("admin"))]
Analyst = Annotated[ApiKey, Depends(require("analytics"))]
Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The placement's key (e.g. home_hero)")]
Definition = Annotated[
    dict[str, Any],
    Body(description="key, name, strategy, control_percent, conversion_event, default, rules"),
]
DECIDE_PATH = "/v1/decide"
_JSON = "application/json"
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
    "Access-Control-Max-Age": "86400",
}


@router.get("/v1/placements")
def placements(request: Request, _: Analyst) -> PlacementList:
    """Every placement with its rules and how many decisions it made."""
    return core(request).placements.listing()


@router.post("/v1/placements", status_code=201)
def create_placement(request: Request, admin: Admin, body: Definition) -> Placement:
    """A new placement; decisions use it at once."""
    made = core(request).placements.create(body)
    audited(request, admin, "placement.create", f"placement:{made.key}", f"{len(made.rules)} rules")
    return made


@router.get("/v1/placements/schema")
def placement_schema(_: Analyst) -> dict[str, Any]:
    """The JSON Schema of a placement (rules' conditions: the audience language)."""
    return PlacementDefinition.model_json_schema(by_alias=True)


@router.get("/v1/placements/{key}")
def placement(request: Request, _: Analyst, key: Key) -> Placement:
    return core(request).placements.get(key)


@router.put("/v1/placements/{key}")
def change_placement(request: Request, admin: Admin, key: Key, body: Definition) -> Placement:
    """A new definition for the placement (its key stays); decisions use it at once."""
    changed = core(request).placements.change(key, body)
    audited(request, admin, "placement.change", f"placement:{key}", f"{len(changed.rules)} rules")
    return changed


@router.delete("/v1/placements/{key}", status_code=204)
def remove_placement(request: Request, admin: Admin, key: Key) -> Response:
    """The placement and its decision log."""
    core(request).placements.remove(key)
    audited(request, admin, "placement.delete", f"placement:{key}")
    return Response(status_code=204)


@router.get("/v1/placements/{key}/uplift")
def uplift(request: Request, _: Analyst, key: Key) -> Uplift:
    """The control group against the rest: conversion rates and their difference with a
    95% interval, and the decisions per reason."""
    return core(request).placements.uplift(key)


async def _deciding(request: Request) -> ApiKey:
    """A key that may send events (the browser's write key) or read profiles."""
    return _caller(core(request).keys, request.headers.get("authorization"), None)


_deciding.permission = "collect"  # type: ignore[attr-defined]  # the least it takes


@router.post(DECIDE_PATH)
def decide(
    request: Request,
    key: Annotated[ApiKey, Depends(_deciding)],
    body: Annotated[DecideQuery, Body()],
) -> Decision:
    """The content to show one person in one placement, and why. Send the write key (as
    analytics.js does) or a read key; see the module's docstring for who may ask by what.
    Answered by the lean route in front of this one (the same service)."""
    tp = core(request)
    found = tp.decider.decide(body, key.allows("profiles"))
    if body.identifier is not None:
        target = f"person:{found.person}" if found.person is not None else None
        audited(request, key, "profile.decide", target, body.placement, durable=False)
    return found


def _caller(keys: KeyStore, header: str | None, body_key: Any) -> ApiKey:
    """The key that asks: from the header, or ``writeKey`` in the body; one that may send
    events or read profiles."""
    secret = secret_from_header(header) if header else None
    if secret is None and isinstance(body_key, str) and body_key:
        secret = body_key
    if secret is None:
        raise Unauthorized(
            "no key: send the write key as the Basic auth user name (as analytics.js does), "
            "or a read key as 'Authorization: Bearer <key>'",
            {"WWW-Authenticate": "Basic"},
        )
    key = keys.verify(secret)
    if key is None or not (key.allows("collect") or key.allows("profiles")):
        if key is None:
            raise Unauthorized("the key is not valid (unknown or revoked)")
        authorise(keys, f"Bearer {secret}", "profiles")  # raises Forbidden, naming it
    assert key is not None
    return key


def decide_route(tp: Touchpoints) -> Route:
    """The lean route for ``POST /v1/decide`` (see the module's docstring)."""
    return Route(DECIDE_PATH, _LeanDecide(tp), methods=["POST", "OPTIONS"])


class _LeanDecide:
    """``POST /v1/decide`` as a bare ASGI app: Starlette's request and response objects and
    its per-route exception wrapper were a fifth of a cached decision's time (cProfile,
    2026-12-02), so the body is read from ``receive``, the headers from the scope, and the
    answer sent as two messages. Errors still take :func:`error_response`."""

    def __init__(self, tp: Touchpoints) -> None:
        self.tp = tp
        self.decider = tp.decider
        self.limiter = RateLimiter(
            tp.settings.rate_limit_collect, tp.settings.rate_limit_collect_burst
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":  # CORS preflight from browsers
            await PlainResponse(status_code=204, headers=_CORS)(scope, receive, send)
            return
        try:
            body = await _body(receive)
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise InvalidRequest(f"body: not JSON ({exc})") from None
            body_key = data.get("writeKey") if isinstance(data, dict) else None
            key = self._caller(_header(scope, b"authorization"), body_key)
            wait = self.limiter.wait(key)
            if wait:
                raise TooManyRequests(self.limiter.message(wait), {"Retry-After": str(wait)})
            query = decide_query(data)
            reader = key.allows("profiles")
            found = self.decider.cached(query, reader)
            if found is None:
                found = await run_in_threadpool(self.decider.decide, query, reader)
            if query.identifier is not None:
                origin = self.tp.proxies.client_address(PlainRequest(scope))
                target = f"person:{found.person}" if found.person is not None else None
                self.tp.audit.record(key.id, "profile.decide", target, origin, query.placement)
            answer = found.model_dump_json().encode()
        except TouchpointsError as exc:
            response = error_response(exc)
            response.headers["Access-Control-Allow-Origin"] = "*"
            await response(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                    (b"access-control-allow-origin", b"*"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    def _caller(self, header: str | None, body_key: Any) -> ApiKey:
        """:func:`_caller`, the header's secret parsed once per client
        (:meth:`KeyStore.header_secret`, the collector's too)."""
        if header is not None:
            secret = self.tp.keys.header_secret(header)
            key = self.tp.keys.verify(secret) if secret is not None else None
            if key is not None and (key.allows("collect") or key.allows("profiles")):
                return key
        return _caller(self.tp.keys, header, body_key)


async def _body(receive: Receive) -> bytes:
    """The request's body, read whole (its size and time are bounded by the server's
    :class:`touchpoints.api.limits.RequestGuard` around every route)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
