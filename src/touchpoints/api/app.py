"""The ASGI app: the lean collector routes in front, the dashboard's pages, the FastAPI read
and admin API behind.

A Starlette ``Router`` dispatches the collector's paths straight to their handlers and mounts
FastAPI for everything else: measured here, passing collector requests through FastAPI's
middleware stack (exception handling, exit stacks, telemetry checks) more than halved their
throughput. Profile lookups by key get a lean route in front for the same reason.

The lifespan starts the buffered writer (after replaying the write-ahead log), writes
``server.json`` so the CLI can find this server, and on shutdown (SIGTERM, Ctrl-C) writes
everything buffered before the process exits.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import orjson
from fastapi import FastAPI
from starlette.routing import Mount, Router

from touchpoints.api import events as events_api
from touchpoints.api import identity as identity_api
from touchpoints.api import journeys as journeys_api
from touchpoints.api import keys as keys_api
from touchpoints.api import profiles as profiles_api
from touchpoints.api import quarantine as quarantine_api
from touchpoints.collect.routes import Collector
from touchpoints.web.app import Dashboard

if TYPE_CHECKING:
    from touchpoints.core import Touchpoints

log = logging.getLogger("touchpoints.server")


def create_app(tp: Touchpoints, on_started: Callable[[], None] | None = None) -> Router:
    @asynccontextmanager
    async def lifespan(app: Router) -> AsyncIterator[None]:
        replayed = tp.start_writer()
        if replayed:
            log.info("replayed %d events from the write-ahead log", replayed)
        token = tp.keys.add_ephemeral("admin", "cli")
        _write_server_file(tp, token)
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            if tp.writer is not None:
                pending = tp.writer.pending
                tp.writer.stop()
                tp.writer = None
                log.info("flushed %d buffered events before exit", pending)
            tp.settings.server_file.unlink(missing_ok=True)

    app = FastAPI(
        title="touchpoints",
        summary="Customer data platform: Segment-compatible collection and the read API.",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
    )
    app.state.tp = tp

    @app.get("/health", tags=["server"])
    def health() -> dict[str, object]:
        writer = tp.writer
        return {
            "status": "ok",
            "pending_events": writer.pending if writer else 0,
            "write_failures": writer.failures if writer else 0,
        }

    app.include_router(events_api.router)
    app.include_router(keys_api.router)
    app.include_router(quarantine_api.router)
    app.include_router(profiles_api.router)
    app.include_router(identity_api.router)
    app.include_router(journeys_api.router)
    return Router(
        routes=[
            *Collector(tp).routes(),
            profiles_api.lookup_route(tp),
            *Dashboard(tp).routes(),
            Mount("", app=app),
        ],
        lifespan=lifespan,
    )


def _write_server_file(tp: Touchpoints, token: str) -> None:
    """Tell CLI commands on this machine where the server is and how to talk to it.

    The token is an in-memory admin key; the file is readable only by its owner, who can read
    the database file anyway.
    """
    settings = tp.settings
    path = settings.server_file
    info = {"pid": os.getpid(), "url": settings.base_url, "token": token}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(orjson.dumps(info))
    os.replace(tmp, path)
