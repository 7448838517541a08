"""Predictions against a real server (``touchpoints serve`` on a loopback port) and in a real
browser (Debian's chromium, through Playwright): the shop of tests/shop.py trained and scored
over HTTP with an admin key; the routes' permissions and answers; the Predictions page's
charts drawn with the API's numbers, their tables and CSV, the top customers for a read key;
the profile's churn reasons in German. Fixtures: tests/conftest.py."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from e2e_browser import admin_key, chart_series, screenshot, sign_in

from conftest import Server, start_server
from shop import DENIED, END, NEVER_CHOSE, START, shop
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on the shop's events (loaded before it starts), trained and scored through
    its API."""
    data_dir = tmp_path_factory.mktemp("predictions") / "data"
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    with Touchpoints(load_settings(data_dir)) as tp:
        messages = shop(today - (END - START))
        for first in range(0, len(messages), 2000):
            outcome = tp.judge({"batch": messages[first : first + 2000]}, "import", source="t")
            tp.write_rows(outcome.rows)
    server = start_server(data_dir, extra_env={"TOUCHPOINTS_PREDICTIONS_SCORE_INTERVAL_HOURS": "0"})
    try:
        with server.client(admin_key(server)) as api:
            before = api.get("/v1/predictions/top-customers")
            assert before.status_code == 409
            assert "touchpoints predict train ltv" in before.json()["detail"]
            for kind in ("ltv", "churn"):
                answer = api.post(f"/v1/predictions/{kind}/train", json={}, timeout=300)
                assert answer.status_code == 200, answer.text
            scored = api.post("/v1/predictions/score", timeout=300)
            assert scored.status_code == 200, scored.text
        yield server
    finally:
        server.stop()


def test_the_api_answers_figures_persons_and_refusals(trained: Server) -> None:
    with trained.client() as api:  # a read key: analytics and profiles
        overview = api.get("/v1/predictions").json()
        assert overview["ltv_persons"] > 100 and overview["churn_persons"] > 100
        assert overview["churn_model"]["metrics"]["model"]["auc"] > 0.8
        top = api.get("/v1/predictions/top-customers", params={"limit": 5}).json()["customers"]
        values = [c["predicted_clv_12m"] for c in top]
        assert values == sorted(values, reverse=True) and len(values) == 5
        person = api.get(f"/v1/predictions/persons/person:{top[0]['person']}").json()
        assert person["ltv"]["predicted_clv_12m"] == pytest.approx(values[0])
        # The same figures are traits of the person's profile, with their model and time.
        predicted = api.get(f"/v1/profiles/person:{top[0]['person']}").json()["predicted"]
        assert predicted["predicted_clv_12m"]["value"] == pytest.approx(values[0])
        assert predicted["p_alive"]["model_version"] == person["ltv"]["model_version"]
        if person["churn"] is not None:
            assert predicted["churn_risk"]["value"] == pytest.approx(person["churn"]["churn_risk"])
        never = api.get(f"/v1/profiles/user_id:{NEVER_CHOSE}").json()
        assert never["predicted"] == {}  # never chose: only the defaults, no predictions
        denied = api.get(f"/v1/predictions/persons/user_id:{DENIED}").json()
        assert denied["ltv"] is None and denied["churn"] is None
        refused = api.post("/v1/predictions/score")
        assert refused.status_code == 403
        bad = api.get("/v1/predictions/models", params={"kind": "nothing"})
        assert bad.status_code == 422 and "kind" in bad.text
        assert "paths" in api.get("/openapi.json").json()
        paths = api.get("/openapi.json").json()["paths"]
        assert {"/v1/predictions", "/v1/predictions/persons/{key}"} <= set(paths)
    with trained.client(trained.write_key) as api:
        assert api.get("/v1/predictions").status_code == 403


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_predictions_page_draws_the_apis_numbers(trained: Server, browser: Any) -> None:
    with trained.client() as api:
        overview = api.get("/v1/predictions").json()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    try:
        sign_in(page, trained, trained.read_key)
        page.wait_for_selector("nav")
        page.click("nav >> text=Predictions")
        page.wait_for_selector("h1:text('Predictions')")
        bars = chart_series(page, "clv-chart")[0]
        assert bars == [b["persons"] for b in overview["clv"]["buckets"]]
        lift = chart_series(page, "lift-chart")
        assert lift[0] == [round(d["lift"], 2) for d in overview["lift"]]
        stages = chart_series(page, "churn-stage-chart")[0]
        assert stages == [round(100 * g["mean_risk"], 2) for g in overview["churn_by_stage"]]
        assert chart_series(page, "calibration-chart")[0]
        assert (
            chart_series(page, "importance-chart")[0][0]
            == overview["feature_importance"][0]["points"]
        )
        assert page.locator("#top-customers tbody tr").count() == 10
        with page.expect_download() as download:
            page.click("#lift-chart figcaption a.csv")
        rows = _rows(download.value.path().read_text())
        assert [int(r["decile"]) for r in rows] == list(range(1, 11))
        screenshot(page, "predictions")
        # A person of the top list: the profile shows their figures and churn reasons.
        page.click("#top-customers tbody tr:first-child a")
        page.wait_for_selector("#predictions")
        assert page.inner_text("#clv")
        # In German, the reasons are German sentences.
        page.click("#languages a[data-lang=de]")
        page.wait_for_selector("#predictions")
        if page.locator("#churn-reasons").count():
            assert "Punkte" in page.inner_text("#churn-reasons")
        page.goto(f"{trained.url}/predictions")
        assert "Abwanderungsrisiko" in page.inner_text("main")
    finally:
        context.close()
