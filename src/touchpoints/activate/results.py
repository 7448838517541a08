"""The answers of activation (see :mod:`touchpoints.answers`): destinations (never their
secrets, but once when made), messages, the delivery log and success rates."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from touchpoints.answers import Answer
from touchpoints.times import UtcTime


class Destination(Answer):
    id: int
    kind: str = Field(description="webhook, segment, email or file")
    name: str
    config: dict[str, Any] = Field(description="Where it sends (no secrets)")
    purposes: list[str] = Field(
        description="The consent purposes a person must have granted to be sent"
    )
    state: str = Field(description="enabled or disabled")
    state_reason: str | None = Field(description="Why it was disabled (an operator, a 410)")
    created_at: UtcTime
    changed_at: UtcTime
    pending: int = 0
    delivered: int = 0
    dead: int = 0
    attempts_ok: int = 0
    attempts_failed: int = 0
    skipped: int = Field(
        default=0, description="Messages not written since start: the person had not consented"
    )
    success_rate: float | None = Field(
        default=None, description="Attempts that delivered, of all attempts (None: none yet)"
    )


class CreatedDestination(Answer):
    destination: Destination
    secrets: dict[str, str] = Field(
        description="The destination's secrets (a webhook's signing secret): shown this once"
    )


class DestinationList(Answer):
    destinations: list[Destination]


class Message(Answer):
    message_id: str = Field(description="The same on every attempt (webhook-id)")
    destination: int
    person: int | None
    ordering_key: str
    created_at: UtcTime
    next_attempt_at: UtcTime
    attempts: int
    state: str = Field(description="pending, delivered or dead (a dead letter)")
    last_status: int | None
    last_error: str | None
    done_at: UtcTime | None


class MessageList(Answer):
    messages: list[Message]


class Attempt(Answer):
    message_id: str
    destination: int
    person: int | None
    attempt: int
    attempted_at: UtcTime
    status: int | None = Field(description="The receiver's HTTP or SMTP status, if it answered")
    outcome: str = Field(description="delivered, retry, dead or disabled")
    latency_ms: float
    error: str | None


class AttemptList(Answer):
    attempts: list[Attempt]


class Enqueued(Answer):
    message_id: str | None = Field(description="None: skipped")
    skipped: str | None = Field(default=None, description="Why not sent (consent)")


class Replayed(Answer):
    replayed: int
