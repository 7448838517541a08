"""Keeping the assistant's tables tidy, in a thread of the server, every minute:

- a conversation with the assistant alone that has been idle ``assistant_idle_minutes`` is
  closed: *resolved* when the assistant's last answer answered, *unresolved* when it had not
  understood (or the customer declined, or never proved who they were);
- one waiting for or with a person, idle a day, is closed as *abandoned*;
- closed conversations and their messages leave the database after
  ``assistant_transcript_days`` (storage limitation: a transcript is personal data);
- the journey tables are brought up to date when customers wrote (their stages).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from touchpoints.assist.agents import Agents
from touchpoints.assist.service import Assistant
from touchpoints.jobs import PeriodicJob

log = logging.getLogger("touchpoints.assist")
_UNRESOLVED = {
    "not_understood",
    "other_language",
    "declined",
    "verify",
    "code_sent",
    "code_wrong",
    "code_expired",
    "code_used_up",
    "code_no_code",
}
WAITING_HOURS = 24


def tidy(assistant: Assistant, agents: Agents, now: datetime | None = None) -> tuple[int, int]:
    """Close idle conversations and prune old ones; (closed, removed)."""
    now = now or datetime.now(UTC)
    naive = now.replace(tzinfo=None)
    closed = 0
    idle = naive - timedelta(minutes=assistant.settings.idle_minutes)
    for conversation_id in assistant.store.idle(idle):
        with assistant.live.lock(conversation_id):
            conv = assistant.conversation(conversation_id)
            if not conv.open:
                continue
            if conv.state == "bot":
                last = assistant.store.messages(conversation_id)
                outcome = last[-1].outcome if last else None
                agents.end(conv, "unresolved" if outcome in _UNRESOLVED else "resolved")
            elif conv.updated_at < naive - timedelta(hours=WAITING_HOURS):
                agents.end(conv, "abandoned")
            else:
                continue
            closed += 1
    removed, _messages = assistant.store.prune(
        naive - timedelta(days=assistant.settings.transcript_days)
    )
    return closed, removed


def _described(done: tuple[int, int]) -> str | None:
    closed, removed = done
    if not closed and not removed:
        return None
    return f"closed {closed} idle conversations, removed {removed} old ones"


def assistant_job(
    assistant: Assistant,
    agents: Agents,
    interval: float = 60,
    refresh: Callable[[], object] | None = None,
    warm: bool = True,
) -> PeriodicJob[tuple[int, int]]:
    """:func:`tidy` every ``interval`` seconds, the first turn at once (it loads the model
    first, so the first customer does not wait for it). When customers wrote since the last
    turn, ``refresh`` too (the journey tables: a handover's routing reads the stage as last
    derived, so it is at most a minute behind). ``warm`` false: the model is loaded at the
    first message instead (the ``assistant_warm`` setting)."""
    seen = {"warm": not warm, "turns": 0}

    def turn() -> tuple[int, int]:
        if not seen["warm"]:
            assistant.warm()
            seen["warm"] = True
        done = tidy(assistant, agents)
        if refresh is not None and assistant.turns != seen["turns"]:
            seen["turns"] = assistant.turns
            refresh()
        return done

    return PeriodicJob("assistant", turn, _described, interval=interval, first=0, log=log)
