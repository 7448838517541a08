"""The journeys of one warehouse: one entry, ``Journeys.run(query)``, for every analysis.

Each kind of question (:mod:`touchpoints.journeys.queries`) has one runner here, found by
the question's type (PostHog's query runners, as a registry): the API's routes, the generic
``POST /v1/journeys/query``, the CLI and the pages all come through :meth:`Journeys.run`, so
an analysis is written once. Runners bring the journey tables up to date with the identity
map first (:meth:`Journeys.source`). Queries are built with Ibis (imported on first use, so
commands that need no analytics start fast) and run on the warehouse's DuckDB. A question
that cannot be answered as asked raises :class:`AnalysisError` (an
:class:`~touchpoints.errors.InvalidRequest`) naming the parameter and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel

from touchpoints.journeys.model import StageModel
from touchpoints.journeys.queries import (
    Answers,
    AttributionQuery,
    ChannelMixQuery,
    DropOffsQuery,
    FunnelComparisonQuery,
    FunnelQuery,
    JourneyMapQuery,
    PathsQuery,
    RetentionQuery,
    StageHistoryQuery,
    StagesQuery,
    VariantsQuery,
)
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
from touchpoints.journeys.spec import AnalysisError
from touchpoints.warehouse import Warehouse

if TYPE_CHECKING:
    from touchpoints.journeys.source import Source
    from touchpoints.journeys.store import Refreshed

__all__ = ["AnalysisError", "JourneyQueryError", "Journeys"]

# The name pages and older callers know the error by.
JourneyQueryError = AnalysisError

R = TypeVar("R", bound=BaseModel)
Q = TypeVar("Q", bound=BaseModel)
Runner = Callable[["Journeys", Any], BaseModel]
_RUNNERS: dict[type[BaseModel], Runner] = {}


def runs(kind: type[Q]) -> Callable[[Callable[[Journeys, Q], R]], Callable[[Journeys, Q], R]]:
    """Register the runner of one kind of question."""

    def register(runner: Callable[[Journeys, Q], R]) -> Callable[[Journeys, Q], R]:
        _RUNNERS[kind] = runner
        return runner

    return register


class Journeys:
    def __init__(
        self,
        warehouse: Warehouse,
        model: StageModel,
        resolve: Callable[[str], int] | None = None,
        consent: tuple[str, str] | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.model = model
        # (category, mode): the consent category analyses need, and what becomes of a
        # person who denied it (exclude: left out; aggregate: counted, never listed).
        self.consent = consent
        # Finds the person behind an identifier (TYPE:VALUE or person:N), for questions
        # about one person; raises NotFound or BadRequest.
        self._resolve = resolve

    def run(self, query: Answers[R]) -> R:
        """The answer to ``query``, by the runner of its kind."""
        runner = _RUNNERS.get(cast(type[BaseModel], type(query)))
        if runner is None:
            raise TypeError(f"no journey analysis answers {type(query).__name__}")
        return runner(self, query)  # type: ignore[return-value]

    def source(self) -> Source:
        """The journey tables, caught up with the events the identity map has applied, as
        the analyses may read them (honouring the persons who denied them: ``consent``)."""
        source = self.person_source()
        if self.consent is None:
            return source
        category, mode = self.consent
        return source.respecting(category, mode)

    def refresh(self) -> Refreshed:
        """The journey tables and the facts kept for the stage model brought up to date
        (every analysis does this first; an export of the kept facts too)."""
        from touchpoints.journeys.store import refresh

        return refresh(self.warehouse, self.model)

    def person_source(self) -> Source:
        """The journey tables, everyone in them: for what is asked about one person (their
        stage history on their profile, their export), not for an analysis."""
        from touchpoints.journeys.source import duckdb_source
        from touchpoints.journeys.store import refresh

        refresh(self.warehouse, self.model)
        return duckdb_source(self.warehouse, self.model)

    def kept_stage(self, person: int) -> str | None:
        """The furthest stage ``person`` had entered at the last refresh of the journey
        tables (any analysis, a profile's stages, the server's work): fast, possibly a few
        events behind. The service assistant's routing reads it on a customer's message."""
        from touchpoints.journeys.store import kept_stage

        return kept_stage(self.warehouse, person)

    def person(self, key: str) -> int:
        if self._resolve is None:
            raise TypeError("these journeys cannot look persons up (no resolver given)")
        return self._resolve(key)


# -- the runners ------------------------------------------------------------------------------
@runs(StagesQuery)
def _stages(journeys: Journeys, query: StagesQuery) -> StageDistribution:
    from touchpoints.journeys.stages import stage_distribution

    return StageDistribution(stages=stage_distribution(journeys.source(), journeys.model))


@runs(StageHistoryQuery)
def _stage_history(journeys: Journeys, query: StageHistoryQuery) -> StageHistory:
    from touchpoints.journeys.stages import stage_history

    person = journeys.person(query.person)
    entries = stage_history(journeys.person_source(), journeys.model, person)
    return StageHistory(
        person=f"person:{person}",
        current=entries[-1].stage if entries else None,
        stages=entries,
    )


@runs(JourneyMapQuery)
def _journey_map(journeys: Journeys, query: JourneyMapQuery) -> JourneyMap:
    from touchpoints.journeys.journey_map import journey_map, persons_who

    source = journeys.source()
    persons = persons_who(
        source,
        channel=query.channel,
        age_group=query.age_group,
        segment=query.segment,
        period=query,
    )
    return journey_map(
        source,
        journeys.model,
        top=query.top,
        collapse_repeats=query.collapse,
        since=query.since,
        until=query.until,
        persons=persons,
    )


@runs(FunnelQuery)
def _funnel(journeys: Journeys, query: FunnelQuery) -> FunnelResult:
    from touchpoints.journeys.funnels import funnel

    return funnel(journeys.source(), query)


@runs(FunnelComparisonQuery)
def _funnel_comparison(journeys: Journeys, query: FunnelComparisonQuery) -> FunnelComparison:
    from touchpoints.journeys.funnels import funnel_by_unit

    return funnel_by_unit(journeys.source(), query)


@runs(DropOffsQuery)
def _drop_offs(journeys: Journeys, query: DropOffsQuery) -> DropOffPage:
    from touchpoints.journeys.funnels import drop_off_page

    return drop_off_page(journeys.source(), query)


@runs(RetentionQuery)
def _retention(journeys: Journeys, query: RetentionQuery) -> RetentionResult:
    from touchpoints.journeys.retention import retention

    return retention(journeys.source(), query)


@runs(PathsQuery)
def _paths(journeys: Journeys, query: PathsQuery) -> PathReport:
    from touchpoints.journeys.paths import paths_for

    return paths_for(journeys.source(), query)


@runs(VariantsQuery)
def _variants(journeys: Journeys, query: VariantsQuery) -> VariantReport:
    from touchpoints.journeys.paths import journey_variants

    return journey_variants(journeys.source(), journeys.model, limit=query.limit)


@runs(ChannelMixQuery)
def _channel_mix(journeys: Journeys, query: ChannelMixQuery) -> ChannelMix:
    from touchpoints.journeys.channel_mix import channel_mix_for

    return channel_mix_for(journeys.source(), query)


@runs(AttributionQuery)
def _attribution(journeys: Journeys, query: AttributionQuery) -> Attribution:
    from touchpoints.journeys.attribution import attribution_for

    return attribution_for(journeys.source(), query)
