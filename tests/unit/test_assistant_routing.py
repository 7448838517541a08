"""Routing rules over who the customer is: audience membership (as the audiences'
evaluation left it) and the person's predictions (churn risk, its percentile, lifetime
value) from a real training and scoring run; a high-value customer at risk goes to the
retention team first, others to the rules after it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from conftest import AppServer, cli, dashboard_sign_in, start_app
from shop import END, START, shop
from touchpoints.assist.routing import Facts, Routing
from touchpoints.assist.verification import user_hash
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

SECRET = "routing-test-secret-of-some-length"

ROUTING = """
teams:
  - {name: retention, de: Kundenbindung, en: Retention}
  - {name: vip, de: Premium, en: Premium}
  - {name: support, de: Kundenservice, en: Customer service}
rules:
  - name: high-value customers at risk go to the retention team first
    when: {audience: valuable_at_risk}
    team: retention
    priority: urgent
  - name: the riskiest fifth of the rest
    when: {churn_percentile: {gte: 80}, not_audience: valuable_at_risk}
    team: vip
    priority: high
default: {team: support, priority: normal}
"""


def _routing(text: str) -> Routing:
    import yaml

    return Routing.model_validate(yaml.safe_load(text))


def test_audience_conditions_hold_for_members_only() -> None:
    routing = _routing(ROUTING)
    member = routing.route(Facts(audiences=frozenset({"valuable_at_risk", "newsletter"})))
    assert (member.team, member.priority, member.rule) == (
        "retention",
        "urgent",
        "high-value customers at risk go to the retention team first",
    )
    risky = routing.route(Facts(churn_percentile=91.0, audiences=frozenset({"newsletter"})))
    assert (risky.team, risky.rule) == ("vip", "the riskiest fifth of the rest")
    # A customer without a percentile (never scored, anonymous) fails the number's test.
    assert routing.route(Facts()).team == "support"
    assert routing.route(Facts(churn_percentile=50.0)).team == "support"


def test_a_rule_naming_a_bad_audience_key_is_refused_with_its_place() -> None:
    with pytest.raises(ValidationError) as caught:
        _routing(ROUTING.replace("{audience: valuable_at_risk}", "{audience: [ok, Not-A-Key]}"))
    text = str(caught.value)
    assert "rules.0.when.audience" in text and "'Not-A-Key' is not an audience's key" in text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The predictions' shop, trained and scored through the CLI, served with routing rules
    over an audience of valuable customers at risk."""
    path = tmp_path_factory.mktemp("routing") / "data"
    assert cli("init", data_dir=path).returncode == 0
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    with Touchpoints(load_settings(path)) as tp:
        messages = shop(today - (END - START))
        for first in range(0, len(messages), 2000):
            outcome = tp.judge({"batch": messages[first : first + 2000]}, "import", source="t")
            assert not outcome.rejected
            tp.write_rows(outcome.rows)
    trained = cli("predict", "train", data_dir=path)
    assert trained.returncode == 0, trained.stderr
    scored = cli("predict", "score", data_dir=path)
    assert scored.returncode == 0, scored.stderr
    (path / "routing.yaml").write_text(ROUTING)
    found = start_app(path, assistant_routing="routing.yaml", assistant_identity_secret=SECRET)
    found.tp.assistant.understanding.warm()
    yield found
    found.stop()


def _scores(served: AppServer) -> list[tuple[int, float, float, float]]:
    """(person, lifetime value, churn risk, percentile) of everyone scored."""
    return served.tp.warehouse.fetchall(
        "SELECT l.person, l.predicted_clv_12m, c.churn_risk, c.churn_percentile "
        "FROM predictions l JOIN churn_scores c USING (person) "
        "WHERE l.predicted_clv_12m IS NOT NULL ORDER BY l.person"
    )


def _user_id(served: AppServer, person: int) -> str:
    profile = served.tp.profiles.get(person)
    return profile.identifiers["user_id"][0].value


def _ask_for_a_person(served: AppServer, user: str) -> dict[str, Any]:
    """The summary of a new conversation handed over at once."""
    return _handed_over(served, user)[1]


