"""What the assistant reads and writes in the warehouse: its conversations and messages,
and the few events of a person it answers from (orders, appointments, complaints).

A person's events are found as profiles find them (identifiers → anchored seqs → events,
keys passed as lists), narrowed to the event names asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import duckdb

from touchpoints.warehouse import Warehouse

CONVERSATION_COLUMNS = (
    "id, channel, visitor_type, visitor_value, person, verified, verified_person, language, "
    "state, intent, team, priority, rule, handover_intent, summary, agent, outcome, rating, "
    "messages, started_at, updated_at, handed_over_at, first_human_at, closed_at"
)
MESSAGE_COLUMNS = (
    "conversation, number, visitor_type, visitor_value, sent_at, author, agent, text, intent, "
    "confidence, language, sentiment, sentiment_score, outcome, source"
)


class ConversationRow(NamedTuple):
    id: str
    channel: str
    visitor_type: str
    visitor_value: str
    person: int | None
    verified: str | None
    verified_person: int | None
    language: str | None
    state: str
    intent: str | None
    team: str | None
    priority: str | None
    rule: str | None
    handover_intent: str | None
    summary: str | None
    agent: str | None
    outcome: str | None
    rating: int | None
    messages: int
    started_at: datetime
    updated_at: datetime
    handed_over_at: datetime | None
    first_human_at: datetime | None
    closed_at: datetime | None


class MessageRow(NamedTuple):
    conversation: str
    number: int
    visitor_type: str
    visitor_value: str
    sent_at: datetime
    author: str
    agent: str | None
    text: str | None
    intent: str | None
    confidence: float | None
    language: str | None
    sentiment: str | None
    sentiment_score: float | None
    outcome: str | None
    source: str | None


class PersonEvent(NamedTuple):
    event: str
    properties: str | None
    timestamp: datetime
    channel: str


class AssistantStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    # -- conversations -----------------------------------------------------------------------
    def conversation(self, conversation_id: str) -> ConversationRow | None:
        rows = self.warehouse.fetchall(
            f"SELECT {CONVERSATION_COLUMNS} FROM assistant_conversations WHERE id = ?",
            [conversation_id],
        )
        return ConversationRow(*rows[0]) if rows else None

    def save_conversation(
        self,
        row: ConversationRow,
        cursor: duckdb.DuckDBPyConnection | None = None,
        new: bool = False,
    ) -> None:
        """Write the conversation ``row``: inserted when ``new``, else updated by its id."""
        cursor = cursor or self.warehouse.cursor()
        if new:
            marks = ", ".join("?" for _ in row)
            self.warehouse.run(
                f"INSERT INTO assistant_conversations ({CONVERSATION_COLUMNS}) VALUES ({marks})",
                list(row),
                cursor=cursor,
            )
            return
        columns = ConversationRow._fields[1:]
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self.warehouse.run(
            f"UPDATE assistant_conversations SET {assignments} WHERE id = ?",
            [*row[1:], row.id],
            cursor=cursor,
        )

    def add_messages(
        self, rows: Sequence[MessageRow], cursor: duckdb.DuckDBPyConnection | None = None
    ) -> None:
        """The messages in one statement (each statement costs DuckDB milliseconds)."""
        if not rows:
            return
        one = "(" + ", ".join("?" for _ in MessageRow._fields) + ")"
        self.warehouse.run(
            f"INSERT INTO assistant_messages ({MESSAGE_COLUMNS}) VALUES "
            + ", ".join(one for _ in rows),
            [value for row in rows for value in row],
            cursor=cursor or self.warehouse.cursor(),
        )

    def messages(self, conversation_id: str, after: int = 0, limit: int = 500) -> list[MessageRow]:
        rows = self.warehouse.fetchall(
            f"SELECT {MESSAGE_COLUMNS} FROM assistant_messages "
            "WHERE conversation = ? AND number > ? ORDER BY number LIMIT ?",
            [conversation_id, after, limit],
        )
        return [MessageRow(*row) for row in rows]

    def conversations(
        self,
        states: Sequence[str] | None = None,
        team: str | None = None,
        person: int | None = None,
        limit: int = 200,
    ) -> list[ConversationRow]:
        clauses: list[str] = ["TRUE"]
        params: list[object] = []
        if states:
            clauses.append("state IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(states))
        if team:
            clauses.append("team = ?")
            params.append(team)
        if person is not None:
            clauses.append("(person = ? OR verified_person = ?)")
            params += [person, person]
        rows = self.warehouse.fetchall(
            f"SELECT {CONVERSATION_COLUMNS} FROM assistant_conversations "
            f"WHERE {' AND '.join(clauses)} ORDER BY coalesce(handed_over_at, started_at) "
            "LIMIT ?",
            [*params, limit],
        )
        return [ConversationRow(*row) for row in rows]

    def open_conversation(self, channel: str, visitor_type: str, visitor_value: str) -> str | None:
        """The latest open conversation of a visitor on a channel (an SMS sender's)."""
        found = self.warehouse.scalar(
            "SELECT id FROM assistant_conversations WHERE channel = ? AND visitor_type = ? "
            "AND visitor_value = ? AND state <> 'closed' ORDER BY updated_at DESC LIMIT 1",
            [channel, visitor_type, visitor_value],
        )
        return str(found) if found is not None else None

    def idle(self, before: datetime) -> list[str]:
        """Open conversations with nothing new since ``before``."""
        rows = self.warehouse.fetchall(
            "SELECT id FROM assistant_conversations WHERE state <> 'closed' AND updated_at < ?",
            [before],
        )
        return [found for (found,) in rows]

    def prune(self, before: datetime) -> tuple[int, int]:
        """Closed conversations last touched before ``before`` and their messages out;
        (conversations, messages) removed."""
        with self.warehouse.transaction() as cursor:
            messages = self.warehouse.run(
                "DELETE FROM assistant_messages WHERE conversation IN (SELECT id FROM "
                "assistant_conversations WHERE state = 'closed' AND updated_at < ?) RETURNING 1",
                [before],
                cursor=cursor,
            ).fetchall()
            conversations = self.warehouse.run(
                "DELETE FROM assistant_conversations WHERE state = 'closed' AND updated_at < ? "
                "RETURNING 1",
                [before],
                cursor=cursor,
            ).fetchall()
        return len(conversations), len(messages)

    # -- figures -----------------------------------------------------------------------------
    def started_since(self, since: datetime) -> list[ConversationRow]:
        rows = self.warehouse.fetchall(
            f"SELECT {CONVERSATION_COLUMNS} FROM assistant_conversations WHERE started_at >= ?",
            [since],
        )
        return [ConversationRow(*row) for row in rows]

    def intents_since(self, since: datetime) -> list[tuple[str, str]]:
        """(conversation, intent) for every intent a customer's message had."""
        return self.warehouse.fetchall(
            "SELECT DISTINCT m.conversation, m.intent FROM assistant_messages m "
            "JOIN assistant_conversations c ON c.id = m.conversation "
            "WHERE c.started_at >= ? AND m.author = 'customer' AND m.intent IS NOT NULL",
            [since],
        )

    # -- a person's events -------------------------------------------------------------------
    def person_events(
        self, person: int, names: Sequence[str], limit: int = 200
    ) -> list[PersonEvent]:
        """The person's track events named ``names``, newest first (one statement)."""
        rows = self.warehouse.fetchall(
            "SELECT event, properties, timestamp, channel FROM events "
            "WHERE seq IN (SELECT ei.seq FROM event_identifiers ei "
            "JOIN identifiers i ON i.sid = ei.sid WHERE ei.pos = 0 AND i.person = ?) "
            "AND type = 'track' AND event IN (SELECT unnest(?::VARCHAR[])) "
            "ORDER BY timestamp DESC, seq DESC LIMIT ?",
            [person, list(names), limit],
        )
        return [PersonEvent(*row) for row in rows]
