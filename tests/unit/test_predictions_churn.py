"""Churn risk: the metrics against scikit-learn's own, the refusal below 100 persons who
churned or stayed, the time split, explanations that add up, a model that survives a restart,
a failed training that leaves the model in use and its scores alone, and the features equal
on DuckDB and Spark.

The data: customers who buy, then drive (a trip a week) until they stop; a complaint or two
support calls within days (the stage model's pain points) make them stop sooner.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import spark_source
from shop import END, START, customers, iso
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.errors import Conflict, InvalidRequest
from touchpoints.predictions import ChurnTraining, churn
from touchpoints.predictions.churn_features import churn_table
from touchpoints.predictions.churn_service import card_spec
from touchpoints.warehouse.personal import registered


def _load(tp: Touchpoints, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 2000):
        outcome = tp.judge({"batch": messages[start : start + 2000]}, "import", source="test")
        assert not outcome.rejected and not outcome.body_problems
        tp.write_rows(outcome.rows)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with 900 customers, copied for each test that changes it."""
    data_dir = tmp_path_factory.mktemp("churn") / "data"
    with Touchpoints(load_settings(data_dir)) as tp:
        _load(tp, customers(900))
    return data_dir


@pytest.fixture
def tp(loaded: Path, tmp_path: Path) -> Iterator[Touchpoints]:
    data_dir = tmp_path / "data"
    shutil.copytree(loaded, data_dir)
    with Touchpoints(load_settings(data_dir)) as core:
        core.churn.now = lambda: END
        yield core


# -- metrics -----------------------------------------------------------------------------------
def test_the_metrics_are_scikit_learns() -> None:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0])
    p = np.array(
        [0.95, 0.1, 0.8, 0.35, 0.4, 0.05, 0.7, 0.2, 0.15, 0.3]
        + [0.65, 0.5, 0.12, 0.55, 0.08, 0.25, 0.33, 0.9, 0.6, 0.02]
    )
    found = churn.metrics(y, p)
    assert found["auc"] == pytest.approx(roc_auc_score(y, p))
    assert found["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert found["brier"] == pytest.approx(brier_score_loss(y, p))
    actual, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
    assert [b["actual"] for b in found["calibration"]] == pytest.approx(list(actual))
    assert [b["predicted"] for b in found["calibration"]] == pytest.approx(list(predicted))
    assert sum(b["persons"] for b in found["calibration"]) == 20
    # The top 10 %: the 2 highest risks (0.95, 0.9) both churned; 7 of 20 churned in all.
    assert found["top_decile_lift"] == pytest.approx(1.0 / (7 / 20))


def test_points_add_up_to_the_risk_above_the_base() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=600) > 0.8).astype(np.int64)
    x[rng.random(600) < 0.3, 3] = np.nan  # a feature unknown for some: the trees route it
    fitted = churn.fit(x, y)
    explained = churn.explain(fitted.trees, x[:50])
    assert explained.risk == pytest.approx(churn.risk(fitted.trees, x[:50]))
    added = explained.points.sum(axis=1)
    assert added == pytest.approx(100 * (explained.risk - explained.base))
    # The feature that drives churn pushes most, and its points take its sign.
    assert np.argmax(np.abs(explained.points).mean(axis=0)) == 0
    top = churn.top_contributions(["a", "b", "c", "d"], x[0], explained.points[0], limit=2)
    assert [c["feature"] for c in top][0] in ("a", "b")
    assert abs(top[0]["points"]) >= abs(top[-1]["points"])


# -- training ----------------------------------------------------------------------------------
def test_training_splits_by_time_and_keeps_a_card(tp: Touchpoints) -> None:
    card = tp.churn.train()
    assert card.kind == "churn" and card.status == "trained"
    assert card.data_until == (END - timedelta(days=1)).date()
    assert card.features["train_cutoff"] == (END - timedelta(days=180)).date().isoformat()
    assert card.features["test_cutoff"] == (END - timedelta(days=90)).date().isoformat()
    assert "pain_3" in card.features["features"]  # complaint: the stage model's pain point
    metrics = card.metrics or {}
    for period in ("training", "test"):
        assert metrics[period]["churned"] >= 100 and metrics[period]["stayed"] >= 100
    assert metrics["model"]["auc"] > 0.7
    assert set(metrics["baseline"]) == {
        "auc", "pr_auc", "top_decile_lift", "brier", "calibration", "lift"
    }  # fmt: skip
    lift = metrics["model"]["lift"]
    assert [d["decile"] for d in lift] == list(range(1, 11))
    assert lift[0]["lift"] == pytest.approx(metrics["model"]["top_decile_lift"], rel=0.05)
    assert lift[-1]["cumulative_lift"] == pytest.approx(1.0)
    importance = metrics["feature_importance"]
    assert {f["feature"] for f in importance} == set(card.features["features"])
    assert importance[0]["points"] >= importance[-1]["points"] >= 0
    assert card.parameters and set(card.parameters) == {"trees", "baseline"}
    assert tp.churn.model_card().id == card.id


