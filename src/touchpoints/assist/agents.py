"""The agents' side of the assistant: queues per team, conversations with their handover
summary, replies that reach the customer's widget (or the next poll of any client), and
closing with an outcome. The agent console and ``/v1/assistant/conversations`` call this.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from touchpoints.assist import signals
from touchpoints.assist.live import Conversation
from touchpoints.assist.results import (
    AgentMessage,
    ConversationDetail,
    ConversationList,
    Queue,
    Queues,
    Summary,
)
from touchpoints.assist.results import Conversation as ConversationAnswer
from touchpoints.assist.service import Assistant, _row, _source
from touchpoints.errors import Conflict

OPEN = ("bot", "queued", "agent")


def audit_target(conversation_id: str, person: str | None = None) -> str:
    """What the audit log names a conversation by: its person (``person:N``), else a digest
    of its id. Never the id itself: with a site's public write key, the id reads the
    conversation (it is the customer's secret), and the audit log is read by others."""
    if person is not None:
        return person
    return "conversation:" + hashlib.sha256(conversation_id.encode()).hexdigest()[:16]


class Agents:
    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    def queues(self, now: datetime | None = None) -> Queues:
        now = now or datetime.now(UTC)
        rows = self.assistant.store.conversations(("queued", "agent"))
        out = []
        for team in self.assistant.routing.teams:
            waiting = [r for r in rows if r.team == team.name and r.state == "queued"]
            oldest = min((r.handed_over_at for r in waiting if r.handed_over_at), default=None)
            out.append(
                Queue(
                    team=team.name,
                    label=team.en,
                    waiting=len(waiting),
                    oldest_waiting_seconds=(
                        round((now.replace(tzinfo=None) - oldest).total_seconds(), 1)
                        if oldest
                        else None
                    ),
                    in_progress=sum(r.team == team.name and r.state == "agent" for r in rows),
                )
            )
        return Queues(queues=out, business_hours=self.assistant.directory.business_hours(now))

    def listing(
        self, state: str | None = None, team: str | None = None, person: int | None = None
    ) -> ConversationList:
        states = OPEN if state == "open" else (state,) if state else None
        rows = self.assistant.store.conversations(states, team, person)
        found = [self._answer(Conversation.from_row(row)) for row in rows]
        return ConversationList(conversations=found)

    def detail(self, conversation_id: str) -> ConversationDetail:
        conv = self.assistant.conversation(conversation_id)
        rows = self.assistant.store.messages(conversation_id)
        return ConversationDetail(
            conversation=self._answer(conv),
            messages=[
                AgentMessage(
                    number=row.number,
                    at=row.sent_at,
                    author=row.author,
                    agent=row.agent,
                    text=row.text if row.text is not None else conv.texts.get(row.number),
                    intent=row.intent,
                    confidence=row.confidence,
                    language=row.language,
                    sentiment=row.sentiment,
                    outcome=row.outcome,
                    source=_source(row.source),
                )
                for row in rows
            ],
            summary=Summary.model_validate_json(conv.summary) if conv.summary else None,
        )

    def reply(self, conversation_id: str, text: str, agent: str) -> AgentMessage:
        """An agent's message to the customer: it reaches their widget at its next poll."""
        assistant = self.assistant
        with assistant.live.lock(conversation_id):
            conv = assistant.conversation(conversation_id)
            if not conv.open:
                raise Conflict(f"conversation {conv.id} is closed")
            now = datetime.now(UTC)
            at = now.replace(tzinfo=None)
            conv.messages += 1
            number = conv.messages
            if conv.state in ("bot", "queued"):
                conv.state = "agent"
            conv.agent = agent
            if conv.first_human_at is None:
                conv.first_human_at = at
                if conv.handed_over_at is None:  # an agent stepped in unasked
                    conv.handed_over_at = at
            shown = text  # an agent's words are the company's (a phone number to call)
            consent = assistant.people.consents(conv)
            if not consent:
                conv.texts[number] = shown
            row = _row(
                conv,
                number,
                at,
                "agent",
                shown if consent else None,
                None,
                "agent",
                None,
                agent=agent,
            )
            conv.updated_at = at
            assistant.write(conv, [row])
            assistant.record(
                [
                    signals.track(
                        conv,
                        signals.RECEIVED,
                        f"m{number}",
                        now,
                        message_number=number,
                        author="agent",
                        agent_id=agent,
                        team=conv.team,
                    )
                ]
            )
        return AgentMessage(
            number=number,
            at=at,
            author="agent",
            agent=agent,
            text=shown,
            intent=None,
            confidence=None,
            language=None,
            sentiment=None,
            outcome="agent",
            source=None,
        )

    def close(
        self, conversation_id: str, outcome: str, by: str | None = None
    ) -> ConversationAnswer:
        """The conversation ended, with ``outcome`` (resolved, unresolved, abandoned, …)."""
        assistant = self.assistant
        with assistant.live.lock(conversation_id):
            conv = assistant.conversation(conversation_id)
            if not conv.open:
                raise Conflict(f"conversation {conv.id} is closed already")
            self.end(conv, outcome, by)
        return self._answer(conv)

    def end(self, conv: Conversation, outcome: str, by: str | None = None) -> None:
        """Close ``conv`` (its lock held by the caller); what memory kept of it is dropped."""
        assistant = self.assistant
        now = datetime.now(UTC)
        conv.state, conv.outcome = "closed", outcome
        conv.closed_at = conv.updated_at = now.replace(tzinfo=None)
        if by is not None and conv.agent is None:
            conv.agent = by
        assistant.save(conv)
        assistant.codes.forget(conv.id)
        conv.texts.clear()
        assistant.live.changed(conv)
        duration = (conv.closed_at - conv.started_at).total_seconds()
        assistant.record(
            [
                signals.track(
                    conv,
                    signals.ENDED,
                    "end",
                    now,
                    outcome=outcome,
                    rating=conv.rating,
                    messages=conv.messages,
                    conversation_duration=round(duration, 1),
                    handed_over=conv.handed_over_at is not None,
                    team=conv.team,
                )
            ]
        )

    def rate(self, conversation_id: str, rating: int) -> ConversationAnswer:
        """The customer's rating of the conversation (1 to 5), once it has answers."""
        assistant = self.assistant
        with assistant.live.lock(conversation_id):
            conv = assistant.conversation(conversation_id)
            conv.rating = rating
            assistant.save(conv)
        return self._answer(conv)

    def _answer(self, conv: Conversation) -> ConversationAnswer:
        waiting = None
        if conv.handed_over_at is not None:
            until = conv.first_human_at or datetime.now(UTC).replace(tzinfo=None)
            waiting = round((until - conv.handed_over_at).total_seconds(), 1)
        who = None
        if conv.summary:
            who = Summary.model_validate_json(conv.summary).who
        return ConversationAnswer(
            id=conv.id,
            channel=conv.channel,
            state=conv.state,
            team=conv.team,
            priority=conv.priority,
            intent=conv.intent,
            language=conv.language,
            person=f"person:{conv.subject}" if conv.subject is not None else None,
            verified=conv.verified if conv.verified_person is not None else None,
            who=who,
            started_at=conv.started_at,
            updated_at=conv.updated_at,
            handed_over_at=conv.handed_over_at,
            first_human_at=conv.first_human_at,
            closed_at=conv.closed_at,
            waiting_seconds=waiting,
            outcome=conv.outcome,
            agent=conv.agent,
            messages=conv.messages,
        )
