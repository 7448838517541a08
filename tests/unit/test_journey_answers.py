"""Answers kept by ``Journeys.run``: the same question on unchanged journey tables is answered
from memory; new events, an erasure (even of a person nobody else shares identifiers with) or
a retention run compute it again; a running server's journeys job answers the questions asked
recently again after a change, so the next ask finds the new answer ready."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_identity_rebuild import send
from test_journey_funnels import ORDER, QUOTE, SPEC, VIEW, WEB, ev, journeys

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.journeys import service
from touchpoints.journeys.queries import FunnelQuery, StageHistoryQuery, StagesQuery

QUESTION = FunnelQuery.model_validate(SPEC)


@pytest.fixture
def tp(tmp_path: Path) -> Iterator[Touchpoints]:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        yield tp


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of question computed (not answered from memory), in order."""
    seen: list[str] = []
    for kind, runner in list(service._RUNNERS.items()):

        def counting(journeys: Any, query: Any, runner: Callable[..., Any] = runner) -> Any:
            seen.append(type(query).__name__)
            return runner(journeys, query)

        monkeypatch.setitem(service._RUNNERS, kind, counting)
    return seen


def test_the_same_question_on_unchanged_tables_is_answered_from_memory(
    tp: Touchpoints, computed: list[str]
) -> None:
    first = tp.journeys.run(QUESTION)
    # By hand (test_journey_funnels): seven viewed, four asked for a quote in time.
    assert [s.units for s in first.steps[:2]] == [7, 4]
    again = tp.journeys.run(FunnelQuery.model_validate(SPEC))  # an equal question
    assert computed == ["FunnelQuery"]
    assert again == first
    # Answers are frozen, their lists are not: each caller gets its own copy.
    again.steps.clear()
    assert tp.journeys.run(QUESTION).steps[0].units == 7
    # Another question is its own.
    tp.journeys.run(FunnelQuery.model_validate({**SPEC, "window": "P1D"}))
    assert computed == ["FunnelQuery", "FunnelQuery"]
    assert len(tp.journeys.answers) == 2


def test_a_computed_answer_refreshes_the_tables_once(
    tp: Touchpoints, computed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from touchpoints.journeys import store

    refreshes: list[str] = []
    real = store.refresh

    def counting(*args: Any, **kwargs: Any) -> Any:
        refreshes.append("refresh")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "refresh", counting)
    tp.journeys.run(QUESTION)  # computed: run() refreshes, its runner's source does not again
    assert computed == ["FunnelQuery"] and len(refreshes) == 1
    tp.journeys.run(QUESTION)  # kept: the refresh that tells whether the tables changed
    assert computed == ["FunnelQuery"] and len(refreshes) == 2
    tp.journeys.run(StageHistoryQuery(person="anonymous_id:fay"))  # not kept: its own
    assert len(refreshes) == 3
    # Outside run(), a source is brought up to date as before.
    tp.journeys.source()
    assert len(refreshes) == 4


def test_new_events_compute_the_answer_again(tp: Touchpoints, computed: list[str]) -> None:
    assert tp.journeys.run(QUESTION).steps[0].units == 7
    tp.journeys.run(StagesQuery())
    assert len(tp.journeys.answers) == 2
    send(tp, [ev("hal", "08T10:00:00", "h1", VIEW, context=WEB)])
    assert tp.journeys.run(QUESTION).steps[0].units == 8
    assert computed == ["FunnelQuery", "StagesQuery", "FunnelQuery"]
    # The answers of the tables as they were are gone, not only passed over.
    assert len(tp.journeys.answers) == 1


def test_an_erased_person_leaves_the_kept_answers(tp: Touchpoints, computed: list[str]) -> None:
    # Fay (one anonymous cookie, no identifier shared with anyone) viewed and ordered.
    before = tp.journeys.run(QUESTION)
    assert [s.units for s in before.steps] == [7, 4, 3]
    assert len(tp.journeys.answers) == 1
    tp.privacy.erase("anonymous_id:fay")
    assert len(tp.journeys.answers) == 0  # dropped at once, not only passed over
    after = tp.journeys.run(QUESTION)
    assert after.steps[0].units == 6
    assert [s.units for s in after.steps[1:]] == [4, 3]  # she never asked for a quote
    assert computed == ["FunnelQuery", "FunnelQuery"]


def test_a_retention_run_moves_the_answers_on(tp: Touchpoints, computed: list[str]) -> None:
    assert tp.journeys.run(StagesQuery()).stages[0].reached > 0
    from touchpoints.journeys.store import derive_again, version

    before = version(tp.warehouse)
    derive_again(tp.warehouse, [])  # what retention and erasure call before deleting rows
    assert version(tp.warehouse) > before
    tp.journeys.run(StagesQuery())
    assert computed == ["StagesQuery", "StagesQuery"]


def test_a_question_under_way_with_an_older_state_leaves_the_newer_answers() -> None:
    from touchpoints.journeys.queries import StagesQuery as Question
    from touchpoints.journeys.service import AnswerCache

    cache = AnswerCache()
    answer: Any = Question()  # any model stands for an answer here
    assert cache.get(("q",), (1, 10)) is None
    cache.put(("q",), (1, 10), answer)
    assert cache.get(("q",), (1, 10)) is answer
    # A question that read version 0 before the refresh finds nothing and changes nothing,
    # and its answer is not kept.
    assert cache.get(("q",), (0, 10)) is None
    cache.put(("q",), (0, 10), Question())
    assert cache.get(("q",), (1, 10)) is answer
    # A newer state (a deletion moved the count, or the version) drops the answer.
    assert cache.get(("q",), (1, 9)) is None
    assert len(cache) == 0
    cache.put(("q",), (1, 10), answer)  # computed for the state that passed: not kept
    assert len(cache) == 0


def test_a_persons_stage_history_is_not_kept(tp: Touchpoints, computed: list[str]) -> None:
    for _ in range(2):
        tp.journeys.run(StageHistoryQuery(person="anonymous_id:fay"))
    assert computed == ["StageHistoryQuery", "StageHistoryQuery"]


def test_the_servers_job_answers_recent_questions_again_after_a_change(
    tp: Touchpoints, computed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tp.journeys.run(QUESTION)
    tp.journeys.run(StagesQuery())
    assert tp.journeys.keep_current().events == 0  # nothing new: nothing answered again
    assert computed == ["FunnelQuery", "StagesQuery"]

    send(
        tp,
        [
            ev("ida", "09T10:00:00", "i1", VIEW, context=WEB),
            ev("ida", "09T11:00:00", "i2", QUOTE, context=WEB),
            ev("ida", "09T12:00:00", "i3", ORDER, context=WEB),
        ],
    )
    done = tp.journeys.keep_current()
    assert done.events == 3
    # Both answered again in the job (the latest asked first), none when asked next.
    assert computed == ["FunnelQuery", "StagesQuery", "StagesQuery", "FunnelQuery"]
    assert [s.units for s in tp.journeys.run(QUESTION).steps] == [8, 5, 4]
    assert len(computed) == 4

    # A question not asked in the last quarter of an hour is left until it is asked.
    monkeypatch.setattr(tp.journeys, "WARM_SECONDS", 0)
    send(tp, [ev("jan", "10T10:00:00", "j1", VIEW, context=WEB)])
    assert tp.journeys.keep_current().events == 1
    assert len(computed) == 4
    assert tp.journeys.run(QUESTION).steps[0].units == 9
    assert computed[-1] == "FunnelQuery"
