"""The questions the journey analyses answer: one typed, validated model per question.

Each query names the model of its answer (``Answers[FunnelResult]``), so
``Journeys.run(query)`` is typed end to end, as PostHog's query runners are. The API takes
them as query parameters or JSON bodies (``/openapi.json`` documents every field and bound),
and ``POST /v1/journeys/query`` takes any of them by its ``kind``; the CLI and the pages build
them too, so a question is validated in one place whichever face asks it. A mistake is an
:class:`~touchpoints.journeys.spec.AnalysisError` naming the place and the reason
(``steps[1].event: give an event name``). Nothing here imports Ibis.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from touchpoints.channels import CHANNELS
from touchpoints.journeys.ages import DEFAULT_BANDS, BandError, parse_bands
from touchpoints.journeys.model import Rule
from touchpoints.journeys.results import (
    Attribution,
    ChannelMix,
    DropOffPage,
    FunnelComparison,
    FunnelResult,
    JourneyMap,
    PathReport,
    RetentionResult,
    StageDistribution,
    StageHistory,
    VariantReport,
)
from touchpoints.journeys.spec import DateRange, utc

R = TypeVar("R", bound=BaseModel)

MAX_STEPS = 20
MAX_PATH_DEPTH = 20
BREAKDOWNS = ("channel", "device_type", "age_group")
STEP_KINDS = ("event", "channel")
ATTRIBUTION_KEYS = ("channel", "campaign")
# What an attribution asks unless told otherwise: the null paths' moves of this question are
# kept with the journey facts (journeys.attribution.kept_null_moves).
ATTRIBUTION_CONVERSION = "Order Completed"
ATTRIBUTION_LOOKBACK_DAYS = 30
# Offsets past this are no page anyone can reach; larger numbers overflow the engines' BIGINT.
MAX_OFFSET = 1_000_000_000


class Answers(Generic[R]):
    """Marks a query with the model of its answer: ``Journeys.run`` returns that type."""


_FROZEN = ConfigDict(extra="forbid", frozen=True)


# -- stages -----------------------------------------------------------------------------------
class StagesQuery(BaseModel, Answers[StageDistribution]):
    """Per stage of the model: persons in it now (their furthest stage) and ever entered."""

    model_config = _FROZEN
    kind: Literal["stages"] = "stages"


class StageHistoryQuery(BaseModel, Answers[StageHistory]):
    """The stages one person entered, with when and how."""

    model_config = _FROZEN
    kind: Literal["stage_history"] = "stage_history"
    person: str = Field(min_length=1, description="Any identifier (TYPE:VALUE) or person:N")


# -- the journey map -------------------------------------------------------------------------
class JourneyMapQuery(DateRange, Answers[JourneyMap]):
    """Per stage: reach, conversion, time to move on, drop-off, top channels and touchpoints;
    pain points; stage and channel transitions. ``since`` (inclusive) and ``until``
    (exclusive): of what happened in that range; ``channel``: of the persons who used it;
    ``age_group``: of the persons in that band (the channel mix's default bands, or
    ``unknown``); ``segment``: of the persons whose latest value of a trait is the one given
    (``key=value``, e.g. city=Hamburg)."""

    kind: Literal["journey_map"] = "journey_map"
    top: int = Field(5, ge=1, le=50, description="Channels and touchpoints per stage")
    collapse: bool = Field(True, description="A run of events on one channel is one visit")
    channel: str | None = None
    age_group: str | None = None
    segment: str | None = None

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str | None) -> str | None:
        if value is not None and value not in CHANNELS:
            raise ValueError(f"{value!r} is not a channel; give one of {', '.join(CHANNELS)}")
        return value


# -- funnels ----------------------------------------------------------------------------------
class FunnelStep(BaseModel):
    """An event name, and optionally property filters in the stage model's form: a value to
    equal, or number tests ``{gte, lte, gt, lt}``."""

    model_config = _FROZEN

    event: str | None = Field(default=None, validate_default=True)
    properties: dict[str, Any] | None = None

    @field_validator("event")
    @classmethod
    def _named(cls, value: str | None) -> str:
        if value is None or not value.strip():
            raise ValueError("give an event name")
        return value

    @field_validator("properties")
    @classmethod
    def _property_tests(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            return Rule.model_validate({"event": "x", "properties": value}).properties
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None

    def rule(self) -> Rule:
        # Already validated: construct, or the NumberTests would be checked again as dicts.
        assert self.event is not None  # the validator refuses a step without one
        return Rule.model_construct(event=(self.event,), properties=self.properties)


class FunnelSpec(DateRange):
    """What to count. ``window``: a duration (seconds, or ISO 8601 such as ``P14D``);
    ``since``/``until``: entries in that range."""

    steps: tuple[FunnelStep, ...]
    window: timedelta = timedelta(days=14)
    order: Literal["relaxed", "strict"] = "relaxed"
    unit: Literal["person", "device"] = "person"
    breakdown: str | None = None
    age_bands: tuple[str, ...] = DEFAULT_BANDS  # as in the channel mix: "18-24", …, "65+"

    @field_validator("steps")
    @classmethod
    def _enough(cls, value: tuple[FunnelStep, ...]) -> tuple[FunnelStep, ...]:
        if len(value) < 2:
            raise ValueError("give at least two steps")
        if len(value) > MAX_STEPS:
            raise ValueError(f"give at most {MAX_STEPS} steps")
        return value

    @field_validator("window")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("give a positive window, e.g. 'P14D' or 86400 (seconds)")
        return value

    @field_validator("breakdown")
    @classmethod
    def _known_breakdown(cls, value: str | None) -> str | None:
        if value is None or value in BREAKDOWNS:
            return value
        if value.startswith("trait:") and value.removeprefix("trait:").strip():
            return value
        raise ValueError(
            f"{value!r} is not a breakdown; use channel, device_type, age_group or trait:<key>"
        )

    @field_validator("age_bands")
    @classmethod
    def _bands(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            parse_bands(value)
        except BandError as exc:
            raise ValueError(str(exc)) from None
        return value


class FunnelQuery(FunnelSpec, Answers[FunnelResult]):
    """A funnel: conversion per step, drop-off, time to convert, and a breakdown."""

    kind: Literal["funnel"] = "funnel"


class FunnelComparisonQuery(FunnelSpec, Answers[FunnelComparison]):
    """The funnel per resolved person and per device side by side (``unit`` is ignored)."""

    kind: Literal["funnel_comparison"] = "funnel_comparison"


class DropOffsQuery(BaseModel, Answers[DropOffPage]):
    """The units that reached ``step`` of ``funnel`` and no further, a page at a time."""

    model_config = _FROZEN
    kind: Literal["drop_offs"] = "drop_offs"
    funnel: FunnelSpec
    step: int = Field(ge=1, description="Reached this step, not the next")
    limit: int = Field(50, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)

    @model_validator(mode="after")
    def _step_has_a_next(self) -> DropOffsQuery:
        last = len(self.funnel.steps) - 1
        if self.step > last:
            raise ValueError(f"step: give a step from 1 to {last} (the last step has no drop-off)")
        return self


# -- retention --------------------------------------------------------------------------------
class RetentionSpec(DateRange):
    """``since``/``until``: cohorts by their first start in that range."""

    period: Literal["week", "month"] = "week"
    periods: int = Field(8, ge=1, le=104)  # offsets 0..periods
    start_event: str | None = None  # None: any event
    return_event: str | None = None  # None: any event
    unit: Literal["person", "device"] = "person"
    as_of: datetime | None = None  # None: the latest event

    @field_validator("start_event", "return_event")
    @classmethod
    def _named(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("give an event name, or leave it out for any event")
        return value

    @field_validator("as_of")
    @classmethod
    def _as_of_utc(cls, value: datetime | None) -> datetime | None:
        return utc(value)


class RetentionQuery(RetentionSpec, Answers[RetentionResult]):
    """Cohorts by the week or month units started, and who came back in each period."""

    kind: Literal["retention"] = "retention"


# -- paths ------------------------------------------------------------------------------------
class PathsQuery(BaseModel, Answers[PathReport]):
    """The most frequent paths after each person's first ``start`` event or before their
    first ``end`` event (give one); steps rarer than ``min_share`` are grouped as (other)."""

    model_config = _FROZEN
    kind: Literal["paths"] = "paths"
    start: str | None = None
    end: str | None = None
    depth: int = Field(5, ge=1, le=MAX_PATH_DEPTH)
    step: Literal["event", "channel"] = "event"
    min_share: float = Field(0.05, ge=0, lt=1)
    collapse: bool = Field(True, description="A run of the same step counts once")
    limit: int = Field(20, ge=1, le=200)

    @model_validator(mode="after")
    def _one_anchor(self) -> PathsQuery:
        if (self.start is None) == (self.end is None):
            raise ValueError("give exactly one of start (paths after it) or end (paths before it)")
        return self


class VariantsQuery(BaseModel, Answers[VariantReport]):
    """The distinct stage sequences people follow, most common first."""

    model_config = _FROZEN
    kind: Literal["variants"] = "variants"
    limit: int = Field(20, ge=1, le=200)


# -- channel mix ------------------------------------------------------------------------------
class ChannelMixQuery(BaseModel, Answers[ChannelMix]):
    """Per age band: the share of its people using each channel and the share of its
    contacts on each channel."""

    model_config = _FROZEN
    kind: Literal["channel_mix"] = "channel_mix"
    bands: tuple[str, ...] = Field(DEFAULT_BANDS, description="e.g. 18-24 (repeat), 65+")
    as_of: date | None = Field(None, description="Ages on this day (default today)")

    @model_validator(mode="after")
    def _bands(self) -> ChannelMixQuery:
        try:  # its messages name the place themselves ("bands[2]: …")
            parse_bands(self.bands)
        except BandError as exc:
            raise ValueError(str(exc)) from None
        return self


# -- attribution ------------------------------------------------------------------------------
class AttributionQuery(BaseModel, Answers[Attribution]):
    """Conversions and their value credited to channels or campaigns: first touch, last
    touch, linear, time decay, position based, and Markov removal effect."""

    model_config = _FROZEN
    kind: Literal["attribution"] = "attribution"
    conversion: str = Field(ATTRIBUTION_CONVERSION, min_length=1)
    by: Literal["channel", "campaign"] = "channel"
    lookback_days: float = Field(ATTRIBUTION_LOOKBACK_DAYS, gt=0, le=3650)
    value_property: str | None = "revenue"
    half_life_days: float = Field(7, gt=0, le=3650)


JourneyQuery = Annotated[
    StagesQuery
    | StageHistoryQuery
    | JourneyMapQuery
    | FunnelQuery
    | FunnelComparisonQuery
    | DropOffsQuery
    | RetentionQuery
    | PathsQuery
    | VariantsQuery
    | ChannelMixQuery
    | AttributionQuery,
    Field(discriminator="kind"),
]
