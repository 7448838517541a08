"""Destinations: where activation sends messages (webhooks, other collectors, e-mail,
files), their outbox, delivery log and dead letters. Admins change them (every change is
audited); read keys see them (the log and the messages name persons by number, so they
need ``profiles``). A destination's secrets are in the answer that made it, and nowhere
else."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from touchpoints.access.keys import ApiKey
from touchpoints.activate.results import (
    AttemptList,
    CreatedDestination,
    Destination,
    DestinationList,
    Enqueued,
    MessageList,
    Replayed,
)
from touchpoints.api.auth import audited, require
from touchpoints.api.state import core

router = APIRouter(prefix="/v1/destinations", tags=["destinations"])
Admin = Annotated[ApiKey, Depends(require("admin"))]
Analyst = Annotated[ApiKey, Depends(require("analytics"))]
Reader = Annotated[ApiKey, Depends(require("profiles"))]
DestinationId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Of = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Only this destination's")]


class NewDestination(BaseModel):
    kind: Literal["webhook", "segment", "email", "file"]
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(
        description="webhook, segment: url; email: host, sender, port, user, starttls; "
        "file: directory (absolute), format (csv or parquet)"
    )
    purposes: list[str] = Field(
        default_factory=list,
        description="Consent purposes (consent_purposes) a person must have granted",
    )
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="webhook: secret (whsec_…, made if not given); segment: write_key; "
        "email: password",
    )


class Disable(BaseModel):
    reason: str | None = Field(default=None, max_length=300)


class Replay(BaseModel):
    message_ids: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=10_000, description="None named: every dead letter"
    )


class TestMessage(BaseModel):
    to: str | None = Field(default=None, max_length=320, description="For e-mail: where to")


class NewMessage(BaseModel):
    payload: dict[str, Any]
    key: str | None = Field(
        default=None,
        max_length=1000,
        description="The person it is about (any identifier, or person:N); consent is checked",
    )
    ordering_key: str | None = Field(
        default=None, max_length=200, description="Messages of one key arrive in order"
    )


@router.post("", status_code=201)
def create(request: Request, admin: Admin, body: NewDestination) -> CreatedDestination:
    """A new destination; its secrets are in this answer and never again."""
    made = core(request).destinations.create(
        body.kind, body.name, body.config, body.purposes, body.secrets
    )
    target = f"destination:{made.destination.id}"
    audited(request, admin, "destination.create", target, f"kind {body.kind}")
    return made


@router.get("")
def listing(request: Request, _: Analyst) -> DestinationList:
    """Every destination with its messages per state and its success rate; never a secret."""
    return core(request).destinations.listing()


@router.get("/deliveries")
def deliveries(
    request: Request, _: Reader, destination: Of = None, limit: Limit = 100
) -> AttemptList:
    """The delivery log, newest first: every attempt, its answer and how long it took."""
    return core(request).destinations.attempts(destination, limit)


@router.get("/messages")
def messages(
    request: Request,
    _: Reader,
    destination: Of = None,
    state: Literal["pending", "delivered", "dead"] | None = None,
    limit: Limit = 100,
) -> MessageList:
    """The outbox, newest first; ``state=dead``: the dead letters."""
    return core(request).destinations.messages(destination, state, limit)


@router.get("/{destination_id}")
def show(request: Request, _: Analyst, destination_id: DestinationId) -> Destination:
    return core(request).destinations.get(destination_id)


@router.post("/{destination_id}/disable")
def disable(
    request: Request, admin: Admin, destination_id: DestinationId, body: Disable | None = None
) -> Destination:
    """Stop sending: messages wait in the outbox until the destination is enabled again."""
    found = core(request).destinations.disable(destination_id, body.reason if body else None)
    audited(request, admin, "destination.disable", f"destination:{destination_id}")
    return found


@router.post("/{destination_id}/enable")
def enable(request: Request, admin: Admin, destination_id: DestinationId) -> Destination:
    found = core(request).destinations.enable(destination_id)
    audited(request, admin, "destination.enable", f"destination:{destination_id}")
    return found


@router.post("/{destination_id}/replay")
def replay(
    request: Request, admin: Admin, destination_id: DestinationId, body: Replay | None = None
) -> Replayed:
    """Dead letters sent again (with the same message ids): those named, or all."""
    done = core(request).destinations.replay(destination_id, body.message_ids if body else [])
    audited(
        request,
        admin,
        "destination.replay",
        f"destination:{destination_id}",
        f"{done.replayed} messages",
    )
    return done


@router.post("/{destination_id}/test")
def test(
    request: Request, admin: Admin, destination_id: DestinationId, body: TestMessage | None = None
) -> Enqueued:
    """A test message about nobody, through the outbox like any other."""
    sent = core(request).destinations.test(destination_id, body.to if body else None)
    audited(request, admin, "destination.test", f"destination:{destination_id}")
    return sent


@router.post("/{destination_id}/messages", status_code=202)
def send(
    request: Request, admin: Admin, destination_id: DestinationId, body: NewMessage
) -> Enqueued:
    """Put a message in the outbox (about a person, if ``key``: sent only with their consent
    to the destination's purposes). Delivery follows, at least once."""
    tp = core(request)
    person = tp.profiles.resolve(body.key) if body.key else None
    sent = tp.destinations.enqueue(
        destination_id, body.payload, person=person, ordering_key=body.ordering_key
    )
    target = f"person:{person}" if person is not None else f"destination:{destination_id}"
    audited(request, admin, "destination.send", target, f"destination {destination_id}")
    return sent
