"""The ASGI app: the lean collector routes in front, the dashboard's pages, the FastAPI read
and admin API behind. One app for every face: ``touchpoints serve`` hands it to uvicorn, and
the CLI drives the very same app in process when no server owns the data directory
(``touchpoints.cli.client``): every command and route share one implementation.

A Starlette ``Router`` dispatches the collector's paths straight to their handlers and mounts
FastAPI for everything else: measured here, passing collector requests through FastAPI's
middleware stack (exception handling, exit stacks, telemetry checks) more than halved their
throughput. Profile lookups by key get a lean route in front for the same reason.

The lifespan (run by uvicorn only) starts the buffered writer (after replaying the
write-ahead log), writes ``server.json`` so the CLI can find this server, and on shutdown
(SIGTERM, Ctrl-C) writes everything buffered before the process exits. Without it (in
process), the collector writes straight to the warehouse.

Errors are answered in one place (:mod:`touchpoints.api.errors`); the guard
(:mod:`touchpoints.api.guard`) around the whole app makes sure that a bug in any route
(collector, page or API) is a 500 with a plain message, never a traceback sent or left to
the server's default logging.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Protocol

import orjson
from fastapi import FastAPI
from starlette.routing import Mount, Router
from starlette.types import ASGIApp

from touchpoints.access.limits import RateLimiter
from touchpoints.api import assistant as assistant_api
from touchpoints.api import audiences as audiences_api
from touchpoints.api import audit as audit_api
from touchpoints.api import destinations as destinations_api
from touchpoints.api import errors
from touchpoints.api import events as events_api
from touchpoints.api import export as export_api
from touchpoints.api import identity as identity_api
from touchpoints.api import journeys as journeys_api
from touchpoints.api import keys as keys_api
from touchpoints.api import placements as placements_api
from touchpoints.api import predictions as predictions_api
from touchpoints.api import privacy as privacy_api
from touchpoints.api import profiles as profiles_api
from touchpoints.api import quarantine as quarantine_api
from touchpoints.api import triggers as triggers_api
from touchpoints.api import users as users_api
from touchpoints.api.guard import Guard
from touchpoints.api.limits import KeyRateLimit, RequestGuard
from touchpoints.api.routing import Routes
from touchpoints.collect.routes import Collector
from touchpoints.web.app import Dashboard

if TYPE_CHECKING:
    from touchpoints.core import Touchpoints

log = logging.getLogger("touchpoints.server")


class Companions(Protocol):
    """Processes that run beside the server (its collector processes): started once the
    server has recovered and written its keys, stopped before its writer stops."""

    def start(self) -> str | None:
        """Start them; a reason when they could not start (the server then stops)."""

    def stop(self) -> None: ...


_FULL_AFTER = 100  # collections of the middle generation before a full one (Python: 10)


def _freeze_startup_heap() -> None:
    """Leave what start-up made (the modules, Ibis's, pandas' and sqlglot's among them, and
    the core) out of the garbage collector's full collections, which otherwise walk all of
    it: 230-320 ms every 4-6 s in the server at the trigger benchmark's load, every thread
    stopped meanwhile, and the lookups' p99 of 140-150 ms. Collected first, so no garbage is
    kept for good; what is made later is collected as before.

    Frozen alone, it made decisions' p99 worse (25 ms instead of 6): Python makes a full
    collection when the objects promoted since the last reach a quarter of those that
    survived it, and with the start-up heap out of that count nearly every tenth collection
    of the middle generation became a full one. A full one every hundredth instead: decide
    p99 6.3-6.9 ms and lookups 11-12 ms (benchmarks/RESULTS.md, "Where the last percent
    waited")."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _FULL_AFTER)
    log.debug("%d objects of the start-up left out of collections", gc.get_freeze_count())


def create_app(
    tp: Touchpoints,
    on_started: Callable[[], None] | None = None,
    companions: Companions | None = None,
    on_failure: Callable[[str], None] | None = None,
) -> ASGIApp:
    @asynccontextmanager
    async def lifespan(app: Router) -> AsyncIterator[None]:
        replayed = tp.start_writer()
        if replayed:
            log.info("replayed %d events from the write-ahead log", replayed)
        token = tp.keys.add_ephemeral("admin", "cli")
        _write_server_file(tp, token)
        failure = companions.start() if companions is not None else None
        if failure is not None:
            log.error("%s", failure)
            if on_failure is not None:
                on_failure(failure)
        elif on_started is not None:
            on_started()
        _freeze_startup_heap()
        try:
            yield
        finally:
            if companions is not None:
                companions.stop()
            pending = tp.stop_writer()
            if pending is not None:
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
    errors.install(app)

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
    app.include_router(predictions_api.router)
    app.include_router(privacy_api.router)
    app.include_router(users_api.router)
    app.include_router(audit_api.router)
    app.include_router(destinations_api.router)
    app.include_router(assistant_api.router)
    app.include_router(export_api.router)
    app.include_router(audiences_api.router)
    app.include_router(triggers_api.router)
    app.include_router(placements_api.router)
    collector = Collector(tp)
    router = Routes(
        [
            *collector.routes(),
            profiles_api.lookup_route(tp),
            *assistant_api.preflight_routes(),
            placements_api.decide_route(tp),
            *Dashboard(tp).routes(),
            Mount("", app=app),
        ],
        lifespan=lifespan,
    )
    settings = tp.settings
    limited = KeyRateLimit(
        router,
        tp.keys,
        RateLimiter(settings.rate_limit_api, settings.rate_limit_api_burst),
        exempt=[*collector.paths(), placements_api.DECIDE_PATH],
    )
    return Guard(RequestGuard(limited, settings.body_timeout_seconds, settings.max_body_bytes))


def _write_server_file(tp: Touchpoints, token: str) -> None:
    """Tell CLI commands on this machine where the server is and how to talk to it.

    The token is an in-memory admin key; the file is readable only by its owner, who can read
    the database file anyway.
    """
    settings = tp.settings
    path = settings.server_file
    info: dict[str, object] = {"pid": os.getpid(), "url": settings.base_url, "token": token}
    if settings.tls_cert_path is not None:  # the CLI trusts this certificate, and only it
        info["tls_cert"] = str(settings.tls_cert_path)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(orjson.dumps(info))
    os.replace(tmp, path)
