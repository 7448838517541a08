"""The answers of triggers (see :mod:`touchpoints.answers`). Persons are named
``person:N``, as everywhere in the API."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from touchpoints.answers import Answer
from touchpoints.times import UtcTime


class Trigger(Answer):
    key: str
    name: str
    description: str
    enabled: bool
    definition: dict[str, Any] = Field(description="The definition as written (validated)")
    summary: str = Field(description="The definition in a line")
    fired: int = Field(description="Firings kept (every person, all time)")
    fired_day: int = Field(description="Firings in the last 24 hours")
    waiting: int = Field(description="Firings waiting for a delay to pass")
    created_at: UtcTime
    changed_at: UtcTime


class TriggerList(Answer):
    triggers: list[Trigger]


class Firing(Answer):
    id: int
    trigger: str = Field(description="The trigger's key")
    person: str
    cause: dict[str, Any] = Field(description="What made it fire: type, about, seq")
    fired_at: UtcTime
    state: str = Field(description="done, waiting (a delay), or stopped (a check failed)")
    steps_done: int
    detail: str | None = Field(description="What was not done, and why")
    changed_at: UtcTime


class FiringList(Answer):
    firings: list[Firing]


class Checked(Answer):
    """A definition checked without saving it."""

    key: str
    summary: str
