"""The stage model: which events show that a person reached which stage of the journey.

A model is a YAML file (``default_stages.yaml`` is the default, with the rules it supports
explained at its top), validated on load with errors that name the place and the reason
(``stages[2].rules[0].channel: 'webb' is not a channel; …``). Computing stages from events is
:mod:`touchpoints.journeys.stages`; this module is light, so settings can check a model at
start without loading the query engine.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from touchpoints.channels import CHANNELS
from touchpoints.yamlfiles import parsed

EventType = Literal["track", "page", "screen", "identify", "group", "alias"]


class NumberTest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gte: float | None = None
    lte: float | None = None
    gt: float | None = None
    lt: float | None = None

    @model_validator(mode="after")
    def _something(self) -> NumberTest:
        if all(v is None for v in (self.gte, self.lte, self.gt, self.lt)):
            raise ValueError("give at least one of gte, lte, gt, lt")
        return self


class Rule(BaseModel):
    """Every condition named must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: tuple[str, ...] | None = None
    type: tuple[EventType, ...] | None = None
    channel: tuple[str, ...] | None = None
    path_prefix: str | None = Field(None, min_length=1)
    campaign: bool | None = None
    first: bool | None = None
    after: str | None = None
    properties: dict[str, Any] | None = None  # value or NumberTest, see _property_tests

    @field_validator("event", "type", "channel", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("event", "type", "channel")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("name at least one, or leave the condition out")
        return value

    @field_validator("channel")
    @classmethod
    def _known_channels(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for name in value or ():
            if name not in CHANNELS:
                raise ValueError(f"{name!r} is not a channel; channels: {', '.join(CHANNELS)}")
        return value

    @field_validator("properties")
    @classmethod
    def _property_tests(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """Each property: a value to equal (text, number, true/false) or a NumberTest."""
        if value is None:
            return None
        out: dict[str, Any] = {}
        for key, wanted in value.items():
            if isinstance(wanted, dict):
                unknown = sorted(set(wanted) - {"gte", "lte", "gt", "lt"})
                if unknown:
                    raise ValueError(
                        f"{key}: unknown test {', '.join(unknown)}; use gte, lte, gt, lt"
                    )
                try:
                    out[key] = NumberTest.model_validate(wanted)
                except ValidationError as exc:
                    reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
                    raise ValueError(f"{key}: {reason}") from None
            elif isinstance(wanted, str | int | float | bool):
                out[key] = wanted
            else:
                raise ValueError(
                    f"{key}: give a value (text, number, true or false) or {{gte, lte, gt, lt}}"
                )
        return out

    @model_validator(mode="after")
    def _says_something(self) -> Rule:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("a rule needs at least one condition")
        return self


class _Ruled(BaseModel):
    """Something that events match by rules (a stage, a pain point)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[Rule, ...]

    # Emptiness checked here, not with min_length: pydantic would also report an empty tuple
    # after dropping a rule that failed, an error that misleads.
    @field_validator("rules")
    @classmethod
    def _some_rules(cls, value: tuple[Rule, ...]) -> tuple[Rule, ...]:
        if not value:
            raise ValueError("give at least one rule")
        return value


class Stage(_Ruled):
    name: str = Field(min_length=1, max_length=60, pattern=r"^[a-z][a-z0-9_ ]*$")


class PainPoint(_Ruled):
    """A negative signal: an event matching one of the rules; with ``min_count``, only the
    event that makes it the person's ``min_count``-th such event (within ``within_days`` of
    the first of them, when given), e.g. repeated support contacts."""

    name: str = Field(min_length=1, max_length=60)
    min_count: int = Field(1, ge=1, le=100)
    within_days: float | None = Field(None, gt=0, le=3650)


class StageModel(BaseModel):
    """Stages in journey order, and the negative signals the journey map weighs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: tuple[Stage, ...]
    pain_points: tuple[PainPoint, ...] = ()

    @field_validator("stages")
    @classmethod
    def _some_stages(cls, value: tuple[Stage, ...]) -> tuple[Stage, ...]:
        if not value:
            raise ValueError("give at least one stage")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StageModel:
        seen: list[str] = []
        for i, stage in enumerate(self.stages):
            if stage.name in seen:
                raise ValueError(f"stages[{i}]: the name {stage.name!r} is used twice")
            for j, rule in enumerate(stage.rules):
                if rule.after is not None and rule.after not in seen:
                    where = f"stages[{i}].rules[{j}].after"
                    raise ValueError(
                        f"{where}: {rule.after!r} is not a stage listed before "
                        f"{stage.name!r} (earlier stages: {', '.join(seen) or 'none'})"
                    )
            seen.append(stage.name)
        names = [p.name for p in self.pain_points]
        for i, pain in enumerate(self.pain_points):
            if names.count(pain.name) > 1:
                raise ValueError(f"pain_points[{i}]: the name {pain.name!r} is used twice")
            for j, rule in enumerate(pain.rules):
                if rule.after is not None and rule.after not in seen:
                    raise ValueError(
                        f"pain_points[{i}].rules[{j}].after: {rule.after!r} is not a stage"
                    )
        return self

    @property
    def names(self) -> list[str]:
        return [stage.name for stage in self.stages]

    def fingerprint(self) -> str:
        """Names the stage rules: the journey facts derived with other rules are stale.
        (Pain points are weighed at query time and do not count.)"""
        stages = json.dumps([s.model_dump(mode="json") for s in self.stages], sort_keys=True)
        return hashlib.sha256(stages.encode()).hexdigest()[:16]


class StageModelError(ValueError):
    """A stage model file is not valid; the message names the place and the reason."""


def default_model_text() -> str:
    return resources.files("touchpoints.journeys").joinpath("default_stages.yaml").read_text()


def load_model(path: Path | None = None) -> StageModel:
    """The model in ``path`` (YAML), or the default one, validated."""
    where = str(path) if path is not None else "the default stage model"
    try:
        text = path.read_text(encoding="utf-8") if path is not None else default_model_text()
    except OSError as exc:
        raise StageModelError(f"cannot read the stage model {where}: {exc.strerror}") from None
    return parsed(text, StageModel, where, StageModelError, "a mapping with 'stages'")
