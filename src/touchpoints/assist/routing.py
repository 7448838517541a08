"""Routing rules: conditions over what the assistant understood and who the customer is,
to a team and a priority (as Chatwoot's automation rules and Zammad's triggers do).

The first rule whose conditions all hold decides; none: the default. A condition names
what it tests (``intent``, ``language``, ``channel``, ``sentiment``, ``stage``: a value or
a list; ``audience``: the customer is in at least one of these audiences, ``not_audience``:
in none of them; ``business_hours``, ``open_complaint``, ``verified``: true or false;
``clv``, ``churn_risk``, ``churn_percentile``, ``sentiment_score``: numbers
``{gte, lte, gt, lt}``). A number the customer does not have (an anonymous visitor's
lifetime value) fails its test; an anonymous visitor is in no audience.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from touchpoints.activate.audiences import valid_key
from touchpoints.assist.files import load_file
from touchpoints.channels import CHANNELS

Priority = Literal["low", "normal", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "urgent")


class Bounds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gte: float | None = None
    lte: float | None = None
    gt: float | None = None
    lt: float | None = None

    @model_validator(mode="after")
    def _something(self) -> Bounds:
        if all(v is None for v in (self.gte, self.lte, self.gt, self.lt)):
            raise ValueError("give at least one of gte, lte, gt, lt")
        return self

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        return (
            (self.gte is None or value >= self.gte)
            and (self.lte is None or value <= self.lte)
            and (self.gt is None or value > self.gt)
            and (self.lt is None or value < self.lt)
        )


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class When(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    intent: tuple[str, ...] | None = None
    language: tuple[str, ...] | None = None
    channel: tuple[str, ...] | None = None
    sentiment: tuple[Literal["negative", "neutral", "positive"], ...] | None = None
    stage: tuple[str, ...] | None = None
    audience: tuple[str, ...] | None = None
    not_audience: tuple[str, ...] | None = None
    business_hours: bool | None = None
    open_complaint: bool | None = None
    verified: bool | None = None
    clv: Bounds | None = None
    churn_risk: Bounds | None = None
    churn_percentile: Bounds | None = None
    sentiment_score: Bounds | None = None

    _lists = field_validator(
        "intent",
        "language",
        "channel",
        "sentiment",
        "stage",
        "audience",
        "not_audience",
        mode="before",
    )(lambda cls, value: _listed(value))

    @field_validator("audience", "not_audience")
    @classmethod
    def _audience_keys(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for key in value or ():
            if not valid_key(key):
                raise ValueError(
                    f"{key!r} is not an audience's key (lower-case letters, digits and _, "
                    "starting with a letter)"
                )
        return value

    @field_validator("channel")
    @classmethod
    def _channels(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for name in value or ():
            if name not in CHANNELS:
                raise ValueError(f"{name!r} is not a channel; channels: {', '.join(CHANNELS)}")
        return value

    @model_validator(mode="after")
    def _says_something(self) -> When:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("a rule needs at least one condition")
        return self


@dataclass(frozen=True)
class Facts:
    """What the rules test: the conversation and the customer at the moment of handover."""

    intent: str | None = None
    language: str | None = None
    channel: str = "chat"
    sentiment: str = "neutral"
    sentiment_score: float = 0.0
    stage: str | None = None
    business_hours: bool = True
    open_complaint: bool = False
    verified: bool = False
    clv: float | None = None
    churn_risk: float | None = None
    churn_percentile: float | None = None
    audiences: frozenset[str] = frozenset()


def _one_of(wanted: tuple[str, ...] | None, value: str | None) -> bool:
    return wanted is None or value in wanted


def _member(wanted: tuple[str, ...] | None, audiences: frozenset[str]) -> bool:
    return wanted is None or not audiences.isdisjoint(wanted)


def _outside(unwanted: tuple[str, ...] | None, audiences: frozenset[str]) -> bool:
    return unwanted is None or audiences.isdisjoint(unwanted)


def _flag(wanted: bool | None, value: bool) -> bool:
    return wanted is None or wanted == value


def _bounded(wanted: Bounds | None, value: float | None) -> bool:
    return wanted is None or wanted.holds(value)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    when: When
    team: str
    priority: Priority = "normal"

    def holds(self, facts: Facts) -> bool:
        w = self.when
        return (
            _one_of(w.intent, facts.intent)
            and _one_of(w.language, facts.language)
            and _one_of(w.channel, facts.channel)
            and _one_of(w.sentiment, facts.sentiment)
            and _one_of(w.stage, facts.stage)
            and _member(w.audience, facts.audiences)
            and _outside(w.not_audience, facts.audiences)
            and _flag(w.business_hours, facts.business_hours)
            and _flag(w.open_complaint, facts.open_complaint)
            and _flag(w.verified, facts.verified)
            and _bounded(w.clv, facts.clv)
            and _bounded(w.churn_risk, facts.churn_risk)
            and _bounded(w.churn_percentile, facts.churn_percentile)
            and _bounded(w.sentiment_score, facts.sentiment_score)
        )


class Team(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=60)
    de: str = Field(min_length=1, max_length=100)
    en: str = Field(min_length=1, max_length=100)

    def label(self, language: str) -> str:
        return self.en if language == "en" else self.de


class Default(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    team: str
    priority: Priority = "normal"


@dataclass(frozen=True)
class Route:
    team: str
    priority: Priority
    rule: str  # the rule's name, or "default"


class Routing(BaseModel):
    """The teams, the rules in order, and the default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    teams: list[Team] = Field(min_length=1)
    rules: list[Rule] = Field(default_factory=list)
    default: Default

    @model_validator(mode="after")
    def _teams_known(self) -> Routing:
        names = [team.name for team in self.teams]
        for i, name in enumerate(names):
            if names.index(name) != i:
                raise ValueError(f"teams[{i}].name: {name!r} is used twice")
        for i, rule in enumerate(self.rules):
            if rule.team not in names:
                raise ValueError(
                    f"rules[{i}].team: {rule.team!r} is not one of the teams ({', '.join(names)})"
                )
        if self.default.team not in names:
            raise ValueError(f"default.team: {self.default.team!r} is not one of the teams")
        return self

    def route(self, facts: Facts) -> Route:
        for rule in self.rules:
            if rule.holds(facts):
                return Route(rule.team, rule.priority, rule.name)
        return Route(self.default.team, self.default.priority, "default")

    def team(self, name: str | None) -> Team | None:
        return next((team for team in self.teams if team.name == name), None)


def load_routing(path: Path | None = None) -> Routing:
    """The routing rules at ``path`` (or the shipped ones), validated."""
    return load_file(Routing, path, "routing.yaml", "routing rules")
