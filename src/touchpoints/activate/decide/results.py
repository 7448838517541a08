"""The typed answers of personalisation (the API's response models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Reason = Literal["rule", "default", "control", "consent", "unknown"]
REASONS: tuple[str, ...] = ("rule", "default", "control", "consent", "unknown")


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class Decision(_Answer):
    """What a placement shows one person, and why."""

    placement: str
    content: dict[str, Any] = Field(description="What to show: the rule's content, or the default")
    rule: str | None = Field(description="The rule whose content it is; null: the default")
    reason: Reason = Field(
        description=(
            "rule: a rule held; default: none held; control: the person is held out in the "
            "placement's control group; consent: the person has not granted personalisation; "
            "unknown: no person has the identifier yet"
        )
    )
    strategy: str = Field(description="The placement's strategy: first_match, score, random")
    control: bool = Field(description="The person is in the control group")
    score: float | None = Field(default=None, description="The rule's score (score strategy)")
    # The person decided for, for the audit log: never sent (a browser has no use for it).
    person: int | None = Field(default=None, exclude=True)


class Placement(_Answer):
    key: str
    name: str
    description: str
    strategy: str
    control_percent: float
    conversion_event: str | None
    conversion_days: int
    default: dict[str, Any]
    rules: list[dict[str, Any]] = Field(description="The rules as written, in order")
    decisions: int = Field(description="Decisions logged for the placement")
    last_decided_at: datetime | None
    created_at: datetime
    changed_at: datetime


class PlacementList(_Answer):
    placements: list[Placement]


class ReasonCount(_Answer):
    reason: str
    rule: str | None
    decisions: int


class Group(_Answer):
    persons: int = Field(description="Persons exposed (counted once, at their first decision)")
    converted: int = Field(description="Of them, those who converted after it, within the days")
    rate: float | None = Field(description="converted ÷ persons; null without persons")


class Uplift(_Answer):
    """The treatment group (shown what the rules chose) against the control group (held
    out, shown the default): the difference of their conversion rates with a 95% interval
    (Newcombe's hybrid score interval, from the Wilson intervals of each rate)."""

    placement: str
    conversion_event: str | None
    conversion_days: int
    treatment: Group
    control: Group
    uplift: float | None = Field(description="treatment rate − control rate (absolute)")
    low: float | None = Field(description="the 95% interval's lower end")
    high: float | None = Field(description="the 95% interval's upper end")
    relative: float | None = Field(description="uplift ÷ control rate")
    significant: bool = Field(description="the interval excludes 0")
    reasons: list[ReasonCount] = Field(description="Decisions per reason and rule")
