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
            await _answer(send, 413, self._too_large(declared), [_CLOSE])
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        refused: tuple[int, str] | None = None
        read = 0
        body_done = False
        started = False

        async def bounded() -> Message:
            nonlocal refused, read, body_done
            if body_done or refused is not None:
                return await receive() if refused is None else {"type": "http.disconnect"}
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                refused = (408, f"the request's body did not arrive within {self.body_timeout:g} s")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.max_body_bytes:
                    refused = (413, self._too_large(read))
                    return {"type": "http.disconnect"}
                body_done = not message.get("more_body", False)
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if refused is not None:
                # What the app answered to the client "leaving" (FastAPI: 400, the body
                # could not be read) is replaced by the refusal; the rest is unread.
                if not started:
                    started = True
                    await _answer(send, refused[0], refused[1], [_CLOSE])
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded, sending)
        except Exception:
            if refused is None:
                raise
            # What the app made of the client "leaving" (ClientDisconnect): the refusal.
        if refused is not None and not started:
            await _answer(send, refused[0], refused[1], [_CLOSE])

    def _too_large(self, size: int) -> str:
        return (
            f"the request's body is {size} bytes or more, over the limit of "
            f"{self.max_body_bytes} bytes; nothing was read"
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
