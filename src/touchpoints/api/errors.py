"""Errors to HTTP, in one place for every route (FastAPI's and the lean Starlette ones).

A :class:`~touchpoints.errors.TouchpointsError` is answered ``{"detail": message}`` with
the status of its kind, as FastAPI words its own errors. Anything else is a bug: it is
answered 500 with a message that says so (never a traceback), and logged with where it
happened — the frames of the traceback, not the exception's text, which could hold
personal data (an identifier in a KeyError).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from touchpoints.errors import TouchpointsError, describe, status_of

log = logging.getLogger("touchpoints.api")
_JSON = "application/json"
INTERNAL = "internal error: the server could not answer this (see its log); nothing was changed"


def detail(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error answer as FastAPI words it: ``{"detail": message}``."""
    return Response(
        orjson.dumps({"detail": message}), status_code=status, headers=headers, media_type=_JSON
    )


def error_response(exc: Exception, where: str = "") -> Response:
    """The answer for ``exc``: its kind's status and message, or 500 for a bug."""
    if isinstance(exc, TouchpointsError):
        return detail(status_of(exc), exc.message, exc.headers)
    if isinstance(exc, HTTPException):  # Starlette's own (a static file not found: 404)
        return detail(exc.status_code, exc.detail, dict(exc.headers or {}))
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unexpected %s %s\n%s", type(exc).__name__, where, frames.rstrip())
    return detail(500, INTERNAL)


def place(scope: Mapping[str, Any]) -> str:
    """Where a request went, for the log: its method and its route's template
    (``/v1/profiles/{key}``), never the path it was sent to, which can hold an e-mail address
    or a phone number (``/v1/profiles/email:…``)."""
    route = getattr(scope.get("route"), "path", None)
    if route is None:
        endpoint = scope.get("endpoint")
        route = getattr(endpoint, "__name__", None) or "(no route)"
    return f"in {scope.get('method', '')} {route}"


def invalid_request(exc: RequestValidationError) -> Response:
    """A request that does not fit its route's typed question: 422 with the problems in
    words (``detail``: "depth: Input should be …", as every other error reads) and as
    FastAPI lists them (``errors``), for programs."""
    problems = _writable(jsonable_encoder(exc.errors()))
    body = {"detail": describe(problems, request=True), "errors": problems}
    return Response(orjson.dumps(body), status_code=422, media_type=_JSON)


_INT64 = range(-(2**63), 2**64)  # the integers orjson writes


def _writable(value: Any) -> Any:
    """``value`` with integers orjson cannot write (past 64 bits: an offset of 2**64 sent
    to be refused) as their text, so the refusal itself can be written."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if value in _INT64 else str(value)
    if isinstance(value, list):
        return [_writable(item) for item in value]
    if isinstance(value, dict):
        return {key: _writable(item) for key, item in value.items()}
    return value


def install(app: FastAPI) -> None:
    """Answer every error of the hierarchy (and every bug) the same way on ``app``."""

    async def known(request: Request, exc: Exception) -> Response:
        return error_response(exc)

    async def malformed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return invalid_request(exc)

    async def unexpected(request: Request, exc: Exception) -> Response:
        return error_response(exc, place(request.scope))

    app.add_exception_handler(TouchpointsError, known)
    app.add_exception_handler(RequestValidationError, malformed)
    app.add_exception_handler(Exception, unexpected)
