"""The answers of the journey analyses: one typed model per answer.

The API returns them as they are (so ``/openapi.json`` documents every field), the CLI reads
them back from JSON into the same models, and the pages read their attributes. Times are
:data:`~touchpoints.times.UtcTime` (``datetime`` in Python, ISO 8601 UTC with milliseconds in
JSON); shares are fractions (0..1). Nothing here imports Ibis, so a command that only shows an
answer starts fast.
"""

from __future__ import annotations

from datetime import date

from pydantic import Field, computed_field

from touchpoints.answers import Answer
from touchpoints.times import UtcTime


# -- stages -----------------------------------------------------------------------------------
class StageCount(Answer):
    stage: str
    current: int = Field(description="Persons whose furthest stage this is")
    reached: int = Field(description="Persons who entered it (whatever came after)")


class StageDistribution(Answer):
    stages: list[StageCount] = Field(description="Per stage of the model, in journey order")


class StageEntry(Answer):
    stage: str
    entered_at: UtcTime
    channel: str | None
    event: str | None = Field(description="The event (or page or screen name) that entered it")


class StageHistory(Answer):
    person: str = Field(description="person:N")
    current: str | None = Field(description="The furthest stage entered; None: no stage yet")
    stages: list[StageEntry]


# -- the journey map -------------------------------------------------------------------------
class ChannelReach(Answer):
    channel: str | None
    persons: int
    events: int


class TouchpointReach(Answer):
    event: str | None = Field(description="The event, page or screen name")
    persons: int
    events: int


class StageStep(Answer):
    stage: str
    reached: int
    went_on: int | None = Field(description="Entered any later stage after this one")
    next_stage: int | None = Field(description="Entered the very next stage after this one")
    dropped: int | None = Field(description="reached - went_on")
    conversion: float | None = Field(description="went_on / reached")
    median_seconds: float | None = Field(description="Time to move on, of those who went on")
    p90_seconds: float | None
    top_channels: list[ChannelReach] = Field(default_factory=list)
    top_touchpoints: list[TouchpointReach] = Field(default_factory=list)


class PainPointInStage(Answer):
    """Persons with a signal in one stage beside the other persons who reached it."""

    stage: str
    persons: int
    dropped: int
    drop_rate: float
    others: int
    others_dropped: int
    others_drop_rate: float | None
    relative_risk: float | None


class PainPointStat(Answer):
    name: str
    persons: int = Field(description="Persons with the signal, anywhere in their journey")
    relative_risk: float | None = Field(
        description="Of dropping out, pooled over the stages (Mantel-Haenszel)"
    )
    by_stage: list[PainPointInStage] = Field(default_factory=list)


class StageTransition(Answer):
    source: str
    target: str
    persons: int


class ChannelTransition(Answer):
    source: str | None
    target: str | None
    count: int


class JourneyMap(Answer):
    stages: list[StageStep]
    pain_points: list[PainPointStat]
    stage_transitions: list[StageTransition]
    channel_transitions: list[ChannelTransition]


# -- funnels ----------------------------------------------------------------------------------
class StepCount(Answer):
    step: int = Field(description="1-based")
    event: str
    units: int = Field(description="Units that reached this step")
    conversion: float | None = Field(description="Share of step 1 (four decimals)")
    from_previous: float | None = Field(description="Share of the previous step")
    dropped: int = Field(description="Reached the previous step but not this one")
    median_seconds: float | None = Field(description="Median time from step 1 to this step")


class Bucket(Answer):
    label: str
    lower_seconds: int
    upper_seconds: int | None = Field(description="None: no upper bound")
    units: int


class TimeToConvert(Answer):
    """From step 1 to the last step, for the units that reached it."""

    median_seconds: float | None
    histogram: list[Bucket]


class FunnelGroup(Answer):
    value: str | None = Field(description="The breakdown value; None: units without one")
    steps: list[StepCount]
    time_to_convert: TimeToConvert


class FunnelResult(Answer):
    unit: str
    order: str
    window_seconds: float
    steps: list[StepCount]
    time_to_convert: TimeToConvert
    breakdown: str | None = None
    groups: list[FunnelGroup] = Field(default_factory=list)