@pytest.mark.slow
def test_nothing_of_the_test_window_reaches_the_training_rows(tp: Touchpoints) -> None:
    """The training rows (features and labels) at the training cutoff are the same whatever
    happens from the test cutoff on: events added there change nothing."""
    card = tp.churn.train()
    found = tp.churn.cards.card(card.id)
    assert found is not None
    spec = card_spec(found)
    train_cutoff = datetime.fromisoformat(card.features["train_cutoff"])
    test_cutoff = datetime.fromisoformat(card.features["test_cutoff"])
    assert train_cutoff + timedelta(days=spec.window_days) == test_cutoff

    def training_rows() -> list[dict[str, Any]]:
        source = tp.journeys.source()
        table = churn_table(source, tp.journeys.model, spec, train_cutoff, label=True)
        return sorted(source.rows(table), key=lambda r: r["person"])

    before = training_rows()
    rng = random.Random(5)
    later = [
        {
            "type": "track",
            "event": rng.choice(("Trip Completed", "Complaint Filed", "Order Completed")),
            "userId": f"c{rng.randrange(900):05d}",
            "timestamp": iso(test_cutoff + timedelta(days=rng.uniform(0, 89))),
            "messageId": f"later-{i}",
            "properties": {"revenue": 10.0},
        }
        for i in range(400)
    ]
    _load(tp, later)
    after = training_rows()
    assert after == before
    assert len(before) > 200


def test_too_few_churned_or_stayed_is_refused_naming_what_is_missing(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        _load(tp, customers(120))
        tp.churn.now = lambda: END
        with pytest.raises(Conflict) as refused:
            tp.churn.train()
        text = str(refused.value)
        assert text.startswith("too little data: the training period (cutoff ")
        assert "more who stayed in the training period" in text
        assert "at least 100 of each" in text
        cards = tp.predictions.cards().cards
        assert [(c.kind, c.status, c.message) for c in cards] == [("churn", "failed", text)]
        with pytest.raises(Conflict, match="no churn-risk model is trained yet"):
            tp.churn.score()


def test_the_test_window_must_be_over(tp: Touchpoints) -> None:
    with pytest.raises(InvalidRequest, match="^until: "):
        tp.churn.train(ChurnTraining(until=END.date()))


def test_a_definition_that_finds_nobody_names_the_field(tp: Touchpoints) -> None:
    with pytest.raises(InvalidRequest, match="^events: nobody did any of 'Trip Taken'"):
        tp.churn.train(ChurnTraining(events=["Trip Taken"]))
    tp.churn.settings = replace(tp.churn.settings, conversion_event="Purchase")
    with pytest.raises(InvalidRequest, match="^population: nobody with a 'Purchase' event"):
        tp.churn.train()
    assert [c.status for c in tp.predictions.cards().cards] == ["failed", "failed"]


# -- scoring -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_scores_with_reasons_survive_a_restart(tp: Touchpoints) -> None:
    card = tp.churn.train()
    scoring = tp.churn.score()
    assert scoring.model_id == card.id and scoring.persons > 100
    key = f"person:{tp.warehouse.scalar('SELECT min(person) FROM churn_scores')}"
    one = tp.churn.risk(key)
    assert one.model_id == card.id and 0 <= one.churn_risk <= 1
    assert 0 < one.churn_percentile <= 100
    assert one.contributions and one.base_risk is not None
    sizes = [abs(c.points) for c in one.contributions]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) <= 5
    assert all(c.label for c in one.contributions)
    # Scoring kept the person's features, not their reasons: the reasons are tree SHAP on
    # those features with the model that scored them, which gives the stored risk again.
    row = tp.churn.store.score(int(key.removeprefix("person:")))
    assert row is not None and row["contributions"] is None
    assert len(row["features"]) == len(card.features["features"])
    stored = tp.churn.store.estimator(card.id)
    assert stored is not None
    fitted = churn.load(stored[2], card.features["estimator_sha256"])
    x = np.array([np.nan if v is None else v for v in row["features"]])
    explained = churn.explain(fitted.trees, x[None, :])
    assert explained.risk[0] == pytest.approx(row["churn_risk"], abs=1e-9)
    top = churn.top_contributions(card.features["features"], x, explained.points[0])
    assert [(c.feature, c.points) for c in one.contributions] == [
        (c["feature"], c["points"]) for c in top
    ]
    data_dir = tp.settings.data_dir
    tp.close()
    with Touchpoints(load_settings(data_dir)) as again:  # the estimator from the warehouse
        again.churn.now = lambda: END
        assert again.churn.score().persons == scoring.persons
        assert again.churn.risk(key).churn_risk == pytest.approx(one.churn_risk)


