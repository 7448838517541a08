"""A conversation is built by keyword: a new one names what it knows and starts empty
otherwise, and what the database keeps of it comes back as it was."""

from __future__ import annotations

from datetime import datetime

from touchpoints.assist.live import Conversation
from touchpoints.assist.store import ConversationRow


def test_a_new_conversation_starts_empty_and_survives_its_row() -> None:
    now = datetime(2026, 12, 2, 9, 30)
    conv = Conversation(
        id="conv_1",
        channel="voice",
        visitor_type="phone",
        visitor_value="+491715550199",
        language="en",
        started_at=now,
        updated_at=now,
    )
    assert (conv.state, conv.messages, conv.person, conv.closed_at) == ("bot", 0, None, None)
    assert conv.open and conv.subject is None
    conv.person, conv.intent, conv.messages = 17, "order_status", 3
    back = Conversation.from_row(conv.row())
    stored = ConversationRow._fields
    assert all(getattr(back, name) == getattr(conv, name) for name in stored)
    assert back.stored and back.phone == "+491715550199"  # the visitor's key, remembered
