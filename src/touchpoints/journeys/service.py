"""The journeys of one warehouse: one entry, ``Journeys.run(query)``, for every analysis.

Each kind of question (:mod:`touchpoints.journeys.queries`) has one runner here, found by
the question's type (PostHog's query runners, as a registry): the API's routes, the generic
``POST /v1/journeys/query``, the CLI and the pages all come through :meth:`Journeys.run`, so
an analysis is written once. Runners bring the journey tables up to date with the identity
map first (:meth:`Journeys.source`).

An answer is kept (:class:`AnswerCache`, the last 64) under the question, the stage model,
today's date (ages, "as of today") and the journey tables' version: a refresh that changes anything,
an erasure or a retention run moves the version (``store.version``), so the same question on
the same tables is answered from memory, and any change computes it again. A running server
answers the questions asked in the last minutes again after each refresh that changed the
tables (:meth:`Journeys.keep_current`), so an analyst who comes back to a page finds it
ready. Questions about one person (their stage history) are not kept.

Queries are built with Ibis (imported on first use, so commands that need no analytics start
fast) and run on the warehouse's DuckDB. A question that cannot be answered as asked raises
:class:`AnalysisError` (an :class:`~touchpoints.errors.InvalidRequest`) naming the parameter
and the reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel

from touchpoints.journeys.model import StageModel
from touchpoints.journeys.queries import (
    Answers as Asks,
)
from touchpoints.journeys.queries import (
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

log = logging.getLogger("touchpoints.journeys")

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


# Questions about one person: cheap, and not worth keeping a person's answer in memory.
_NOT_KEPT: tuple[type[BaseModel], ...] = (StageHistoryQuery,)


class AnswerCache:
    """The answers of recent questions on the journey tables as they are now (one state:
    when it moves on, every answer kept for the one before is dropped, and an answer computed
    for a state that has passed is not kept), and when each question was last asked (for
    :meth:`Journeys.keep_current`). Answers can list persons: an erasure drops them all."""

    SIZE = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: tuple[Any, ...] | None = None
        self._kept: OrderedDict[tuple[Any, ...], BaseModel] = OrderedDict()
        self._asked: OrderedDict[tuple[Any, ...], tuple[BaseModel, float]] = OrderedDict()

    def get(self, question: tuple[Any, ...], state: tuple[Any, ...]) -> BaseModel | None:
        """The answer kept for ``question`` in ``state`` (its first item the tables'
        version, which only grows): a newer state drops what was kept; an older one, read
        by a question that was already under way, leaves it."""
        with self._lock:
            if state != self._state:
                if self._state is None or state[0] >= self._state[0]:
                    self._kept.clear()
                    self._state = state
                return None
            answer = self._kept.get(question)
            if answer is not None:
                self._kept.move_to_end(question)
            return answer

    def put(self, question: tuple[Any, ...], state: tuple[Any, ...], answer: BaseModel) -> None:
        with self._lock:
            if state != self._state:
                return  # the tables changed while it was computed
            self._kept[question] = answer
            while len(self._kept) > self.SIZE:
                self._kept.popitem(last=False)

    def asked(self, question: tuple[Any, ...], query: BaseModel) -> None:
        with self._lock:
            self._asked[question] = (query, time.monotonic())
            self._asked.move_to_end(question)
            while len(self._asked) > self.SIZE:
                self._asked.popitem(last=False)

    def recent(self, seconds: float, most: int) -> list[BaseModel]:
        """The questions asked in the last ``seconds``, the latest first, at most ``most``."""
        since = time.monotonic() - seconds
        with self._lock:
            found = [query for query, at in reversed(self._asked.values()) if at >= since]
        return found[:most]

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)

    def clear(self) -> None:
        """Every answer dropped (the questions asked are remembered)."""
        with self._lock:
            self._kept.clear()


class Journeys:
    # What a running server answers again after a refresh that changed the tables: the
    # questions of the last quarter of an hour, at most eight (at 10 million events a
    # question takes about a second of the server's CPU: eight a minute at most).
    WARM_SECONDS = 15 * 60
    WARM_MOST = 8

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
        self.answers = AnswerCache()
        # Set on a thread while a runner computes an answer that run() has just brought the
        # tables up to date for: its source needs no second refresh.
        self._fresh = threading.local()

    def run(self, query: Asks[R]) -> R:
        """The answer to ``query``, by the runner of its kind: from memory when the same
        question was answered on the tables as they are now (see the module's docstring)."""
        runner = _RUNNERS.get(cast(type[BaseModel], type(query)))
        if runner is None:
            raise TypeError(f"no journey analysis answers {type(query).__name__}")
        asked = cast(BaseModel, query)
        if isinstance(asked, _NOT_KEPT):
            return runner(self, asked)  # type: ignore[return-value]
        question = self._question(asked)
        self.answers.asked(question, asked)
        return self._answer(runner, asked, question)  # type: ignore[return-value]

    def _question(self, query: BaseModel) -> tuple[Any, ...]:
        return (type(query).__name__, query.model_dump_json(), self.model.fingerprint())

    def _answer(self, runner: Runner, query: BaseModel, question: tuple[Any, ...]) -> BaseModel:
        # The state is read before the answer is computed: a change made while it is being
        # computed moves the version, and the answer is kept under the one before.
        self.refresh()
        from touchpoints.journeys.store import state as tables

        state = (*tables(self.warehouse), self.consent, date.today())
        kept = self.answers.get(question, state)
        if kept is None:
            self._fresh.now = True
            try:
                kept = runner(self, query)
            finally:
                self._fresh.now = False
            self.answers.put(question, state, kept)
        return kept.model_copy(deep=True)  # the caller's to change

    def keep_current(self) -> Refreshed:
        """The journey tables brought up to date and, when that changed them, the questions
        asked recently answered again, so the next ask finds them ready (a running server's
        journeys job)."""
        done = self.refresh()
        if done.events or done.persons or done.full:
            for query in self.answers.recent(self.WARM_SECONDS, self.WARM_MOST):
                runner = _RUNNERS[type(query)]
                try:
                    self._answer(runner, query, self._question(query))
                except Exception:  # noqa: BLE001 - a question that fails now fails when asked
                    log.debug("a recent question could not be answered again", exc_info=True)
        return done

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

        if not getattr(self._fresh, "now", False):
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
