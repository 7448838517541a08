"""The server's periodic and continuous jobs: started, woken, stopped, failures outlived and
logged without data."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.errors import TouchpointsError
from touchpoints.jobs import ContinuousJob, PeriodicJob

log = logging.getLogger("touchpoints.test-jobs")


def test_a_job_runs_first_then_every_interval_and_stops() -> None:
    calls: list[float] = []
    job = PeriodicJob(
        "tick",
        lambda: calls.append(time.monotonic()),
        lambda _: "ok",
        interval=0.05,
        first=0.01,
        log=log,
    )
    job.start()
    deadline = time.monotonic() + 20
    while job.runs < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    job.stop()
    runs = job.runs
    assert runs >= 3 and len(calls) == runs
    time.sleep(0.2)
    assert job.runs == runs  # stopped: no more turns


def test_first_is_never_later_than_the_interval() -> None:
    job = PeriodicJob("x", lambda: None, lambda _: "", interval=10, first=300, log=log)
    assert job.first == 10


def test_a_failure_is_outlived_and_logged_without_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes = iter([ValueError("jane@example.com is odd"), TouchpointsError("no model yet"), 7])

    def work() -> int:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    job = PeriodicJob(
        "scoring",
        work,
        lambda n: f"{n} scored",
        interval=60,
        first=60,
        log=log,
        refusal_level=logging.INFO,
    )
    with caplog.at_level(logging.INFO, logger=log.name):
        assert job.run_once() is False
        assert job.run_once() is False
        assert job.run_once() is True
    assert (job.runs, job.failures) == (1, 2)
    text = caplog.text
    assert "jane@example.com" not in text  # a library's message may quote the data
    assert "scoring failed (ValueError)" in text
    assert "scoring not done: no model yet" in text
    assert "scoring: 7 scored" in text
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.ERROR, logging.INFO, logging.INFO]


def _until(done: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.01)


def test_a_continuous_job_turns_when_woken_outlives_a_failure_and_stops_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wake = threading.Event()
    turns: list[str] = []
    settled: list[float] = []

    def turn() -> None:
        wake.clear()  # as the live loops do: what comes from now on wakes the next turn
        if not turns:
            turns.append("failed")
            raise ValueError("jane@example.com is odd")
        turns.append("done")

    def settle() -> float:
        settled.append(time.monotonic())
        return 0.0

    job = ContinuousJob(
        "counting",
        turn,
        wake=wake,
        pause=lambda: 300.0,  # nothing but a wake-up brings the next turn in this test
        settle=settle,
        doing="counting",
        retry=0.01,
        log=log,
    )
    with caplog.at_level(logging.INFO, logger=log.name):
        job.start()
        _until(lambda: job.rounds == 1)  # the failure, then the turn after the retry
        assert (job.failures, turns) == (1, ["failed", "done"]) and settled == []
        wake.set()
        _until(lambda: job.rounds == 2)
        _until(lambda: len(settled) == 1)  # woken: it let a burst settle
        started = time.monotonic()
        job.stop()
    assert time.monotonic() - started < 10  # not the pause of 300 s
    assert turns == ["failed", "done", "done"]
    assert "counting failed (ValueError); trying again in 0 s" in caplog.text
    assert "jane@example.com" not in caplog.text  # a library's message may quote the data


def test_a_server_keeps_the_journey_facts_current_without_an_analysis(tmp_path: Path) -> None:
    events = [
        {"type": "page", "anonymousId": f"device-{i % 7}", "name": "Home",
         "messageId": f"m{i}", "timestamp": f"2026-05-0{1 + i % 9}T10:00:00Z"}
        for i in range(40)
    ]  # fmt: skip
    with Touchpoints.open(load_settings(tmp_path / "off", journeys_refresh_seconds=0)) as off:
        assert off.journeys_job() is None
    with Touchpoints.open(load_settings(tmp_path / "data")) as tp:
        outcome = tp.judge({"batch": events}, "batch", source="jobs-test")
        tp.write_rows(outcome.rows)
        tp.identity.catch_up()
        assert tp.warehouse.scalar("SELECT count(*) FROM journey_facts") == 0
        job = tp.journeys_job()
        assert job is not None and job.interval == 60
        job.first = 0.05
        job.start()
        try:
            deadline = time.monotonic() + 60
            while job.runs == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            job.stop()
        assert job.runs == 1
        # Derived in the background: every event has its facts, and the analysis's own
        # refresh finds nothing left to do.
        assert tp.warehouse.scalar("SELECT count(*) FROM journey_facts") == 40
        assert tp.warehouse.scalar("SELECT count(DISTINCT person) FROM journey_facts") == 7
        done = tp.journeys.refresh()
        assert (done.events, done.persons, done.full) == (0, 0, False)
