"""The predictions' numeric work runs on one thread of BLAS and OpenMP.

scikit-learn's gradient-boosted trees (OpenMP), the likelihoods' dot products (BLAS) and
their peers spread over every core and wait for each other by spinning. On a machine whose
cores are busy with anything else (the collector and writer beside the scheduled scoring,
another process) the spinning threads take the CPU from each other: measured on the 2-core
machine at a load of 9 (benchmarks/RESULTS.md), fitting the churn trees on 48,425 persons
took 211 s on two OpenMP threads and 15 s on one, the whole churn training 283 s and 51 s.
On an idle machine two threads would save perhaps a third; one thread never collapses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def single_threaded(work: Callable[P, R]) -> Callable[P, R]:
    """``work`` with BLAS and OpenMP held to one thread while it runs."""

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return work(*args, **kwargs)

    return run
