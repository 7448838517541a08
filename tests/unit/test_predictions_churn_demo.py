"""Churn risk on the demo, checked against the simulator's own truth: each customer's
monthly churn hazard, driven by pain points and engagement (touchpoints.demo.life).

The best any model can do is to score with the hazard itself (and know who lapsed already):
its AUC on the same persons and labels is the ceiling the trained model is compared with.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.demo import DemoConfig, Simulator, write_demo_files
from touchpoints.predictions import ChurnTraining, churn
from touchpoints.predictions.churn_features import churn_table
from touchpoints.predictions.churn_service import card_spec

CONFIG = DemoConfig(people=4000, seed=42, days=400)
END = CONFIG.start.replace(tzinfo=None) + timedelta(days=CONFIG.days)


def _load(tp: Touchpoints, out_dir: Path) -> dict[str, dict[str, Any]]:
    sim = Simulator(CONFIG)
    messages = list(sim.events())
    files = write_demo_files(sim, out_dir)
    for start in range(0, len(messages), 2000):
        outcome = tp.judge({"batch": messages[start : start + 2000]}, "import", source="test")
        assert not outcome.rejected and not outcome.body_problems
        tp.write_rows(outcome.rows)
    with files.truth_persons.open(encoding="utf-8") as handle:
        persons = {row["person_id"]: row for row in csv.DictReader(handle)}
    for row in persons.values():
        row["identifiers"] = []
    with files.truth_identifiers.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            persons[row["person_id"]]["identifiers"].append((row["id_type"], row["value"]))
    return persons


def _oracle(truth: dict[str, Any], cutoff: datetime, window: timedelta) -> float:
    """The simulator's own chance that the customer does nothing in the window: 1 when they
    lapsed before the cutoff, else 1 - the chance to last every month that overlaps it."""
    stamp = cutoff.isoformat()
    if truth["lapsed_at"] and truth["lapsed_at"] < stamp:
        return 1.0
    stay = 1.0
    for item in truth["churn_hazards"].split():
        month, h = item.split("=")
        start = datetime.fromisoformat(month)
        if cutoff - timedelta(days=30) < start < cutoff + window:
            stay *= 1 - float(h)
    return 1 - stay


@pytest.mark.slow
def test_the_model_comes_near_the_simulators_own_hazard(tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    # The simulator's customers who never chose are learnt from too (as an operator whose
    # legal basis allows it sets): the model is checked against the hazard, not the consent.
    defaults = {"necessary": True, "analytics": True}
    with Touchpoints(load_settings(tmp_path / "data", consent_defaults=defaults)) as tp:
        truth = _load(tp, tmp_path / "demo")
        tp.churn.now = lambda: END
        card = tp.churn.train(ChurnTraining())
        found = tp.churn.cards.card(card.id)
        stored = tp.churn.store.estimator(card.id)
        assert found is not None and stored is not None
        fitted = churn.load(stored[2], card.features["estimator_sha256"])
        cutoff = datetime.fromisoformat(card.features["test_cutoff"])
        source = tp.journeys.source()
        table = source.arrow(
            churn_table(source, tp.journeys.model, card_spec(found), cutoff, label=True)
        )
        owners = _owners(tp, truth)
    metrics = card.metrics or {}
    x = np.column_stack([table.column(n).to_numpy() for n in card.features["features"]])
    risk = churn.risk(fitted.trees, x)
    assert float(roc_auc_score(table.column("churned").to_numpy(), risk)) == pytest.approx(
        metrics["model"]["auc"]
    )
    # Compared where the warehouse's person is the simulated customer's account (the person
    # holding their user id): a dealer's record of the same customer, not linked to it, is
    # another person in the warehouse whose activity stops when the dealer's does.
    window = timedelta(days=card.features["window_days"])
    chosen, oracle = [], []
    for i, person in enumerate(table.column("person").to_pylist()):
        if person in owners:
            chosen.append(i)
            oracle.append(_oracle(truth[owners[person]], cutoff, window))
    labels = table.column("churned").to_numpy()[chosen]
    on_accounts = float(roc_auc_score(labels, risk[chosen]))
    best = float(roc_auc_score(labels, np.array(oracle)))
    print(
        "\nchurn on the demo:",
        {"model": _short(metrics["model"]), "baseline": _short(metrics["baseline"])},
        {"training": metrics["training"], "test": metrics["test"]},
        {"accounts": len(chosen), "model_auc": round(on_accounts, 4), "best_auc": round(best, 4)},
    )
    assert len(chosen) > 150
    assert metrics["model"]["auc"] > metrics["baseline"]["auc"] - 0.02
    assert best - 0.08 < on_accounts <= best + 0.01  # within a sensible margin of the ceiling
    assert metrics["model"]["top_decile_lift"] > 1.5 and metrics["model"]["brier"] < 0.15


def _owners(tp: Touchpoints, truth: dict[str, dict[str, Any]]) -> dict[int, str]:
    """The warehouse's person holding each simulated customer's user id."""
    rows = tp.warehouse.fetchall("SELECT person, value FROM identifiers WHERE type = 'user_id'")
    users = {v: pid for pid, row in truth.items() for t, v in row["identifiers"] if t == "user_id"}
    return {int(person): users[value] for person, value in rows if value in users}


def _short(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics.items() if k not in ("calibration", "lift")}
