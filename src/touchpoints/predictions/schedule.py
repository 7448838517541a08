"""Scoring on a schedule: everyone scored with the models in use every
``predictions_score_interval_hours``, in a :class:`~touchpoints.jobs.PeriodicJob` (scoring
reads through its own cursor and replaces the scores in one short transaction)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from touchpoints.jobs import PeriodicJob
from touchpoints.predictions.results import ScoringRun

log = logging.getLogger("touchpoints.predictions")


def _described(run: ScoringRun) -> str:
    return "lifetime value of {} persons, churn risk of {} persons".format(
        run.ltv.persons if run.ltv else "no", run.churn.persons if run.churn else "no"
    )


def scoring_job(
    score: Callable[[], ScoringRun], interval: float, first: float = 300
) -> PeriodicJob[ScoringRun]:
    """``score`` ``first`` seconds after the server starts (five minutes: the writer and the
    identity map first), then every ``interval`` seconds. A model not trained yet is noted at
    info level: it is not a fault of the server."""
    return PeriodicJob(
        "scoring",
        score,
        _described,
        interval=interval,
        first=first,
        log=log,
        refusal_level=logging.INFO,
    )
