"""The predictions service on a real warehouse: CDNOW's purchases sent as events train the
published fit; scoring, one person's figures, the holdout check, and every bad input a plain
message."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cdnow
from conftest import run_cli
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.errors import Conflict, InvalidRequest, NotFound
from touchpoints.predictions import HoldoutQuery, LtvTraining, bgnbd, gamma_gamma

PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_SPEND = {"p": 6.25, "q": 3.74, "v": 15.44}
# CDNOW's purchases carry no consent choice: these shops grant analytics (the category of
# the purpose predictions) to a person who never chose, as an operator whose legal basis
# allows it configures (docs/predictions.md#privacy); unconfigured, nobody would be scored.
DEFAULTS = {"consent_defaults": {"necessary": True, "analytics": True}}


def send(tp: Touchpoints, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 2000):
        outcome = tp.judge(
            {"batch": messages[start : start + 2000]}, "batch", source="predictions-test"
        )
        assert not outcome.rejected, outcome.rejected[:3]
        tp.write_rows(outcome.rows)


def _granted(user: str, day: date) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Segment Consent Preference Updated",
        "timestamp": f"{day.isoformat()}T00:00:00Z",
        "context": {"consent": {"categoryPreferences": {"analytics": True}}},
    }


def order(user: str, day: date, revenue: Any, event: str = "Order Completed") -> dict[str, Any]:
    properties = {} if revenue is None else {"revenue": revenue}
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "timestamp": f"{day.isoformat()}T12:00:00Z",
        "properties": properties,
    }


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Touchpoints]:
    """A data directory holding CDNOW's 6,919 purchases as Order Completed events, a model
    trained on the calibration period (to 30 September 1997) and everyone scored as of then."""
    settings = load_settings(tmp_path_factory.mktemp("cdnow") / "data", **DEFAULTS)
    with Touchpoints(settings) as tp:
        send(tp, [order(c, day, amount) for c, day, amount in cdnow.transactions()])
        tp.predictions.today = lambda: cdnow.CALIBRATION_END
        yield tp


@pytest.fixture(scope="module")
def trained(shop: Touchpoints) -> Any:
    return shop.predictions.train_ltv(LtvTraining(until=cdnow.CALIBRATION_END))


def test_the_purchase_summary_is_the_published_one(shop: Touchpoints) -> None:
    table = shop.predictions.store.summary(
        "Order Completed", "revenue", None, cdnow.CALIBRATION_END
    )
    published = cdnow.summary()
    assert table.num_rows == 2357
    customer = dict(
        shop.warehouse.fetchall("SELECT person, value FROM identifiers WHERE type = 'user_id'")
    )
    rows = sorted(table.to_pylist(), key=lambda row: int(customer[row["person"]]))
    x = np.array([r["frequency"] for r in rows])
    t_x = np.array([r["recency_days"] for r in rows]) / 7
    T = np.array([r["age_days"] for r in rows]) / 7
    np.testing.assert_array_equal(x, published.x)
    np.testing.assert_allclose(t_x, published.t_x, atol=0.0051)
    np.testing.assert_allclose(T, published.T, atol=0.0051)
    zbar = np.array([r["repeat_value"] if r["repeat_value"] is not None else 0.0 for r in rows])
    np.testing.assert_allclose(zbar, published.zbar, atol=0.0051)


def test_training_on_the_purchases_gives_the_published_fit(trained: Any) -> None:
    assert trained.status == "trained" and trained.kind == "ltv"
    assert trained.period == "weeks" and trained.data_until == cdnow.CALIBRATION_END
    for name, value in PUBLISHED.items():
        assert trained.parameters["bgnbd"][name] == pytest.approx(value, rel=0.01), name
    for name, value in PUBLISHED_SPEND.items():
        assert trained.parameters["gamma_gamma"][name] == pytest.approx(value, rel=0.01), name
    assert trained.metrics["customers"] == 2357
    assert trained.metrics["repeat_buyers"] == 946
    assert trained.metrics["bgnbd_log_likelihood"] == pytest.approx(-9582.4, abs=1.0)
    assert trained.features["conversion_event"] == "Order Completed"


def test_scoring_stores_every_persons_figures(shop: Touchpoints, trained: Any) -> None:
    scoring = shop.predictions.score()
    assert scoring.model_id == trained.id and scoring.persons == 2357
    # The paper's customer 1: x = 2, t_x = 30.43, T = 38.86 (the sample's customer 0001).
    one = shop.predictions.ltv("user_id:0001")
    assert (one.frequency, one.model_id) == (2, trained.id)
    assert one.recency == pytest.approx(30.43, abs=0.01)
    assert one.age == pytest.approx(38.86, abs=0.01)
    assert 0 < one.p_alive < 1
    assert 0 < one.expected_purchases_30d < one.expected_purchases_90d < one.expected_purchases_365d
    assert one.expected_order_value is not None and one.predicted_clv_12m is not None
    assert one.predicted_clv_12m > 0
    # A customer with no repeat purchase: alive by definition, the population's spend.
    single = shop.predictions.ltv("user_id:0003")
    spend = trained.parameters["gamma_gamma"]
    assert single.frequency == 0 and single.p_alive == 1.0
    assert single.average_order_value is None
    assert single.expected_order_value == pytest.approx(spend["p"] * spend["v"] / (spend["q"] - 1))


def test_scoring_counts_in_the_models_period_whatever_the_setting_says_now(
    shop: Touchpoints, trained: Any
) -> None:
    shop.predictions.score()
    weeks = shop.predictions.ltv("user_id:0001")
    settings = shop.predictions.settings
    shop.predictions.settings = replace(settings, period="days")
    try:
        shop.predictions.score()
        again = shop.predictions.ltv("user_id:0001")
    finally:
        shop.predictions.settings = settings
    assert again.period == "weeks" and again.recency == weeks.recency
    assert again.predicted_clv_12m == pytest.approx(weeks.predicted_clv_12m)


def test_holdout_evaluation_compares_predicted_and_actual_purchases(
    shop: Touchpoints, trained: Any
) -> None:
    # trained: the model in use, which the evaluation must leave (under xdist this test may
    # run before the one that trains).
    result = shop.predictions.evaluate(
        HoldoutQuery(calibration_end=cdnow.CALIBRATION_END, holdout_end=cdnow.HOLDOUT_END)
    )
    assert result.model.kind == "ltv_holdout" and result.customers == 2357
    assert result.holdout_length == pytest.approx(39.0)
    assert [row.frequency for row in result.rows] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(row.customers for row in result.rows) == 2357
    # The model in use is still the trained one, not the evaluation's.
    assert shop.predictions.model().kind == "ltv"
    # As FHL 2005's figure 4: close for every frequency (within 0.4 purchases a customer),
    # a little under for those who bought once or twice; 1,882 purchase days in the holdout
    # period (1,959 orders), 1,653 predicted.
    for row in result.rows:
        assert abs(row.actual - row.predicted) < 0.4, row
    first = result.rows[0]
    assert (first.customers, first.actual) == (1411, pytest.approx(334 / 1411))
    assert first.predicted == pytest.approx(0.225, abs=0.001)
    assert result.actual_total == 1882
    assert result.predicted_total == pytest.approx(1653.4, abs=1.0)


def test_a_failed_training_leaves_the_model_and_its_scores(shop: Touchpoints, trained: Any) -> None:
    shop.predictions.score()
    before = shop.predictions.ltv("user_id:0001")
    with pytest.raises(InvalidRequest, match="revenue_property: none of the .* 'amount'"):
        shop.predictions.train_ltv(LtvTraining(revenue_property="amount"))
    assert shop.predictions.model().id == trained.id
    assert shop.predictions.ltv("user_id:0001") == before
    failed = shop.predictions.cards().cards[0]
    assert failed.status == "failed" and "amount" in (failed.message or "")


def test_an_export_holds_and_an_erasure_removes_the_persons_figures(tmp_path: Path) -> None:
    import io
    import zipfile

    import orjson

    with Touchpoints(load_settings(tmp_path / "data", **DEFAULTS)) as tp:
        send(tp, [order(c, day, amount) for c, day, amount in cdnow.transactions()])
        tp.predictions.today = lambda: cdnow.CALIBRATION_END
        tp.predictions.train_ltv()
        tp.predictions.score()
        person = tp.predictions.ltv("user_id:0002").person
        _, archive = tp.privacy.export("user_id:0002")
        with zipfile.ZipFile(io.BytesIO(archive)) as files:
            rows = orjson.loads(files.read("tables/predictions.json"))
        assert [row["person"] for row in rows] == [person]
        assert rows[0]["predicted_clv_12m"] > 0
        tp.privacy.erase("user_id:0002")
        assert tp.predictions.store.prediction(person) is None
        assert tp.predictions.store.scored()[0] == 2356


# -- bad input, each a plain message -------------------------------------------------------
@pytest.fixture
def tp(tmp_path: Path) -> Iterator[Touchpoints]:
    with Touchpoints(load_settings(tmp_path / "data", **DEFAULTS)) as core:
        core.predictions.today = lambda: date(2026, 6, 30)
        yield core


def _customers(n: int, repeat: int, revenue: Any = 10.0) -> list[dict[str, Any]]:
    messages = []
    for i in range(n):
        messages.append(order(f"c{i}", date(2026, 1, 1 + i % 28), revenue))
        if i < repeat:
            messages.append(order(f"c{i}", date(2026, 3, 1 + i % 28), revenue))
    return messages


def test_no_purchases_names_the_conversion_event(tp: Touchpoints) -> None:
    send(tp, [order("c1", date(2026, 1, 5), 10.0, event="Product Viewed")])
    with pytest.raises(InvalidRequest, match="^conversion_event: no 'Order Completed' events"):
        tp.predictions.train_ltv()


def test_a_text_revenue_names_the_revenue_property(tp: Touchpoints) -> None:
    send(tp, _customers(30, 10, revenue="29.90"))
    with pytest.raises(InvalidRequest, match="^revenue_property: 'revenue' is text in 40 of 40"):
        tp.predictions.train_ltv()
    assert tp.predictions.cards().cards[0].status == "failed"


def test_a_revenue_that_is_no_number_names_the_revenue_property(tp: Touchpoints) -> None:
    send(tp, _customers(30, 10) + [order("c1", date(2026, 5, 1), {"amount": 3})])
    with pytest.raises(
        InvalidRequest, match=r"^revenue_property: 'revenue' is not a number in 1 of 41 "
    ):
        tp.predictions.train_ltv()


def test_too_little_data_is_a_conflict(tp: Touchpoints) -> None:
    send(tp, _customers(8, 2))
    with pytest.raises(Conflict, match="too little data: 8 customers .* 2 of them repeat"):
        tp.predictions.train_ltv()


def test_a_customer_whose_first_purchase_is_on_the_last_day_is_scored_not_fitted(
    tmp_path: Path,
) -> None:
    """Age 0 (first purchase on ``until``, or on the calibration's last day) adds nothing to
    the likelihood: the fit leaves the customer out (it refuses an age of 0), scoring does
    not."""
    last = cdnow.CALIBRATION_END
    with Touchpoints(load_settings(tmp_path / "data", **DEFAULTS)) as core:
        core.predictions.today = lambda: last
        send(core, [order(c, day, amount) for c, day, amount in cdnow.transactions()])
        send(core, [order("late", last, 30.0)])
        card = core.predictions.train_ltv(LtvTraining(until=last))
        assert card.status == "trained"
        assert card.metrics and card.metrics["customers"] == 2357
        assert core.predictions.score().persons == 2358
        assert core.predictions.ltv("user_id:late").age == 0
        held = core.predictions.evaluate(
            HoldoutQuery(calibration_end=last, holdout_end=date(1998, 6, 30))
        )
        assert held.model.status == "trained" and held.customers == 2358


def test_scores_before_a_model_is_trained_are_a_conflict(tp: Touchpoints) -> None:
    send(tp, _customers(3, 1))
    with pytest.raises(Conflict, match="no lifetime-value model is trained yet"):
        tp.predictions.score()
    with pytest.raises(Conflict, match="no lifetime-value model is trained yet"):
        tp.predictions.ltv("user_id:c1")
    with pytest.raises(NotFound):
        tp.predictions.ltv("user_id:nobody")


def test_the_query_checks_its_window() -> None:
    with pytest.raises(ValueError, match="holdout_end: give a day after calibration_end"):
        HoldoutQuery(calibration_end=date(2026, 1, 2), holdout_end=date(2026, 1, 1))
    with pytest.raises(ValueError, match="until: give a day after since"):
        LtvTraining(since=date(2026, 1, 2), until=date(2026, 1, 1))


def test_the_core_does_not_import_scipy() -> None:
    """scipy takes most of a second to import; every CLI command imports the core."""
    import subprocess
    import sys

    code = "import sys, touchpoints.core; print('scipy' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "False"


# -- the paper through the product ------------------------------------------------------------
ORDERS_MAPPING = """\
type = "track"
user_id = "customer"
event_name = "Order Completed"
timestamp = "date"
numbers = ["revenue"]

[properties]
order_id = "order"
revenue = "amount"
"""


@pytest.mark.slow
def test_a_transactions_csv_imported_with_the_cli_reproduces_the_published_fit(
    tmp_path: Path,
) -> None:
    """A user's way: CDNOW as an order export (order, customer, date, amount), imported with
    ``touchpoints import`` and a mapping, gives the fit of the published summary."""
    lines = ["order,customer,date,amount"]
    for number, (customer, day, amount) in enumerate(cdnow.transactions(), start=1):
        lines.append(f"{number},{customer},{day.isoformat()},{amount:.2f}")
    orders = tmp_path / "cdnow_orders.csv"
    orders.write_text("\n".join(lines) + "\n")
    mapping = tmp_path / "orders.toml"
    mapping.write_text(ORDERS_MAPPING)
    data_dir = tmp_path / "data"
    assert run_cli("init", data_dir=data_dir).returncode == 0
    result = run_cli("import", str(orders), "--mapping", str(mapping), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "6,919 accepted (6,919 stored" in result.stdout

    with Touchpoints(load_settings(data_dir)) as tp:
        card = tp.predictions.train_ltv(LtvTraining(until=cdnow.CALIBRATION_END))
    published = cdnow.summary()
    reference = bgnbd.fit(published.x, published.t_x, published.T).params
    repeat = published.x > 0
    spend = gamma_gamma.fit(published.x[repeat], published.zbar[repeat]).params
    for name in ("r", "alpha", "a", "b"):
        assert card.parameters["bgnbd"][name] == pytest.approx(
            getattr(reference, name), rel=1e-3
        ), name
        assert card.parameters["bgnbd"][name] == pytest.approx(PUBLISHED[name], rel=0.01)
    for name in ("p", "q", "v"):
        assert card.parameters["gamma_gamma"][name] == pytest.approx(
            getattr(spend, name), rel=1e-3
        ), name
        assert card.parameters["gamma_gamma"][name] == pytest.approx(
            PUBLISHED_SPEND[name], rel=0.01
        )


@pytest.mark.slow
def test_the_example_in_the_docs_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "predictions.md").read_text()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    with Touchpoints(load_settings(tmp_path / "touchpoints-data")) as tp:
        send(tp, [order(c, day, amount) for c, day, amount in cdnow.transactions()])
        # Each customer granted analytics (the consent predictions need) when they joined.
        customers = sorted({c for c, _day, _amount in cdnow.transactions()})
        send(tp, [_granted(c, date(1997, 1, 1)) for c in customers])
    printed: list[Any] = []

    def show(*values: Any) -> None:
        printed.extend(values)

    exec(compile(example, "docs/predictions.md", "exec"), {"print": show})
    parameters, _metrics, person = printed
    assert parameters["bgnbd"]["r"] == pytest.approx(PUBLISHED["r"], rel=0.01)
    assert person.frequency >= 2 and person.model_id == 1
