"""The service assistant: the one implementation behind the chat API, the voice endpoint,
the SMS webhook, the agent console and the CLI.

A customer's message is one *turn* (:meth:`Assistant.turn`): the visitor recognised through
the identity map (and proven, when the site sent a signed user id), the message understood
(:mod:`.understanding`), answered (:mod:`.engine`), handed to a team when it must be
(:mod:`.handover`), kept (the message and its replies, their text only with the person's
consent to transcripts, redacted when ``assistant_redact`` is on) and recorded as events of
the conversation's channel (:mod:`.signals`) through the core's collector path. Agents'
side: :mod:`.agents`; figures: :mod:`.figures`.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from touchpoints.activate import Destinations
from touchpoints.assist import signals
from touchpoints.assist.customer import Customer
from touchpoints.assist.directory import Directory, load_directory
from touchpoints.assist.engine import _CODE, Decision, Dialogue, Said
from touchpoints.assist.faq import load_faq
from touchpoints.assist.handover import Handover, Sources
from touchpoints.assist.intents import load_intents
from touchpoints.assist.live import Conversation, Live
from touchpoints.assist.people import People
from touchpoints.assist.redact import redact
from touchpoints.assist.results import ChatMessage, ChatReply, MessagePage, Source, Understood
from touchpoints.assist.routing import Routing, load_routing
from touchpoints.assist.store import AssistantStore, MessageRow
from touchpoints.assist.understanding import Reading, Understanding
from touchpoints.assist.verification import Codes, signed_in
from touchpoints.errors import Conflict, Forbidden, InvalidRequest, NotFound
from touchpoints.identity.identifiers import Identifier
from touchpoints.profiles import Profiles
from touchpoints.warehouse import Warehouse

log = logging.getLogger("touchpoints.assist")


@dataclass(frozen=True)
class AssistantSettings:
    intents: Path | None = None
    faq: Path | None = None
    routing: Path | None = None
    dealers: Path | None = None
    identity_secret: str | None = None
    code_destination: str | None = None
    code_sms_destination: str | None = None
    code_tries: int = 3
    code_minutes: int = 10
    transcript_days: int = 90
    redact: bool = True
    max_chars: int = 2000
    first_response_seconds: int = 120
    idle_minutes: int = 30
    order_event: str = "Order Completed"
    marketing_category: str | None = "marketing"


@dataclass(frozen=True)
class Visitor:
    """Who a client says is writing: the identifiers it has, checked."""

    anonymous_id: str | None = None
    user_id: str | None = None  # proven by the site's user_hash
    phone: str | None = None  # normalised (E.164)
    device_id: str | None = None

    def key(self) -> tuple[str, str]:
        for kind, value in (
            ("user_id", self.user_id),
            ("anonymous_id", self.anonymous_id),
            ("phone", self.phone),
            ("device_id", self.device_id),
        ):
            if value:
                return kind, value
        raise InvalidRequest(
            "say who is writing: anonymous_id (the browser's), a signed-in user_id with its "
            "user_hash, or the caller's phone or device_id"
        )


@dataclass(frozen=True)
class Turn:
    """One customer message and what came of it."""

    conversation: Conversation
    reading: Reading | None
    decision: Decision
    messages: list[ChatMessage]


class Assistant:
    def __init__(
        self,
        warehouse: Warehouse,
        settings: AssistantSettings,
        profiles: Profiles,
        destinations: Destinations,
        sources: Sources,
        record: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        self.settings = settings
        self.store = AssistantStore(warehouse)
        self.profiles = profiles
        self.destinations = destinations
        self.record = record
        self.directory: Directory = load_directory(settings.dealers)
        self.routing: Routing = load_routing(settings.routing)
        self.understanding = Understanding(load_intents(settings.intents), load_faq(settings.faq))
        self.customer = Customer(self.store, settings.order_event)
        self.codes = Codes(settings.code_tries, settings.code_minutes)
        self.people = People(
            profiles,
            destinations,
            self.codes,
            self.directory,
            settings.code_destination,
            settings.code_sms_destination,
        )
        self.dialogue = Dialogue(
            self.directory,
            self.customer,
            self.codes,
            self.people.person,
            self.people.find,
            self.people.send_code,
            self.people.ways,
            self.people.phone,
        )
        self.handover = Handover(self.routing, self.directory, self.customer, sources)
        self.live = Live()
        # Held while a message is written, and by an erasure for its whole length (see
        # paused): nothing of a person is written half way through their erasure.
        self.writing = threading.RLock()
        self.turns = 0  # customer messages handled (the maintenance job watches it)

    # -- the customer's side -----------------------------------------------------------------
    def chat(
        self,
        conversation: str | None,
        visitor: Visitor,
        text: str,
        language: str | None = None,
    ) -> ChatReply:
        text = self.checked(text)
        turn = self.turn("chat", conversation, visitor, text, language)
        conv = turn.conversation
        return ChatReply(
            conversation=conv.id,
            state=conv.state,
            verified=conv.verified_person is not None,
            understood=_understood(turn.reading),
            messages=turn.messages,
            after=conv.messages,
        )

    def checked(self, text: str) -> str:
        """The message's text, or an InvalidRequest saying what is wrong with it."""
        stripped = text.strip()
        if not stripped:
            raise InvalidRequest("text: the message is empty; write something")
        if len(stripped) > self.settings.max_chars:
            raise InvalidRequest(
                f"text: the message is {len(stripped):,} characters long; the assistant reads "
                f"at most {self.settings.max_chars:,} (assistant_max_message_chars): shorten it"
            )
        return stripped

    def visitor(
        self,
        anonymous_id: str | None = None,
        user_id: str | None = None,
        user_hash: str | None = None,
        phone: str | None = None,
        device_id: str | None = None,
    ) -> Visitor:
        """The identifiers a client gave, checked: a user id only with the site's proof."""
        if user_id is not None:
            if not self.settings.identity_secret:
                raise Forbidden(
                    "user_id: this server does not take signed-in users (set "
                    "assistant_identity_secret and send user_hash); send anonymous_id only"
                )
            if not signed_in(self.settings.identity_secret, user_id, user_hash):
                raise Forbidden(
                    "user_hash does not prove user_id: send the hex HMAC-SHA256 of the user "
                    "id keyed with assistant_identity_secret, computed on your server"
                )
        normal_phone = None
        if phone is not None:
            found = self.profiles.identity.normalised(Identifier("phone", phone))
            if not found.value:
                raise InvalidRequest(f"phone: {phone!r} is not a phone number")
            normal_phone = found.value
        return Visitor(anonymous_id, user_id, normal_phone, device_id)

    def turn(
        self,
        channel: str,
        conversation: str | None,
        visitor: Visitor,
        text: str,
        language: str | None = None,
    ) -> Turn:
        """One customer message on ``channel``, in ``conversation`` (None: a new one)."""
        with self._held(channel, conversation, visitor, language) as (conv, fresh):
            if not conv.open:
                raise Conflict(
                    f"conversation {conv.id} is closed; start a new one (send no conversation)"
                )
            self._recognise(conv, visitor)
            self.turns += 1
            now = datetime.now(UTC)
            is_code = conv.awaiting == "code" and _CODE.match(text) is not None
            reading = None if is_code else self.understanding.read(text, conv.language)
            if reading is not None:
                if reading.language in ("de", "en"):
                    conv.language = reading.language
                conv.intent = reading.intent
            conv.language = conv.language or "de"
            decision = self.dialogue.respond(conv, text, reading)
            events: list[dict[str, Any]] = []
            if fresh:
                events.append(signals.track(conv, signals.STARTED, "start", now, channel=channel))
            if decision.handover is not None:
                earlier = [
                    row.intent
                    for row in self.store.messages(conv.id)
                    if row.intent and row.author == "customer"
                ]
                self.handover.hand_over(conv, decision, reading, earlier, now, events)
            kept = "[code]" if is_code else text
            messages = self._keep(conv, kept, reading, decision, now, events)
            self._actions(conv, decision, now, events)
            self.record(events)
            return Turn(conv, reading, decision, messages)

    @contextmanager
    def _held(
        self, channel: str, conversation: str | None, visitor: Visitor, language: str | None
    ) -> Iterator[tuple[Conversation, bool]]:
        """The conversation (made when None), its lock held for the block."""
        fresh = conversation is None
        conversation = conversation or "conv_" + secrets.token_urlsafe(16)
        with self.live.lock(conversation):
            if fresh:
                conv = self._new(conversation, channel, visitor, language)
            else:
                conv = self.conversation(conversation)
                if conv.channel != channel:
                    raise Conflict(f"conversation {conv.id} is a {conv.channel} conversation")
            yield conv, fresh

    def conversation(self, conversation_id: str) -> Conversation:
        """The conversation ``conversation_id`` (held in memory, else read); NotFound."""
        found = self.live.get(conversation_id)
        if found is None:
            row = self.store.conversation(conversation_id)
            if row is None:
                raise NotFound(
                    f"no conversation {conversation_id!r}: it never existed, or it was removed "
                    "(retention, erasure); start a new one by sending no conversation"
                )
            found = Conversation.from_row(row)
            self.live.hold(found)
        return found

    def _new(
        self, conversation: str, channel: str, visitor: Visitor, language: str | None
    ) -> Conversation:
        kind, value = visitor.key()
        now = datetime.now(UTC).replace(tzinfo=None)
        hint = (language or "")[:2].lower()
        conv = Conversation(
            id=conversation,
            channel=channel,
            visitor_type=kind,
            visitor_value=value,
            language=hint if hint in ("de", "en") else None,
            started_at=now,
            updated_at=now,
        )
        self.live.hold(conv)
        return conv

    def _recognise(self, conv: Conversation, visitor: Visitor) -> None:
        """Who is writing, through the identity map; a user id the site proved verifies
        this message (and the conversation's next ones that carry the proof too)."""
        for name in ("anonymous_id", "phone", "device_id"):
            value = getattr(visitor, name)
            if value:
                setattr(conv, name, value)
        if visitor.user_id:
            conv.user_id = visitor.user_id
            person = self.people.find(f"user_id:{visitor.user_id}")
            if person is not None:
                conv.verified, conv.verified_person = "signed_in", person
            elif conv.verified != "code":
                conv.verified = "signed_in"  # proven, though nothing is known of them yet
        elif conv.verified == "signed_in":
            # The site's proof comes with every message of a signed-in user: a message
            # without it (signed out, or someone else holding the conversation's id) is
            # no longer proven.
            conv.verified, conv.verified_person, conv.user_id = None, None, None
        for kind, value in (
            ("user_id", conv.user_id),
            ("anonymous_id", conv.anonymous_id),
            ("phone", conv.phone),
            ("device_id", conv.device_id),
        ):
            person = self.people.find(f"{kind}:{value}") if value else None
            if person is not None:
                conv.person = person
                break

    # -- keeping and recording ---------------------------------------------------------------
    def _keep(
        self,
        conv: Conversation,
        text: str,
        reading: Reading | None,
        decision: Decision,
        now: datetime,
        events: list[dict[str, Any]],
    ) -> list[ChatMessage]:
        """The message and the replies stored (texts where allowed), the conversation saved,
        an event for each; the messages as the client shows them."""
        consent = self.people.consents(conv)
        at = now.replace(tzinfo=None)
        rows: list[MessageRow] = []
        out: list[ChatMessage] = []
        said = [Said(text)] + decision.replies
        for index, item in enumerate(said):
            conv.messages += 1
            number = conv.messages
            author = "customer" if index == 0 else "assistant"
            # The customer's words are redacted; the assistant's own are not (an order's
            # date is no phone number, and a masked address is masked already).
            shown = redact(item.text) if self.settings.redact and index == 0 else item.text
            if not consent:
                conv.texts[number] = shown
            rows.append(
                _row(
                    conv,
                    number,
                    at,
                    author,
                    shown if consent else None,
                    reading if index == 0 else None,
                    decision.outcome,
                    item.source,
                )
            )
            out.append(
                ChatMessage(number=number, at=at, author=author, text=shown, source=item.source)
            )
            events.append(self._message_event(conv, number, author, reading, decision, now))
        conv.updated_at = at
        self.write(conv, rows)
        return out

    def write(self, conv: Conversation, rows: list[MessageRow]) -> None:
        """Messages and the conversation's row in one transaction (the row inserted the
        first time, updated after); pollers are told."""
        with self.writing, self.store.warehouse.transaction() as cursor:
            self.store.add_messages(rows, cursor)
            self.store.save_conversation(conv.row(), cursor, new=not conv.stored)
        conv.stored = True
        self.live.changed(conv)

    def save(self, conv: Conversation) -> None:
        """The conversation's row written (inserted the first time)."""
        self.write(conv, [])

    def _message_event(
        self,
        conv: Conversation,
        number: int,
        author: str,
        reading: Reading | None,
        decision: Decision,
        now: datetime,
    ) -> dict[str, Any]:
        if author == "customer":
            details: dict[str, Any] = {}
            if reading is not None:
                details = {
                    "intent": reading.intent,
                    "confidence": round(reading.guess.confidence, 4),
                    "language": reading.language,
                    "sentiment": reading.sentiment.label,
                    "sentiment_score": reading.sentiment.score,
                    "faq": reading.faq.entry.id if reading.faq else None,
                }
            return signals.track(
                conv,
                signals.SENT,
                f"m{number}",
                now,
                message_number=number,
                outcome=decision.outcome,
                **details,
            )
        return signals.track(
            conv,
            signals.RECEIVED,
            f"m{number}",
            now,
            message_number=number,
            author=author,
            outcome=decision.outcome,
            intent=conv.intent,
        )

    def _actions(
        self, conv: Conversation, decision: Decision, now: datetime, events: list[dict[str, Any]]
    ) -> None:
        n = conv.messages
        if decision.complaint:
            events.append(
                signals.track(
                    conv,
                    signals.COMPLAINT,
                    f"complaint{n}",
                    now,
                    source="assistant",
                    team=conv.team,
                )
            )
        category = self.settings.marketing_category
        if decision.unsubscribe and category:
            events.append(signals.consent_withdrawn(conv, category, f"consent{n}", now))
            events.append(
                signals.track(
                    conv, "Unsubscribed", f"unsub{n}", now, list="marketing", source="assistant"
                )
            )

    # -- reading back ------------------------------------------------------------------------
    def page(self, conversation_id: str, after: int = 0) -> MessagePage:
        """The messages after number ``after`` (the widget's poll)."""
        conv = self.conversation(conversation_id)
        rows = self.store.messages(conversation_id, after)
        return MessagePage(
            conversation=conv.id,
            state=conv.state,
            messages=[self._shown(conv, row) for row in rows],
            after=max([after, *(row.number for row in rows)]),
        )

    def version(self, conversation_id: str) -> int:
        """The number of the conversation's last message (what pollers wait to grow)."""
        found = self.live.versions.get(conversation_id)
        return found if found is not None else self.conversation(conversation_id).messages

    def _shown(self, conv: Conversation, row: MessageRow) -> ChatMessage:
        return ChatMessage(
            number=row.number,
            at=row.sent_at,
            author=row.author,
            text=row.text if row.text is not None else conv.texts.get(row.number),
            source=_source(row.source),
        )

    # -- keeping the place tidy --------------------------------------------------------------
    @contextmanager
    def paused(self) -> Iterator[None]:
        """No message written while held (an erasure holds it); afterwards, what memory
        holds of conversations whose rows are gone is dropped."""
        with self.writing:
            yield
            for conversation_id in list(self.live.versions):
                if self.store.conversation(conversation_id) is None:
                    self.live.forget(conversation_id)

    def warm(self) -> None:
        try:
            started = time.perf_counter()
            self.understanding.warm()
            log.info("the assistant is ready (%.1f s)", time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - the first message tries again
            log.error("the assistant could not load its model (%s)", type(exc).__name__)


def _row(
    conv: Conversation,
    number: int,
    at: datetime,
    author: str,
    text: str | None,
    reading: Reading | None,
    outcome: str,
    source: Source | None,
    agent: str | None = None,
) -> MessageRow:
    return MessageRow(
        conv.id,
        number,
        conv.visitor_type,
        conv.visitor_value,
        at,
        author,
        agent,
        text,
        reading.intent if reading else None,
        round(reading.guess.confidence, 4) if reading else None,
        reading.language if reading else None,
        reading.sentiment.label if reading else None,
        reading.sentiment.score if reading else None,
        outcome,
        source.model_dump_json() if source else None,
    )


def _source(text: str | None) -> Source | None:
    return Source.model_validate_json(text) if text else None


def _understood(reading: Reading | None) -> Understood | None:
    if reading is None:
        return None
    return Understood(
        intent=reading.intent,
        confidence=round(reading.guess.confidence, 4),
        language=reading.language,
        sentiment=reading.sentiment.label,
        sentiment_score=reading.sentiment.score,
        faq=reading.faq.entry.id if reading.faq else None,
    )
