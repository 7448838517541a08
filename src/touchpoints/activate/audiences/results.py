"""The answers of audiences and computed traits (see :mod:`touchpoints.answers`). Persons
are named ``person:N``, as everywhere in the API."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field

from touchpoints.answers import Answer
from touchpoints.times import UtcTime


class ComputedTrait(Answer):
    key: str
    name: str
    description: str
    kind: str = Field(description="count, sum, average, min, max, most_frequent, first, last, …")
    definition: dict[str, Any] = Field(description="The definition as written (validated)")
    summary: str = Field(description="The definition in a line")
    persons: int = Field(description="Persons with a value")
    created_at: UtcTime
    changed_at: UtcTime
    evaluated_at: UtcTime | None


class ComputedTraitList(Answer):
    traits: list[ComputedTrait]


class TraitValue(Answer):
    person: str
    value: Any
    computed_at: UtcTime


class TraitValues(Answer):
    key: str
    total: int = Field(description="Persons with a value")
    values: list[TraitValue] = Field(description="A page of them, largest numbers first")


class PersonTrait(Answer):
    key: str
    name: str
    kind: str
    summary: str = Field(description="How it is computed")
    value: Any = Field(description="None: nothing counted (a count is 0)")
    computed_at: UtcTime | None


class PersonTraits(Answer):
    person: str
    traits: list[PersonTrait]


class AudienceLink(Answer):
    destination: int
    mode: str = Field(
        description="identify (<key>: true|false), track (Audience Entered/Exited), or file "
        "(every member as one file on a schedule)"
    )
    linked_at: UtcTime
    synced_at: UtcTime | None = Field(description="When members were last sent (a file: written)")
    sent: int = Field(description="Messages written to the outbox for it (a file: its runs)")
    schedule: str | None = Field(
        default=None, description="A file link's schedule (every 2 hours, daily at 06:00; UTC)"
    )
    next_run_at: UtcTime | None = Field(default=None, description="A file link's next run")
    rows: int | None = Field(default=None, description="A file link's rows at its last run")


class AudienceFileRun(Answer):
    """One run of a file link: the message that writes the file, and what it holds."""

    audience: str
    destination: int
    message_id: str = Field(description="The outbox message that writes the file")
    rows: int = Field(description="Members in the file")
    skipped: int = Field(description="Members left out: no consent to the destination's purposes")
    at: UtcTime
    next_run_at: UtcTime = Field(description="The next run on the schedule")


class Audience(Answer):
    key: str
    name: str
    description: str
    condition: dict[str, Any] = Field(description="The condition as written (validated)")
    size: int
    time_relative: bool = Field(
        description="Whether it holds a window of days (evaluated again on a schedule)"
    )
    created_at: UtcTime
    changed_at: UtcTime
    evaluated_at: UtcTime | None
    destinations: list[AudienceLink] = Field(default_factory=list)


class AudienceList(Answer):
    audiences: list[Audience]


class Preview(Answer):
    size: int = Field(description="Persons the condition holds for now")
    persons: int = Field(description="Persons there are")
    at: UtcTime


class Member(Answer):
    person: str
    entered_at: UtcTime


class MemberPage(Answer):
    key: str
    size: int
    members: list[Member]


class MembershipChange(Answer):
    audience: str
    person: str
    change: str = Field(description="entered or exited")
    at: UtcTime


class MembershipHistory(Answer):
    changes: list[MembershipChange] = Field(description="Newest first")


class SizePoint(Answer):
    day: date
    size: int = Field(description="Members at the end of the day (or now, today)")
    entered: int
    exited: int


class SizeHistory(Answer):
    key: str
    sizes: list[SizePoint]


class PersonAudience(Answer):
    key: str
    name: str
    entered_at: UtcTime


class PersonMemberships(Answer):
    person: str
    audiences: list[PersonAudience] = Field(description="The audiences the person is in now")
    history: list[MembershipChange] = Field(description="Their entries and exits, newest first")


class Evaluated(Answer):
    full: bool
    persons: int = Field(description="Persons evaluated (0: everyone)")
    traits: int
    audiences: int
    entered: int
    exited: int
    messages: int = Field(description="Messages written to destinations' outboxes")
    seconds: float
