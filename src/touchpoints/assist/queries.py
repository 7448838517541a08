"""What clients send the assistant (the API's request bodies), checked at the door."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# A message longer than this is refused by the API outright; up to it, one longer than
# ``assistant_max_message_chars`` gets an answer saying so.
HARD_LIMIT = 20_000


class ChatIn(BaseModel):
    """A customer's message from a chat client (the widget)."""

    model_config = ConfigDict(extra="forbid")

    conversation: str | None = Field(
        default=None, max_length=64, description="The conversation's id; none: a new one"
    )
    anonymous_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The browser's analytics.js anonymousId (ajs_anonymous_id)",
    )
    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A signed-in user's id (needs user_hash)",
    )
    user_hash: str | None = Field(
        default=None,
        max_length=128,
        description="Hex HMAC-SHA256 of user_id keyed with assistant_identity_secret",
    )
    text: str = Field(max_length=HARD_LIMIT)
    language: str | None = Field(
        default=None, max_length=35, description="The browser's language (a hint: de, en-GB…)"
    )


class VoiceIn(BaseModel):
    """An utterance from a voice platform, after its speech recognition."""

    model_config = ConfigDict(extra="forbid")

    conversation: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, min_length=1, max_length=40, description="Caller id")
    device_id: str | None = Field(default=None, min_length=1, max_length=200)
    user_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="A linked account (user_hash)"
    )
    user_hash: str | None = Field(default=None, max_length=128)
    text: str = Field(max_length=HARD_LIMIT, description="The utterance as recognised")
    language: str | None = Field(default=None, max_length=35)


class SmsIn(BaseModel):
    """An inbound SMS or messenger message, as a gateway forwards it."""

    model_config = ConfigDict(extra="forbid")

    sender: str = Field(min_length=1, max_length=40, description="The sender's phone number")
    text: str = Field(max_length=HARD_LIMIT)
    conversation: str | None = Field(
        default=None, max_length=64, description="None: the sender's open conversation, if any"
    )


class AgentReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)


Outcome = Literal["resolved", "unresolved", "abandoned", "handed_over", "spam"]


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome = "resolved"


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5, description="1 (bad) … 5 (very good)")


class TrialIn(BaseModel):
    """A question asked as a test: understood and answered, nothing stored or sent."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=HARD_LIMIT)
    key: str | None = Field(
        default=None,
        max_length=1000,
        description="Answer as if this person (any identifier) were verified",
    )
    language: str | None = Field(default=None, max_length=35)


class EvaluateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = Field(default=0, ge=0, le=2**31)
    test_share: float = Field(default=0.25, gt=0.05, lt=0.6)
