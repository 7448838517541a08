"""The server's periodic jobs: started, stopped, failures outlived and logged without data."""

from __future__ import annotations

import logging
import time

import pytest

from touchpoints.errors import TouchpointsError
from touchpoints.jobs import PeriodicJob

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
