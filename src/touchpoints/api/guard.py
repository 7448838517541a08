"""The outermost layer of every app touchpoints serves (the server's and each collector
process's): no exception leaves unanswered, and every answer carries the security headers."""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from touchpoints.api import errors
from touchpoints.api.headers import secured


class Guard:
    """Answers 500 for an exception no route handled (before any answer was sent; a client
    that left needs no answer), and
    swallows what FastAPI re-raises after answering it: the error is logged once, without
    its text (:func:`touchpoints.api.errors.error_response`). Every answer, whichever route
    gave it, leaves with the security headers (:mod:`touchpoints.api.headers`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = secured(message, scope)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ClientDisconnect:
            return
        except Exception as exc:  # noqa: BLE001 - the last line: answer, log, go on
            if started:
                return  # answered already (FastAPI's handler ran and re-raised)
            response = errors.error_response(exc, errors.place(scope))
            await response(scope, receive, sending)
