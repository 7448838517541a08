"""What every request may cost before any route looks at it: its body's time and size, and
its key's rate.

:class:`RequestGuard` bounds reading a request's body, which neither uvicorn nor FastAPI
does: FastAPI reads a whole body before it checks the key (so anyone could send a gigabyte),
and a client may send a body a byte a minute (slow-body attacks). The body must arrive
within ``body_timeout`` seconds of the headers and be at most ``max_body_bytes`` long (a
``Content-Length`` over it is refused before a byte is read). Otherwise the app is told the
client left (``http.disconnect``, so no route keeps waiting or reading), and the answer is
408 or 413 with ``Connection: close``: what else the client sends is never read. The
collector's own, tighter limits (``max_event_bytes``, ``max_batch_bytes``) answer first
with their own words.

:class:`KeyRateLimit` gives each read or admin key a token bucket for the API and the
lean profile lookup (:class:`~touchpoints.access.limits.RateLimiter`): beyond its rate the
answer is 429 with ``Retry-After``. The collector limits write keys itself (it may find the
key in the body).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from touchpoints.access.keys import KeyStore, secret_from_header
from touchpoints.access.limits import RateLimiter

_JSON = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = orjson.dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class RequestGuard:
    """Bounds on a request body's time and size (see the module)."""

    def __init__(self, app: ASGIApp, body_timeout: float, max_body_bytes: int) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _answer(send, 413, _too_large(declared, self.max_body_bytes), [_CLOSE])
            return
        body = _Body(receive, self.body_timeout, self.max_body_bytes)
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if body.refused is not None:
                # What the app answered to the client "leaving" (FastAPI: 400, the body
                # could not be read) is replaced by the refusal; the rest is unread.
                if not started:
                    started = True
                    await _answer(send, *body.refused, [_CLOSE])
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, body.read, sending)
        except Exception:
            if body.refused is None:
                raise
            # What the app made of the client "leaving" (ClientDisconnect): the refusal.
        finally:
            body.close()
        if body.refused is not None and not started:
            await _answer(send, *body.refused, [_CLOSE])


class _Body:
    """One request's ``receive``, bounded in time and size: past either, the app is told
    the client left and :attr:`refused` holds the answer (408 or 413).

    One timer for the whole body, armed at the first read and cancelled once the body is in;
    it interrupts only a read that is waiting (asyncio.timeout_at around each read cost a
    tenth of a small request's time in the app: cProfile, 2026-12-02)."""

    def __init__(self, receive: Receive, timeout: float, max_bytes: int) -> None:
        self.receive = receive
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + timeout  # from the headers' arrival
        self.max_bytes = max_bytes
        self.refused: tuple[int, str] | None = None
        self.size = 0
        self.done = False
        self.expired = False
        self._waiting: asyncio.Task[object] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def read(self) -> Message:
        if self.refused is not None:
            return {"type": "http.disconnect"}
        if self.done:
            return await self.receive()
        if self._timer is None:
            self._timer = self.loop.call_at(self.deadline, self._expire)
        if self.expired:
            return self._late()
        task = self._waiting = asyncio.current_task()
        try:
            message = await self.receive()
        except asyncio.CancelledError:
            if not self.expired or task is None:
                raise
            task.uncancel()
            return self._late()
        finally:
            self._waiting = None
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > self.max_bytes:
                self.refused = (413, _too_large(self.size, self.max_bytes))
                return {"type": "http.disconnect"}
            self.done = not message.get("more_body", False)
            if self.done:
                self.close()
        return message

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        self.expired = True
        if self._waiting is not None:
            self._waiting.cancel()

    def _late(self) -> Message:
        self.refused = (408, f"the request's body did not arrive within {self.timeout:g} s")
        return {"type": "http.disconnect"}


def _too_large(size: int, limit: int) -> str:
    return (
        f"the request's body is {size} bytes or more, over the limit of {limit} bytes; "
        "nothing was read"
    )


class KeyRateLimit:
    """429 with ``Retry-After`` for a key past its rate, on every path but ``exempt`` (the
    collector's, which limits its keys itself)."""

    def __init__(
        self, app: ASGIApp, keys: KeyStore, limiter: RateLimiter, exempt: Collection[str]
    ) -> None:
        self.app = app
        self.keys = keys
        self.limiter = limiter
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.limiter.rate > 0 and scope["path"] not in self.exempt:
            wait = self._wait(scope)
            if wait:
                headers = [(b"retry-after", str(wait).encode())]
                await _answer(send, 429, self.limiter.message(wait), headers)
                return
        await self.app(scope, receive, send)

    def _wait(self, scope: Scope) -> int:
        header = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), None)
        if header is None:
            return 0
        secret = secret_from_header(header.decode("latin-1"))
        key = self.keys.verify(secret) if secret else None
        return 0 if key is None else self.limiter.wait(key)
