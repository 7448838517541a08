"""The Personalisation page, in process: placements with their rules, the decisions made
and the control-group uplift, in English and German; no person named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import AppServer, dashboard_sign_in, start_app
from touchpoints.activate.decide import decide_query

GRANTED = {"consent": {"categoryPreferences": {"personalisation": True}}}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppServer]:
    found = start_app(tmp_path / "data")
    yield found
    found.stop()


def test_the_page_shows_placements_rules_and_uplift_in_both_languages(app: AppServer) -> None:
    tp = app.tp
    tp.placements.create(
        {
            "key": "home_hero",
            "name": "Home page hero",
            "control_percent": 50,
            "conversion_event": "Order Completed",
            "default": {"headline": "Welcome"},
            "rules": [
                {"key": "gold", "condition": {"trait": "plan", "equals": "gold"},
                 "content": {"headline": "Gold service"}},
            ],
        }
    )  # fmt: skip
    users = [f"u{n}" for n in range(40)]
    batch = [{"type": "identify", "userId": u, "traits": {"plan": "gold"}, "context": GRANTED}
             for u in users]  # fmt: skip
    tp.write_rows(tp.judge({"batch": batch}, "batch", source="t").rows)
    app.wait_idle()
    tp.identity.catch_up()
    for user in users:
        tp.decider.decide(decide_query({"placement": "home_hero", "userId": user}), False)
    uplift = tp.placements.uplift("home_hero")
    assert uplift.treatment.persons + uplift.control.persons == 40
    with app.client(app.admin_key()) as http:
        assert dashboard_sign_in(http, app.read_key).status_code == 303
        page = http.get("/personalisation")
        assert page.status_code == 200
        text = page.text
        assert 'data-placement="home_hero"' in text and 'data-rule="gold"' in text
        assert "Order Completed within 30 days" in text
        assert "{&#34;equals&#34;:&#34;gold&#34;,&#34;trait&#34;:&#34;plan&#34;}" in text
        assert "Gold service" in text and "Control-group uplift" in text
        assert f"rule gold {uplift.treatment.persons}" in text
        # Nobody converted: both rates 0, an interval around 0.
        assert "Uplift 0.0 percentage points" in text
        assert "The interval includes zero: no difference shown yet." in text
        assert "person:" not in text
        assert "<script>" not in text and "style=" not in text
        http.get("/language/de", follow_redirects=True)
        german = http.get("/personalisation").text
        assert "Personalisierung" in german and "Kontrollgruppe" in german
        assert "Regeln" in german and "Das Intervall schließt die Null ein" in german
