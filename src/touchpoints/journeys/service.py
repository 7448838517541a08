"""The journeys of one warehouse: what the API, the CLI and the pages call.

Queries are built with Ibis (imported on first use, so commands that need no analytics start
as fast as before) and run on the warehouse's DuckDB; the journey tables are brought up to
date with the identity map before each analysis. Every method returns JSON-ready dicts and
raises :class:`JourneyQueryError` (with the parameter and the reason) for a question that
cannot be answered as asked.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from touchpoints.journeys.model import StageModel
from touchpoints.warehouse import Warehouse

if TYPE_CHECKING:
    from touchpoints.journeys.source import Source


class JourneyQueryError(ValueError):
    """The question is not valid; the message names the parameter and the reason."""


def _asked(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an analysis; its own validation errors become JourneyQueryError."""
    from touchpoints.journeys.attribution import AttributionError
    from touchpoints.journeys.channel_mix import ChannelMixError
    from touchpoints.journeys.paths import PathsError
    from touchpoints.journeys.spec import AnalysisError

    try:
        return call(*args, **kwargs)
    except (AnalysisError, AttributionError, ChannelMixError, PathsError) as exc:
        raise JourneyQueryError(str(exc)) from None


class Journeys:
    def __init__(self, warehouse: Warehouse, model: StageModel) -> None:
        self.warehouse = warehouse
        self.model = model

    def source(self) -> Source:
        """The journey tables, caught up with the events the identity map has applied."""
        from touchpoints.journeys.source import duckdb_source
        from touchpoints.journeys.store import refresh

        refresh(self.warehouse, self.model)
        return duckdb_source(self.warehouse, self.model)

    # -- stages ----------------------------------------------------------------------------
    def stages(self) -> list[dict[str, Any]]:
        """Per stage: persons in it now, and persons who ever entered it."""
        from touchpoints.journeys.stages import stage_distribution

        return [asdict(count) for count in stage_distribution(self.source(), self.model)]

    def stage_history(self, person: int) -> list[dict[str, Any]]:
        """The stages one person entered, in journey order."""
        from touchpoints.journeys.stages import stage_history

        return stage_history(self.source(), self.model, person)

    # -- analyses --------------------------------------------------------------------------
    def journey_map(
        self,
        top: int = 5,
        collapse_repeats: bool = True,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        channel: str | None = None,
        age_group: str | None = None,
        segment: str | None = None,
    ) -> dict[str, Any]:
        """Per stage: reach, conversion, time to move on, drop-off, top channels and
        touchpoints; pain points; stage and channel transitions (docs/journeys.md); with
        ``since``/``until``, of what happened in that range; with ``channel``, ``age_group``
        (a band of the channel mix, or ``unknown``) and ``segment`` (a trait's latest value,
        ``key=value``), of those persons only."""
        from touchpoints.config import CHANNELS
        from touchpoints.journeys.journey_map import journey_map, persons_who
        from touchpoints.journeys.spec import DateRange, validated

        if not 1 <= top <= 50:
            raise JourneyQueryError(f"top: give 1 to 50, not {top}")
        if channel is not None and channel not in CHANNELS:
            raise JourneyQueryError(
                f"channel: {channel!r} is not a channel; give one of {', '.join(CHANNELS)}"
            )
        period = _asked(validated, DateRange, {"since": since, "until": until})
        source = self.source()
        persons = _asked(
            persons_who,
            source,
            channel=channel,
            age_group=age_group,
            segment=segment,
            period=period,
        )
        result = journey_map(
            source,
            self.model,
            top=top,
            collapse_repeats=collapse_repeats,
            since=period.since,
            until=period.until,
            persons=persons,
        )
        return result.to_dict()

    def funnel(self, spec: dict[str, Any], compare_units: bool = False) -> dict[str, Any]:
        """A funnel (``FunnelSpec`` fields); with ``compare_units``, per person and per
        device side by side."""
        from touchpoints.journeys.funnels import funnel, funnel_by_unit, funnel_spec

        checked = _asked(funnel_spec, spec)
        if compare_units:
            both = _asked(funnel_by_unit, self.source(), checked)
            return {unit: asdict(result) for unit, result in both.items()}
        return asdict(_asked(funnel, self.source(), checked))

    def drop_offs(
        self, spec: dict[str, Any], step: int, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        """The units that reached ``step`` of the funnel and not the next one."""
        from touchpoints.journeys.funnels import drop_offs, funnel_spec

        checked = _asked(funnel_spec, spec)
        return asdict(_asked(drop_offs, self.source(), checked, step, limit, offset))

    def retention(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Cohorts by first event week or month, and who came back (``RetentionSpec``)."""
        from touchpoints.journeys.retention import retention, retention_spec

        checked = _asked(retention_spec, spec)
        return asdict(_asked(retention, self.source(), checked))

    def paths(self, **params: Any) -> dict[str, Any]:
        """The most frequent paths after a start or before an end event (``top_paths``)."""
        from touchpoints.journeys.paths import top_paths

        return _asked(top_paths, self.source(), **params).as_dict()

    def variants(self, limit: int = 20) -> dict[str, Any]:
        """Journey variants: the distinct stage sequences and how many people follow each."""
        from touchpoints.journeys.paths import journey_variants

        return _asked(journey_variants, self.source(), self.model, limit=limit).as_dict()

    def channel_mix(
        self, bands: list[str] | None = None, as_of: date | None = None
    ) -> dict[str, Any]:
        """Per age band: the share of people using each channel and of contacts per channel."""
        from touchpoints.journeys.channel_mix import DEFAULT_BANDS, channel_mix

        mix = _asked(channel_mix, self.source(), bands=bands or DEFAULT_BANDS, as_of=as_of)
        return mix.as_dict()

    def attribution(self, **params: Any) -> dict[str, Any]:
        """Conversions credited to channels or campaigns under six models (``attribute``)."""
        from touchpoints.journeys.attribution import attribute

        return _asked(attribute, self.source(), **params).as_dict()