@pytest.mark.slow
def test_a_failed_training_keeps_the_model_and_its_scores(tp: Touchpoints) -> None:
    card = tp.churn.train()
    tp.churn.score()
    key = f"person:{tp.warehouse.scalar('SELECT min(person) FROM churn_scores')}"
    before = tp.churn.risk(key)
    with pytest.raises(Conflict, match="too little data"):
        tp.churn.train(ChurnTraining(window_days=200))  # two windows: before any purchase
    assert tp.churn.model_card().id == card.id
    assert tp.churn.risk(key) == before
    assert tp.churn.score().model_id == card.id


@pytest.mark.slow
def test_an_export_holds_and_an_erasure_removes_the_persons_churn_scores(tp: Touchpoints) -> None:
    import io
    import zipfile

    import orjson

    assert (found := registered("churn_scores")) is not None and found.finds == "person"
    tp.churn.train()
    scored = tp.churn.score().persons
    person = int(tp.warehouse.scalar("SELECT min(person) FROM churn_scores"))
    user = tp.warehouse.scalar(
        "SELECT value FROM identifiers WHERE person = ? AND type = 'user_id'", [person]
    )
    _, archive = tp.privacy.export(f"user_id:{user}")
    with zipfile.ZipFile(io.BytesIO(archive)) as files:
        rows = orjson.loads(files.read("tables/churn_scores.json"))
    assert [row["person"] for row in rows] == [person]
    assert "contributions" in rows[0] and 0 <= rows[0]["churn_risk"] <= 1
    tp.privacy.erase(f"user_id:{user}")
    assert tp.churn.store.score(person) is None
    assert tp.churn.store.scored()[0] == scored - 1


@pytest.mark.slow
def test_the_example_in_the_docs_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "predictions.md").read_text()
    example = text.split("## Churn risk", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    with Touchpoints(load_settings(tmp_path / "touchpoints-data")) as tp:
        _load(tp, customers(900, start=today - (END - START)))
    printed: list[Any] = []

    def show(*values: Any) -> None:
        printed.extend(values)

    exec(compile(example, "docs/predictions.md", "exec"), {"print": show})
    model, baseline, scoring, person = printed
    assert model["auc"] > 0.7 and set(baseline) == set(model)
    assert scoring.persons > 100
    assert person.contributions and person.model_id == scoring.model_id


# -- engines -----------------------------------------------------------------------------------
@pytest.mark.spark
def test_the_features_are_the_same_on_duckdb_and_spark(tmp_path: Path, spark: object) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        _load(tp, customers(150, seed=4))
        tp.churn.now = lambda: END
        spec = tp.churn._spec(ChurnTraining())
        cutoff = END - timedelta(days=90)
        model = tp.journeys.model
        duck = tp.journeys.source()
        on_duckdb = duck.rows(churn_table(duck, model, spec, cutoff, label=True))
        on_spark_source = spark_source(spark, tp)
        on_spark = on_spark_source.rows(  # type: ignore[attr-defined]
            churn_table(on_spark_source, model, spec, cutoff, label=True)  # type: ignore[arg-type]
        )

    def rounded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(
            ({k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()} for r in rows),
            key=lambda r: r["person"],
        )

    assert rounded(on_spark) == rounded(on_duckdb)
    assert len(on_duckdb) > 30
    assert any(r["pain_3"] for r in on_duckdb) and any(r["pain_7"] for r in on_duckdb)
