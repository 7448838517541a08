"""Reading events: list, count and breakdowns, with the same filters as ``touchpoints events``.

Counts and breakdowns are aggregate figures (the ``analytics`` permission); the events
themselves, and a count of one user's events, are about a person (``profiles``); a list of
events is recorded in the audit log (``events.read``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from touchpoints.access.keys import ApiKey
from touchpoints.api.auth import allow, audited, require
from touchpoints.api.state import core
from touchpoints.errors import InvalidRequest
from touchpoints.events import EventCount, EventPage, stored_event
from touchpoints.times import naive_utc
from touchpoints.warehouse import EventFilter
from touchpoints.warehouse.events import EventStats

router = APIRouter(prefix="/v1/events", tags=["events"])
Reader = Annotated[ApiKey, Depends(require("profiles"))]
Analyst = Annotated[ApiKey, Depends(require("analytics"))]


def _filter(
    type: str | None = None,
    event: str | None = None,
    channel: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    source: str | None = None,
    since: Annotated[datetime | None, Query(description="ISO-8601, UTC when no zone")] = None,
    until: Annotated[datetime | None, Query(description="ISO-8601, UTC when no zone")] = None,
    after_seq: Annotated[int | None, Query(ge=0)] = None,
) -> EventFilter:
    return EventFilter(
        type=type,
        event=event,
        channel=channel,
        user_id=user_id,
        anonymous_id=anonymous_id,
        source=source,
        since=_naive_utc(since, "since"),
        until=_naive_utc(until, "until"),
        after_seq=after_seq,
    )


def _naive_utc(moment: datetime | None, name: str) -> datetime | None:
    try:
        return None if moment is None else naive_utc(moment)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}") from None


Filter = Annotated[EventFilter, Depends(_filter)]


@router.get("")
def list_events(
    request: Request,
    reader: Reader,
    flt: Filter,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
    order: Annotated[str, Query(pattern="^(newest|oldest)$")] = "newest",
) -> EventPage:
    """Stored events matching the filters, newest (or oldest) first."""
    rows = core(request).events.list(flt, limit=limit, newest_first=order == "newest")
    # Events carry personal data: the read is recorded (how many; never the filter's values).
    audited(request, reader, "events.read", None, f"{len(rows)} events", durable=False)
    return EventPage(events=[stored_event(row) for row in rows])


@router.get("/count")
def count_events(request: Request, key: Analyst, flt: Filter) -> EventCount:
    """How many stored events match the filters (by ``user_id`` or ``anonymous_id``: the
    ``profiles`` permission, as it counts one person's events)."""
    if flt.user_id is not None or flt.anonymous_id is not None:
        allow(key, "profiles")
    return EventCount(count=core(request).events.count(flt))


@router.get("/stats")
def event_stats(request: Request, _: Analyst) -> EventStats:
    """Events by channel, type and source (key)."""
    return core(request).events.stats()
