"""The app of one collector process (``touchpoints serve --collectors N``).

A module of its own, not beside the server's app: the server's imports every part's routes
and with them the whole application, which a collector process has no use for (it imports
this, the collector's routes and their guards: its memory and its start-up stay small)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp

from touchpoints.api.guard import Guard
from touchpoints.api.limits import RequestGuard
from touchpoints.api.routing import Routes
from touchpoints.collect.routes import Collector, CollectorHost


def create_collector_app(host: CollectorHost, number: int, share: int) -> ASGIApp:
    """The app of one collector process (``touchpoints serve --collectors N``): the
    collector's routes and ``GET /health``, behind the same guards as the server's."""
    writer = host.writer

    @asynccontextmanager
    async def lifespan(app: Router) -> AsyncIterator[None]:
        if writer is not None:
            writer.start()
        try:
            yield
        finally:
            if writer is not None:
                writer.stop()

    async def health(request: Request) -> Response:
        body = {
            "status": "ok",
            "collector": number,
            "pending_events": writer.pending if writer is not None else 0,
        }
        return Response(orjson.dumps(body), media_type="application/json")

    collector = Collector(host, share=share)
    router = Routes(
        [*collector.routes(), Route("/health", health, methods=["GET"])], lifespan=lifespan
    )
    settings = host.settings
    return Guard(RequestGuard(router, settings.body_timeout_seconds, settings.max_body_bytes))
