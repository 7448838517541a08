"""Lifetime value on the demo: its customers buy again in the shop at a rate of their own
and stop at some point (touchpoints.demo.shop), so the models find a buy-till-you-die
population inside their parameter space, not at its edge (as when every customer made one
repeat order and nothing after it: a ≈ 57,535, b ≈ 0)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.demo import DemoConfig, Simulator
from touchpoints.predictions import HoldoutQuery, LtvTraining

CONFIG = DemoConfig.ending(date(2026, 10, 27), people=4000, seed=42)  # the year up to then


@pytest.mark.slow
def test_the_demos_customers_give_a_fit_inside_the_models_range(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        messages = list(Simulator(CONFIG).events())
        for start in range(0, len(messages), 2000):
            outcome = tp.judge({"batch": messages[start : start + 2000]}, "import", source="t")
            assert not outcome.rejected and not outcome.body_problems
            tp.write_rows(outcome.rows)
        card = tp.predictions.train_ltv(LtvTraining(until=date(2026, 10, 26)))
        holdout = tp.predictions.evaluate(
            HoldoutQuery(calibration_end=date(2026, 7, 27), holdout_end=date(2026, 10, 26))
        )
    bgnbd, spend = card.parameters["bgnbd"], card.parameters["gamma_gamma"]
    metrics = card.metrics or {}
    print("\nlifetime value on the demo:", card.parameters, metrics)
    print("holdout: actual", holdout.actual_total, "predicted", holdout.predicted_total)
    assert metrics["repeat_buyers"] > 0.3 * metrics["customers"]
    # Every parameter well inside (0, ∞): rates vary (r), dropping out is neither certain
    # after an order nor never (a, b), order values vary within and across customers.
    for value in (*bgnbd.values(), *spend.values()):
        assert 0.05 < value < 5_000, card.parameters
    assert 0.05 < bgnbd["a"] / (bgnbd["a"] + bgnbd["b"]) < 0.6  # the mean chance to drop out
    assert spend["q"] > 1.5  # a finite average order value, with room
    assert 0.5 < holdout.predicted_total / holdout.actual_total < 2
