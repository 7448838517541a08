"""The events a conversation leaves in the customer's journey: Segment's Live Chat events
for the conversation and each message, and the demo's service events for a handover and a
complaint, so the journey map, its pain points (``chatbot handover``, ``complaint``,
``repeated support contacts``, ``unresolved conversation``) and churn risk see them.

Events say what was understood and done, never what was said: transcripts are kept only
with consent, in the assistant's own tables. Each event is of the conversation's channel
(``context.channel``: chat, voice or sms) and carries the identifiers of the visit: the
widget's anonymousId (else the conversation's id, as a visit's), a user id the site proved,
the phone of an SMS or a call, the e-mail a one-time code proved, a voice device.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from touchpoints.assist.live import Conversation
from touchpoints.times import iso

LIBRARY = {"name": "touchpoints-assistant", "version": "1"}
STARTED = "Live Chat Conversation Started"
ENDED = "Live Chat Conversation Ended"
SENT = "Live Chat Message Sent"  # by the customer (Segment's names: the customer's view)
RECEIVED = "Live Chat Message Received"  # by the customer, from the assistant or an agent
HANDOVER = "Chatbot Handover"
COMPLAINT = "Complaint Filed"


def who(conv: Conversation) -> dict[str, Any]:
    """The identifiers an event of ``conv`` carries, and its context."""
    out: dict[str, Any] = {"anonymousId": conv.anonymous_id or conv.id}
    if conv.user_id:
        out["userId"] = conv.user_id
    context: dict[str, Any] = {"channel": conv.channel, "library": dict(LIBRARY)}
    traits = {key: value for key, value in (("phone", conv.phone), ("email", conv.email)) if value}
    if traits:
        context["traits"] = traits
    if conv.device_id:
        context["device"] = {"id": conv.device_id, "type": "voice_assistant"}
    out["context"] = context
    return out


def track(conv: Conversation, event: str, suffix: str, at: datetime, **properties: Any) -> dict:
    return {
        "type": "track",
        "event": event,
        "messageId": f"asst-{conv.id}-{suffix}",
        "timestamp": iso(at),
        "properties": {
            "conversation_id": conv.id,
            **{k: v for k, v in properties.items() if v is not None},
        },
        **who(conv),
    }


def consent_withdrawn(conv: Conversation, category: str, suffix: str, at: datetime) -> dict:
    """The customer's choice, as a consent tool records it (Segment's consent event)."""
    event = track(conv, "Segment Consent Preference Updated", suffix, at, source="assistant")
    event["context"]["consent"] = {"categoryPreferences": {category: False}}
    return event