class FunnelComparison(Answer):
    """One funnel counted per resolved person and per device, side by side."""

    person: FunnelResult
    device: FunnelResult


class DropOff(Answer):
    person: int
    device: int | None = Field(default=None, description="Per device only: the identifier's id")
    identifier: str | None = Field(default=None, description="Per device only: TYPE:VALUE")
    entered_at: UtcTime
    reached_at: UtcTime


class DropOffPage(Answer):
    step: int = Field(description="Units that reached this step and not the next")
    total: int
    withheld: int = Field(
        default=0,
        description="Of the total, units not listed: their person denied the analyses' "
        "consent category (consent_analyses = aggregate)",
    )
    units: list[DropOff]


# -- retention --------------------------------------------------------------------------------
class Cohort(Answer):
    cohort: date = Field(description="The first day of the week or month")
    size: int
    returned: list[int | None] = Field(description="Per offset 0..periods; None: not known yet")
    share: list[float | None] = Field(description="returned / size, four decimals")


class RetentionResult(Answer):
    period: str
    periods: int
    unit: str
    start_event: str | None
    return_event: str | None
    as_of: UtcTime | None = Field(description="None when there are no events")
    cohorts: list[Cohort]


# -- paths ------------------------------------------------------------------------------------
class PathCount(Answer):
    steps: list[str]
    people: int
    share: float = Field(description="Of the people with the anchor event (or with stages)")


class PathReport(Answer):
    anchor: str = Field(description="start or end")
    event: str
    depth: int
    step: str
    people: int = Field(description="People with the anchor event")
    distinct_paths: int
    other_people: int = Field(description="People on paths past the limit")
    paths: list[PathCount] = Field(default_factory=list)


class VariantReport(Answer):
    people: int = Field(description="People who entered at least one stage")
    distinct_variants: int
    other_people: int = Field(description="People on variants past the limit")
    variants: list[PathCount] = Field(default_factory=list)


# -- channel mix ------------------------------------------------------------------------------
MEASURES = ("people", "people_share", "contacts", "contact_share")


class Cell(Answer):
    band: str
    channel: str
    people: int = Field(description="People of the band with a contact on the channel")
    people_share: float
    contacts: int
    contact_share: float


class ChannelMix(Answer):
    as_of: date = Field(description="The day the ages are computed for")
    bands: list[str] = Field(description="Row order: the bands, then unknown")
    channels: list[str] = Field(description="Column order: by people reached, then name")
    people: dict[str, int] = Field(description="Per band: people with a contact")
    contacts: dict[str, int] = Field(description="Per band: contacts")
    cells: list[Cell] = Field(default_factory=list, description="Every band × channel")

    def matrix(self, measure: str = "people_share") -> list[list[float]]:
        """One row per band, one column per channel: the values a heat map draws."""
        if measure not in MEASURES:
            raise ValueError(f"measure: {measure!r} is not one of {', '.join(MEASURES)}")
        values = {(c.band, c.channel): getattr(c, measure) for c in self.cells}
        return [[values[(b, ch)] for ch in self.channels] for b in self.bands]

    @computed_field(description="Per band (rows) and channel (columns): share of its people")
    def people_share(self) -> list[list[float]]:
        return self.matrix("people_share")

    @computed_field(description="Per band (rows) and channel (columns): share of its contacts")
    def contact_share(self) -> list[list[float]]:
        return self.matrix("contact_share")


# -- attribution ------------------------------------------------------------------------------
class Credit(Answer):
    """What one key earned: conversions and value per model, and its removal effect."""

    key: str
    touchpoints: int = Field(description="Touches on converting paths")
    conversions: dict[str, float] = Field(description="Per model: credited conversions")
    value: dict[str, float] = Field(description="Per model: credited value")
    removal_effect: float = Field(
        description="Markov: share of the conversion probability lost without the key"
    )


class Attribution(Answer):
    by: str
    conversion: str
    lookback_days: float
    conversions: int = Field(description="Every conversion event")
    value: float
    unattributed_conversions: int = Field(description="Without a touchpoint in the window")
    unattributed_value: float
    converting_paths: int
    null_paths: int
    credits: list[Credit] = Field(default_factory=list)
