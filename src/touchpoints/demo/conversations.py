"""Conversations with the service assistant in the demo's journeys: the events its chat and
voice channels leave (the names and properties of ``touchpoints.assist.signals``), so the
journey map, its pain points (``chatbot handover``, ``complaint``, ``repeated support
contacts``, ``unresolved conversation``), the channel mix and churn see them as they see a
real deployment's.

A conversation takes the span of the journey's clock its caller gives (the caller keeps
drawing its own random numbers exactly as before, so nobody else's journey changes); what
is said (intents, language, sentiment, how it ends) comes from a generator of its own.
Events say what was understood and done, never what was said, as the assistant's do.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from touchpoints.demo.model import _hex, _iso

if TYPE_CHECKING:
    from touchpoints.demo.journey import Journey

LIBRARY = {"name": "touchpoints-assistant", "version": "1"}
# How customers feel when they ask it: (label, score) drawn around these.
_FEELING = {
    "complaint": ("negative", -0.6),
    "human": ("negative", -0.2),
    "thanks": ("positive", 0.6),
    "greeting": ("positive", 0.3),
}
# Which team a handover goes to, as the shipped routing rules send it.
_PRIORITY = {"complaints": "high", "retention": "urgent"}


def converse(
    j: Journey,
    channel: str,
    intents: list[str],
    start: datetime,
    end: datetime,
    *,
    team: str | None = None,
    rating: int | None = None,
    outcome: str | None = None,
    until: datetime | None = None,
) -> datetime | None:
    """The events of one conversation on ``channel`` (chat or voice) between ``start`` and
    ``end``: the customer's messages with ``intents`` in order and the assistant's answers;
    with ``team``, the last message hands it over (``Chatbot Handover`` at ``end``), an agent
    answers and closes it afterwards. ``outcome`` is how it ended (default: resolved without
    a person, else drawn); ``rating``: the customer's, if given. Nothing is emitted after
    ``until`` (a customer who lapses: the agent's answer and the close are never seen). The
    clock is left at ``end``; returns the moment of the handover (None without one)."""
    p = j.p
    own = random.Random(f"{j.sim.config.seed}-talk-{p.person_id}-{channel}-{_iso(start)}")
    language = "de" if own.random() < 0.85 else "en"
    conversation = "conv_" + _hex(j.sim.config.seed, p.person_id, channel, _iso(start), length=22)
    span = max((end - start).total_seconds(), 60.0)
    who = _who(j, channel)

    def event(name: str, at: datetime, **properties: Any) -> None:
        if until is not None and at > until:
            return
        j.now = at
        props = {"conversation_id": conversation, **properties}
        j.emit({"type": "track", "event": name, "properties": props, **_copy(who)})

    event("Live Chat Conversation Started", start, channel=channel)
    number = 0
    for i, intent in enumerate(intents):
        at = start + timedelta(seconds=span * i / len(intents) + own.uniform(2, 20))
        label, centre = _FEELING.get(intent, ("neutral", 0.0))
        handing = team is not None and i == len(intents) - 1
        said = "handed_over" if handing else "resolved" if intent == "thanks" else "answered"
        number += 1
        event(
            "Live Chat Message Sent",
            at,
            message_number=number,
            intent=intent,
            confidence=round(own.uniform(0.55, 0.98), 4),
            language=language,
            sentiment=label,
            sentiment_score=round(max(-1.0, min(1.0, centre + own.uniform(-0.2, 0.2))), 3),
            outcome=said,
        )
        if not handing:
            number += 1
            event(
                "Live Chat Message Received",
                at + timedelta(seconds=own.uniform(0.3, 2)),
                message_number=number,
                author="assistant",
                outcome=said,
                intent=intent,
            )
    handed_at = None
    closed = end
    if team is not None:
        intent = intents[-1]
        priority = _PRIORITY.get(team, "normal")
        if intent == "complaint":
            event("Complaint Filed", end, source="assistant", team=team)
        event(
            "Chatbot Handover",
            end,
            team=team,
            priority=priority,
            rule="default" if team == "support" else f"to {team}",
            intent=intent if intent not in ("human", "out_of_scope") else None,
            reason="asked" if intent == "human" else "intent",
        )
        handed_at = end
        number += 1
        event(
            "Live Chat Message Received",
            end + timedelta(seconds=1),
            message_number=number,
            author="assistant",
            outcome="handed_over",
        )
        replied = end + timedelta(minutes=own.expovariate(1 / 4))
        number += 1
        event(
            "Live Chat Message Received",
            replied,
            message_number=number,
            author="agent",
            outcome="agent",
            team=team,
        )
        closed = replied + timedelta(minutes=own.uniform(2, 15))
        outcome = outcome or ("resolved" if own.random() < 0.7 else "unresolved")
    event(
        "Live Chat Conversation Ended",
        closed,
        outcome=outcome or "resolved",
        messages=number,
        conversation_duration=round((closed - start).total_seconds(), 1),
        handed_over=team is not None,
        **({"rating": rating} if rating is not None else {}),
    )
    j.now = end
    return handed_at


def _who(j: Journey, channel: str) -> dict[str, Any]:
    """The identifiers the assistant has: the signed-in user, else the widget's cookie (chat)
    or the caller's phone (voice, with a contact id of the call as its visit)."""
    p = j.p
    context: dict[str, Any] = {"channel": channel, "library": dict(LIBRARY)}
    if p.identified_at is not None and p.identified_at <= _iso(j.now):
        return {"userId": p.user_id, "context": context}
    if channel == "chat":
        return {"anonymousId": p.devices[0].anonymous_id, "context": context}
    contact = f"{channel}-{_hex(p.person_id, channel, length=12)}"
    if contact not in p.contact_ids:
        p.contact_ids.append(contact)
    context["traits"] = {"phone": p.phone}
    return {"anonymousId": contact, "context": context}


def _copy(who: dict[str, Any]) -> dict[str, Any]:
    """A copy whose context each event may keep as its own."""
    out = dict(who)
    out["context"] = {
        key: dict(value) if isinstance(value, dict) else value
        for key, value in who["context"].items()
    }
    return out
