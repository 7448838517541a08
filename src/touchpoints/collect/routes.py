"""The Segment-compatible collector: plain ASGI endpoints with orjson, kept lean on purpose.

Measured here on one core: about 11,000 single-event requests/s for a Starlette+orjson route
against 4,300 for a pydantic-model FastAPI route, so the hot path avoids models and middleware.
Starlette's own request wrapper went too (:class:`_Endpoint`): a collector process took 154 µs
of CPU a request with it and 103 µs without (benchmarks/RESULTS.md, "The collector's routes as
plain ASGI endpoints").

Without a running writer (the CLI driving the app in process) accepted events are written
before the answer, which then says how many were new (``stored``).

Status codes: 200 accepted (a batch may report ``rejected`` events, which are quarantined);
400 nothing valid (quarantined); 401 no or wrong write key (nothing stored); 413 body too
large and 415 wrong content type (nothing stored: the sender still holds the data and is told
why); 429 writer behind or the key past its rate (``rate_limit_collect``; nothing stored;
retry after ``Retry-After`` seconds).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from touchpoints.access.keys import ApiKey, KeyVerifier
from touchpoints.access.limits import RateLimiter
from touchpoints.collect.ingest import BATCH_ROUTES, SINGLE_ROUTES, Outcome, Rejected
from touchpoints.collect.writer import Backpressure, WriteAheadLog
from touchpoints.events import EventRow, Problem, json_text, now_micros
from touchpoints.warehouse import utc_now

if TYPE_CHECKING:
    from touchpoints.config import Settings


class Holds(Protocol):
    """Where refused events and bodies are held (the quarantine, or a collector process's
    spool of it)."""

    def hold_events(
        self,
        rejected: Sequence[Rejected],
        *,
        source: str,
        route: str,
        envelope: dict[str, Any],
        received_at: datetime,
    ) -> list[int]: ...

    def hold_body(
        self,
        body: bytes,
        problems: Sequence[Problem],
        *,
        source: str,
        route: str,
        received_at: datetime,
    ) -> int | None: ...


class CollectorHost(Protocol):
    """What the collector needs of the process it runs in: the server's
    :class:`touchpoints.core.Touchpoints`, or a collector process's
    :class:`touchpoints.core.CollectorProcess` (no database)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def keys(self) -> KeyVerifier: ...
    @property
    def writer(self) -> WriteAheadLog | None: ...
    @property
    def quarantine(self) -> Holds: ...

    def judge(
        self, payload: Any, route: str, *, source: str, received_at: int | None = None
    ) -> Outcome: ...

    def write_rows(self, rows: list[EventRow]) -> int: ...


log = logging.getLogger("touchpoints.collect")

_OK = b'{"success":true}'
_ACCEPTED_TYPES = ("application/json", "text/plain", "application/x-json")
# Browsers (analytics.js) post from other origins; the write key, not the origin, authorises.
_ANY_ORIGIN = (b"access-control-allow-origin", b"*")
_PREFLIGHT = [
    _ANY_ORIGIN,
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type, Authorization, Content-Encoding"),
    (b"access-control-max-age", b"86400"),
]
_JSON_TYPE = (b"content-type", b"application/json")
# The request headers the collector reads (uvicorn gives names in lower case).
_READ = frozenset((b"authorization", b"content-type", b"content-encoding", b"content-length"))


