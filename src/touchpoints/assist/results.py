"""The assistant's answers (see :mod:`touchpoints.answers`): what a customer's client gets
back (the widget, a voice platform, an SMS gateway), what the agent console and the API's
agents read, and the assistant's figures."""

from __future__ import annotations

from pydantic import Field

from touchpoints.answers import Answer
from touchpoints.times import UtcTime


class Source(Answer):
    title: str
    url: str | None = None


class Understood(Answer):
    """What the assistant made of a customer's message."""

    intent: str = Field(
        description="An intent of the intents file, faq (answered from the FAQ) or out_of_scope"
    )
    confidence: float = Field(description="The classifier's probability for its best intent")
    language: str = Field(description="de, en, or other")
    sentiment: str = Field(description="negative, neutral or positive")
    sentiment_score: float = Field(description="-1 (angry) … 1 (delighted)")
    faq: str | None = Field(default=None, description="The FAQ entry that answered, if one did")


class ChatMessage(Answer):
    """A message as the customer's client shows it."""

    number: int = Field(description="1, 2, …: poll with after=the last one you have")
    at: UtcTime
    author: str = Field(description="customer, assistant or agent")
    text: str | None = Field(description="None: not kept (no consent to transcripts)")
    source: Source | None = Field(default=None, description="An FAQ answer's source")


class ChatReply(Answer):
    """The answer to a customer's message: the message and the assistant's replies."""

    conversation: str = Field(description="Send it with the next message")
    state: str = Field(description="bot, queued (waiting for a person), agent or closed")
    verified: bool = Field(description="The person is proven (signed in, or a one-time code)")
    understood: Understood | None = Field(description="None: the message was not read (a code)")
    messages: list[ChatMessage]
    after: int = Field(description="The last message's number: poll with after=this")


class MessagePage(Answer):
    conversation: str
    state: str
    messages: list[ChatMessage]
    after: int


class VoiceReply(Answer):
    conversation: str | None = Field(description="Send it with the caller's next utterance")
    speech: str = Field(description="Plain text fit to be spoken")
    end_session: bool = Field(description="The customer is done (thanks, goodbye)")
    transfer_to: str | None = Field(description="Handed over: the team to put the caller to")
    verified: bool


class SmsReply(Answer):
    conversation: str | None
    reply: str = Field(description="The text to send back to the sender")


class Touchpoint(Answer):
    at: UtcTime
    event: str | None
    channel: str


class LastOrder(Answer):
    order_id: str | None
    placed_at: UtcTime
    state: str
    total: float | None
    currency: str | None


class Summary(Answer):
    """The handover summary an agent reads first."""

    who: str = Field(description="The customer's name, or what is known of them")
    person: str | None = Field(description="person:N, when the identity map knows them")
    verified: str | None = Field(description="signed_in or code; None: not proven")
    stage: str | None = Field(description="The furthest journey stage reached")
    clv: float | None = Field(description="Predicted lifetime value, 12 months")
    churn_risk: float | None
    churn_percentile: float | None = Field(
        default=None, description="Churn risk among the customers scored (100: riskiest)"
    )
    audiences: list[str] = Field(
        default_factory=list, description="The keys of the audiences the customer is in"
    )
    open_complaint: bool
    last_order: LastOrder | None
    recent: list[Touchpoint] = Field(description="Recent touchpoints across channels")
    understood: list[str] = Field(description="What the assistant understood, in order")
    sentiment: str
    reason: str = Field(description="Why it was handed over")
    team: str
    priority: str
    rule: str = Field(description="The routing rule that chose the team (or default)")
    business_hours: bool


class Conversation(Answer):
    """A conversation as an agent's list shows it."""

    id: str
    channel: str
    state: str
    team: str | None
    priority: str | None
    intent: str | None
    language: str | None
    person: str | None
    verified: str | None
    who: str | None
    started_at: UtcTime
    updated_at: UtcTime
    handed_over_at: UtcTime | None
    first_human_at: UtcTime | None
    closed_at: UtcTime | None
    waiting_seconds: float | None = Field(description="Since the handover, until a person answered")
    outcome: str | None
    agent: str | None
    messages: int


class ConversationList(Answer):
    conversations: list[Conversation]


class AgentMessage(Answer):
    number: int
    at: UtcTime
    author: str
    agent: str | None
    text: str | None
    intent: str | None
    confidence: float | None
    language: str | None
    sentiment: str | None
    outcome: str | None
    source: Source | None


class ConversationDetail(Answer):
    conversation: Conversation
    messages: list[AgentMessage]
    summary: Summary | None


class Queue(Answer):
    team: str
    label: str
    waiting: int
    oldest_waiting_seconds: float | None
    in_progress: int


class Queues(Answer):
    queues: list[Queue]
    business_hours: bool


class IntentFigure(Answer):
    intent: str
    conversations: int
    handed_over: int
    handover_rate: float | None


class FirstResponse(Answer):
    answered: int = Field(description="Handed-over conversations a person has answered")
    waiting: int = Field(description="Handed over, no answer yet")
    median_seconds: float | None
    p90_seconds: float | None
    target_seconds: int
    within_target: float | None = Field(description="Share answered within the target")


class Figures(Answer):
    since: UtcTime
    conversations: int
    contained: int = Field(description="Never handed to a person")
    containment: float | None
    handed_over: int
    handover_rate: float | None
    by_intent: list[IntentFigure]
    by_channel: dict[str, int]
    outcomes: dict[str, int]
    first_response: FirstResponse
    ratings: int
    satisfaction: float | None = Field(description="Mean rating, 1 to 5, where asked")


class Trial(Answer):
    """A question asked as a test (nothing is stored)."""

    text: str
    understood: Understood
    ranking: list[tuple[str, float]] = Field(description="The best intents, with probability")
    threshold: float
    replies: list[str]


class LanguageScore(Answer):
    accuracy: float
    out_of_scope_recall: float
    phrases: int


class Evaluation(Answer):
    phrases: int
    training: int
    held_out: int
    threshold: float
    de: LanguageScore
    en: LanguageScore
    both: LanguageScore
    confusions: list[tuple[str, str, int]] = Field(description="(truth, predicted, count)")
