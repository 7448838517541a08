"""Conversations as the assistant holds them while they run: their stored fields, what is
only remembered (what the assistant is waiting for, the identifiers of this visit, texts
kept in memory for want of consent), a lock each, and a counter per conversation that long
polls and event streams wait on.

Texts a person has not consented to keep (``consent_purposes.transcripts``) live here only,
so the agent console and the widget can show the conversation while it runs; they are
forgotten when it closes, when the server restarts, and when more than ``MAX_LIVE``
conversations are held (the oldest first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from datetime import datetime

from touchpoints.assist.store import ConversationRow

MAX_LIVE = 10_000


@dataclass(kw_only=True)
class Conversation:
    """A conversation, built by keyword (a new one names what it knows; every other field
    starts empty), so a field added here with its default is added everywhere."""

    # stored (assistant_conversations)
    id: str
    channel: str
    visitor_type: str
    visitor_value: str
    person: int | None = None
    verified: str | None = None
    verified_person: int | None = None
    language: str | None = None
    state: str = "bot"  # bot, queued, agent, closed
    intent: str | None = None
    team: str | None = None
    priority: str | None = None
    rule: str | None = None
    handover_intent: str | None = None
    summary: str | None = None
    agent: str | None = None
    outcome: str | None = None
    rating: int | None = None
    messages: int = 0
    started_at: datetime
    updated_at: datetime
    handed_over_at: datetime | None = None
    first_human_at: datetime | None = None
    closed_at: datetime | None = None
    # remembered while it runs
    anonymous_id: str | None = None
    user_id: str | None = None  # a signed-in user id the site proved
    phone: str | None = None
    device_id: str | None = None
    email: str | None = None  # the address a one-time code proved
    awaiting: str | None = None  # email or code
    pending_intent: str | None = None
    misunderstood: int = 0
    offered_person: str | None = None  # the intent a person was offered for
    texts: dict[int, str] = field(default_factory=dict)
    stored: bool = False  # its row is in the database (else the next save inserts it)

    @classmethod
    def from_row(cls, row: ConversationRow) -> Conversation:
        found = cls(**row._asdict())
        found.stored = True
        if found.visitor_type == "anonymous_id":
            found.anonymous_id = found.visitor_value
        elif found.visitor_type == "phone":
            found.phone = found.visitor_value
        elif found.visitor_type == "device_id":
            found.device_id = found.visitor_value
        return found

    def row(self) -> ConversationRow:
        stored = ConversationRow._fields
        return ConversationRow(*(getattr(self, name) for name in stored))

    @property
    def subject(self) -> int | None:
        """Whose conversation it is: the verified person, else the recognised one."""
        return self.verified_person if self.verified_person is not None else self.person

    @property
    def open(self) -> bool:
        return self.state != "closed"


_STORED = {f.name for f in fields(Conversation)} & set(ConversationRow._fields)
assert _STORED == set(ConversationRow._fields), "Conversation holds every stored column"


class Live:
    """The conversations held in memory, their locks and their message counters."""

    def __init__(self) -> None:
        self._held: OrderedDict[str, Conversation] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.versions: dict[str, int] = {}

    def lock(self, conversation_id: str) -> threading.Lock:
        with self._guard:
            found = self._locks.get(conversation_id)
            if found is None:
                if len(self._locks) > MAX_LIVE * 2:
                    self._locks = {k: v for k, v in self._locks.items() if v.locked()}
                found = self._locks[conversation_id] = threading.Lock()
            return found

    def get(self, conversation_id: str) -> Conversation | None:
        with self._guard:
            found = self._held.get(conversation_id)
            if found is not None:
                self._held.move_to_end(conversation_id)
            return found

    def hold(self, conversation: Conversation) -> None:
        with self._guard:
            self._held[conversation.id] = conversation
            self._held.move_to_end(conversation.id)
            self.versions[conversation.id] = conversation.messages
            while len(self._held) > MAX_LIVE:
                gone, _ = self._held.popitem(last=False)
                self.versions.pop(gone, None)

    def changed(self, conversation: Conversation) -> None:
        self.versions[conversation.id] = conversation.messages

    def closed(self, conversation_id: str) -> bool:
        """Whether the conversation held in memory has been closed (a waiting poll answers
        at once, so the widget can ask for a rating)."""
        found = self._held.get(conversation_id)
        return found is not None and found.state == "closed"

    def forget(self, conversation_id: str) -> None:
        with self._guard:
            self._held.pop(conversation_id, None)
            self.versions.pop(conversation_id, None)

    def forget_person(self, persons: set[int]) -> int:
        """Drop what memory holds of ``persons``' conversations (an erasure)."""
        with self._guard:
            gone = [
                key
                for key, found in self._held.items()
                if found.person in persons or found.verified_person in persons
            ]
            for key in gone:
                del self._held[key]
                self.versions.pop(key, None)
        return len(gone)