class _Reply:
    """An answer as the two ASGI messages that send it: no Starlette ``Response`` (which
    builds a header list and a ``MutableHeaders`` for each), nor its request wrapper."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    async def __call__(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


# The answer to every CORS preflight: the same, so made once.
_PREFLIGHT_REPLY = _Reply(204, b"", _PREFLIGHT)


def _json_reply(status: int, body: bytes, *extra: tuple[bytes, bytes]) -> _Reply:
    length = (b"content-length", str(len(body)).encode())
    return _Reply(status, body, [length, _JSON_TYPE, _ANY_ORIGIN, *extra])


def _ok_response() -> _Reply:
    return _json_reply(200, _OK)


def _error(status: int, message: str, *headers: tuple[bytes, bytes], **extra: Any) -> _Reply:
    body = {"success": False, "error": message, **extra}
    return _json_reply(status, orjson.dumps(body), *headers)


class _Answered(Exception):
    """A step of the collector has answered the request (a refusal, or backpressure)."""

    def __init__(self, response: _Reply) -> None:
        self.response = response


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request headers the collector reads, the first of each name."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _READ and name not in found:
            found[name] = value
    return found


async def _read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(int(declared))
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()  # the guard lets it go unanswered
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge(size)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing to inflate past ``limit`` (decompression bombs)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"body is not valid gzip: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise _TooLarge(len(data))
    return data


class Collector:
    def __init__(self, tp: CollectorHost, share: int = 1) -> None:
        """``share``: the collector processes the key rate is divided among (the kernel
        spreads their connections evenly)."""
        self.tp = tp
        settings = tp.settings
        self._limiter = RateLimiter(
            settings.rate_limit_collect / share,
            max(1, settings.rate_limit_collect_burst // share),
        )

    def paths(self) -> dict[str, str]:
        """The Segment routes' paths, plus analytics.js's short forms (/v1/t, /v1/p, …
        /v1/b), with the route each takes."""
        paths = {f"/v1/{name}": name for name in SINGLE_ROUTES}
        paths.update({f"/v1/{name[0]}": name for name in SINGLE_ROUTES})
        paths.update({"/v1/batch": "batch", "/v1/b": "batch", "/v1/import": "import"})
        return paths

    def routes(self) -> list[Route]:
        """Each path's route, answered by a plain ASGI endpoint (:class:`_Endpoint`)."""
        return [
            Route(path, _Endpoint(self, route), methods=["POST", "OPTIONS"])
            for path, route in self.paths().items()
        ]

    async def handle(self, scope: Scope, receive: Receive, route: str) -> _Reply:
        """One request through the collector's steps, each of which may answer it at once
        (by raising :class:`_Answered`): the body, the key, the JSON, the events, storing."""
        received_at = now_micros()
        headers = _headers(scope)
        try:
            body = await self._body(headers, receive, route)
            key = self._key_from_header(headers.get(b"authorization"))
            payload = await self._payload(body, key, route)
            key = key or self._key_from_body(payload)
            if payload is None:
                problem = Problem("", "request body is empty")
                raise _Answered(_error(400, problem.message, errors=[problem.as_dict()]))
            outcome = await self._judged(payload, key, route, received_at)
            stored = await self._store(outcome.rows)
        except _Answered as answered:
            return answered.response
        return await self._answer(outcome, key, route, stored)

    async def _body(self, headers: dict[bytes, bytes], receive: Receive, route: str) -> bytes:
        """The request's body, of an accepted type and size, gunzipped."""
        settings = self.tp.settings
        content_type = _text(headers.get(b"content-type")).split(";")[0].strip().lower()
        if content_type and content_type not in _ACCEPTED_TYPES:
            raise _Answered(
                _error(415, f"content type {content_type!r} is not accepted; send application/json")
            )
        is_batch = route in BATCH_ROUTES
        limit = settings.max_batch_bytes if is_batch else settings.max_event_bytes
        what = "a batch" if is_batch else "a single event (use /v1/batch for more)"
        try:
            body = await _read_body(receive, headers.get(b"content-length"), limit)
            encoding = _text(headers.get(b"content-encoding")).strip().lower()
            if encoding == "gzip":
                return _gunzip(body, limit)
            if encoding not in ("", "identity"):
                raise _Answered(
                    _error(415, f"content encoding {encoding!r} is not supported; use gzip")
                )
            return body
        except _TooLarge as exc:
            raise _Answered(
                _error(
                    413,
                    f"request body is {exc.size} bytes or more, over the limit of {limit} "
                    f"bytes for {what}; nothing was stored",
                )
            ) from None
        except ValueError as exc:
            raise _Answered(_error(400, str(exc))) from None

    def _key_from_header(self, header: bytes | None) -> ApiKey | None:
        """The live write key of the Authorization header; None without the header. A
        header that holds no key, or a key that is not valid, is answered 401."""
        if header is None:
            return None
        secret = self.tp.keys.header_secret(header.decode("latin-1"))
        if not secret:
            raise _Answered(
                _error(
                    401,
                    "the Authorization header holds no key: send the write key as the Basic "
                    "auth user name",
                )
            )
        return self._allowed(secret)

    def _allowed(self, secret: str) -> ApiKey:
        """The live key of ``secret`` allowed to send, within its rate (else 401, 429)."""
        key = self.tp.keys.verify(secret)
        if key is None or not key.allows("collect"):
            raise _Answered(_error(401, "the write key is not valid (unknown or revoked)"))
        wait = self._limiter.wait(key)
        if wait:
            message = f"{self._limiter.message(wait)}; nothing was stored"
            raise _Answered(_error(429, message, _retry_after(wait)))
        return key

    async def _payload(self, body: bytes, key: ApiKey | None, route: str) -> Any:
        """The body's JSON (None for an empty body). A body that is not JSON is quarantined
        when a key vouches for it, and answered 400 (401 without a key)."""
        try:
            return orjson.loads(body) if body else None
        except orjson.JSONDecodeError as exc:
            if key is None:
                raise _Answered(
                    _error(401, "no write key: send it as the Basic auth user name")
                ) from None
            problem = Problem("", f"body is not valid JSON: {exc}")
            await self._hold_body(body, [problem], key, route)
            raise _Answered(
                _error(400, problem.message, errors=[problem.as_dict()], quarantined=1)
            ) from None

    def _key_from_body(self, payload: Any) -> ApiKey:
        """The live write key given as ``writeKey`` in the body (analytics.js's way)."""
        body_key = payload.get("writeKey") if isinstance(payload, dict) else None
        if not isinstance(body_key, str) or not body_key:
            raise _Answered(
                _error(401, "no write key: send it as the Basic auth user name or as writeKey")
            )
        return self._allowed(body_key)

    async def _judged(self, payload: Any, key: ApiKey, route: str, received_at: int) -> Outcome:
        """The request's events judged; a body that cannot be split into events is
        quarantined whole and answered 400."""
        if isinstance(payload, dict) and "writeKey" in payload:
            # A secret: never stored with the event, nor in the quarantine.
            payload = {name: value for name, value in payload.items() if name != "writeKey"}
        outcome = self.tp.judge(payload, route, source=key.event_source, received_at=received_at)
        if outcome.body_problems:
            await self._hold_body(json_text(payload), outcome.body_problems, key, route)
            errors = [p.as_dict() for p in outcome.body_problems]
            raise _Answered(_error(400, _summary(errors), errors=errors, quarantined=1))
        return outcome

    async def _store(self, rows: list[EventRow]) -> int | None:
        """Hand the rows to the writer (its log makes them durable before the answer); in
        process, without a writer, store them now and say how many were new."""
        writer = self.tp.writer
        if not rows:
            return None
        if writer is None:
            return await run_in_threadpool(self.tp.write_rows, rows)
        try:
            position = writer.submit(rows)
        except Backpressure as exc:
            message = f"the server is busy writing; retry in {exc.retry_after} s"
            raise _Answered(_error(429, message, _retry_after(exc.retry_after))) from None
        if writer.fsync:
            await writer.durable(position)
        return None

    async def _answer(
        self, outcome: Outcome, key: ApiKey, route: str, stored: int | None
    ) -> _Reply:
        """200 with what was accepted; the refused events are quarantined and listed (400
        when none was accepted)."""
        if not outcome.rejected:
            if stored is None:
                return _ok_response()
            return _json_reply(200, orjson.dumps({"success": True, "stored": stored}))
        await run_in_threadpool(
            self.tp.quarantine.hold_events,
            outcome.rejected,
            source=key.event_source,
            route=route,
            envelope=outcome.envelope,
            received_at=utc_now(),
        )
        rejected = [item.as_dict() for item in outcome.rejected]
        if not outcome.rows:
            errors = [error for item in rejected for error in item["errors"]]
            return _error(
                400, _summary(errors), errors=errors, rejected=rejected, quarantined=len(rejected)
            )
        body_out: dict[str, Any] = {
            "success": True,
            "accepted": len(outcome.rows),
            "rejected": rejected,
            "quarantined": len(rejected),
        }
        if stored is not None:
            body_out["stored"] = stored
        return _json_reply(200, orjson.dumps(body_out))

    async def _hold_body(
        self, body: bytes, problems: list[Problem], key: ApiKey, route: str
    ) -> None:
        await run_in_threadpool(
            self.tp.quarantine.hold_body,
            body,
            problems,
            source=key.event_source,
            route=route,
            received_at=utc_now(),
        )


class _Endpoint:
    """One path's plain ASGI endpoint. Starlette wraps a function endpoint in its request
    and exception layers and builds a ``Request`` and a ``Response`` for each call; the
    collector reads four headers and the body and sends two messages, so it takes the ASGI
    call itself (a Starlette ``Route`` passes an object that is not a function as it is)."""

    def __init__(self, collector: Collector, route: str) -> None:
        self.collector = collector
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":  # CORS preflight from browsers
            await _PREFLIGHT_REPLY(send)
            return
        reply = await self.collector.handle(scope, receive, self.route)
        await reply(send)


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("latin-1")


def _retry_after(seconds: int) -> tuple[bytes, bytes]:
    return (b"retry-after", str(seconds).encode())


def _summary(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    where = f"event {first['index']}: " if "index" in first else ""
    field = f"{first['field']} " if first.get("field") else ""
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}{field}{first['message']}{more}"