def _handed_over(served: AppServer, user: str) -> tuple[str, dict[str, Any]]:
    with served.client(served.write_key) as widget:
        said = widget.post(
            "/v1/assistant/messages",
            json={
                "text": "Bitte verbinden Sie mich mit einem Mitarbeiter",
                "user_id": user,
                "user_hash": user_hash(SECRET, user),
            },
        )
    assert said.status_code == 200, said.text
    assert said.json()["state"] == "queued", said.json()
    with served.client(served.admin_key()) as agent:
        detail = agent.get(f"/v1/assistant/conversations/{said.json()['conversation']}")
    assert detail.status_code == 200, detail.text
    summary: dict[str, Any] = detail.json()["summary"]
    return said.json()["conversation"], summary


def test_a_valuable_customer_at_risk_goes_to_retention_while_in_the_audience(
    served: AppServer,
) -> None:
    scores = _scores(served)
    assert len(scores) > 100
    # The audience's thresholds from the scores: the customer with the most value at risk
    # is in it; the definition is the operator's (an audience over predictions).
    top = max(scores, key=lambda row: row[1] * row[2])
    definition = {
        "key": "valuable_at_risk",
        "name": "Valuable customers at risk",
        "condition": {
            "and": [
                {"prediction": "predicted_clv_12m", "gte": round(top[1] * 0.999, 4)},
                {"prediction": "churn_risk", "gte": round(top[2] * 0.999, 6)},
            ]
        },
    }
    with served.client(served.admin_key()) as admin:
        created = admin.post("/v1/audiences", json=definition)
        assert created.status_code in (200, 201), created.text
        members = admin.get("/v1/audiences/valuable_at_risk/members").json()
    persons = {int(m["person"].split(":")[1]) for m in members["members"]}
    assert top[0] in persons
    conversation, summary = _handed_over(served, _user_id(served, top[0]))
    assert (summary["team"], summary["priority"]) == ("retention", "urgent")
    assert summary["rule"] == "high-value customers at risk go to the retention team first"
    assert "valuable_at_risk" in summary["audiences"]
    assert summary["clv"] == pytest.approx(top[1]) and summary["churn_risk"] == pytest.approx(
        top[2]
    )
    # The agent console shows the audiences beside the scores, in German.
    admin = served.admin_key()
    with served.client(admin) as http:
        assert dashboard_sign_in(http, admin).status_code == 303
        http.get("/language/de", follow_redirects=True)
        page = http.get("/assistant", params={"conversation": conversation})
    assert page.status_code == 200
    assert 'id="summary-audiences">valuable_at_risk' in page.text
    assert "Perzentil des Abwanderungsrisikos" in page.text
    # Someone of the riskiest fifth outside the audience: the next rule.
    risky = next(row for row in scores if row[3] >= 85 and row[0] not in persons)
    other = _ask_for_a_person(served, _user_id(served, risky[0]))
    assert (other["team"], other["rule"]) == ("vip", "the riskiest fifth of the rest")
    assert other["audiences"] == [] and other["churn_percentile"] == pytest.approx(risky[3])
    # And a calm one: the default.
    calm = next(row for row in scores if row[3] < 50 and row[0] not in persons)
    assert _ask_for_a_person(served, _user_id(served, calm[0]))["team"] == "support"
    # Nobody is valuable enough now: the member leaves at the evaluation, and the route
    # follows.
    with served.client(served.admin_key()) as admin:
        changed = admin.put(
            "/v1/audiences/valuable_at_risk",
            json={
                "key": "valuable_at_risk",
                "name": "Valuable customers at risk",
                "condition": {"prediction": "predicted_clv_12m", "gte": 10_000_000},
            },
        )
        assert changed.status_code == 200, changed.text
        assert admin.get("/v1/audiences/valuable_at_risk/members").json()["members"] == []
    summary = _ask_for_a_person(served, _user_id(served, top[0]))
    assert summary["team"] != "retention" and "valuable_at_risk" not in summary["audiences"]
