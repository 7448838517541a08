"""Next best action rules: chosen by priority with their reasons, mistakes in the YAML named
with their place (or line) and reason, a bad file stops the start naming the setting, and the
route: 409 without rules, the person's actions (audited) with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from touchpoints.api.app import create_app
from touchpoints.cli.client import in_process_client
from touchpoints.config import ConfigError, load_settings
from touchpoints.core import Touchpoints
from touchpoints.predictions.actions import ActionRulesError, choose, load_actions

RULES = """\
actions:
  - name: win-back call
    action: call
    channel: phone
    priority: 10
    reason: a valuable customer is slipping away
    when:
      churn_risk: {at_least: 0.6}
      predicted_clv_12m: {at_least: 500}
  - name: accessory offer
    action: offer
    priority: 5
    when:
      stage: {equals: purchase}
  - name: newsletter
    action: email
    when:
      p_alive: {at_least: 0.2, below: 0.9}
"""


def _rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "actions.yaml"
    path.write_text(text)
    return path


def test_the_rules_that_apply_come_by_priority_with_their_reasons(tmp_path: Path) -> None:
    rules = load_actions(_rules(tmp_path, RULES))
    figures = {"churn_risk": 0.72, "predicted_clv_12m": 810.0, "stage": "purchase", "p_alive": 0.95}
    found = choose(rules, 17, figures)
    assert [a.name for a in found.actions] == ["win-back call", "accessory offer"]
    assert found.actions[0].because == [
        "churn_risk 0.72 (≥ 0.6)",
        "predicted_clv_12m 810 (≥ 500)",
    ]
    assert found.actions[0].channel == "phone"
    assert choose(rules, 17, {"p_alive": 0.5}).actions[0].name == "newsletter"
    assert choose(rules, 17, {}).actions == []  # no figures: no rule holds


def test_everyone_at_once_chooses_what_each_person_alone_would(tmp_path: Path) -> None:
    """Scoring chooses for everyone with choose_all (masks over columns); a person's live
    answer with choose: the same rules, in the same order, with the same reasons."""
    import pyarrow as pa

    from touchpoints.predictions.actions import NAMES, NUMBERS, choose_all

    rules = load_actions(_rules(tmp_path, RULES))
    people = [
        {"churn_risk": 0.72, "predicted_clv_12m": 810.0, "stage": "purchase", "p_alive": 0.95},
        {"churn_risk": 0.72, "predicted_clv_12m": 499.0, "stage": "purchase", "p_alive": 0.5},
        {"churn_risk": 0.1, "predicted_clv_12m": None, "stage": None, "p_alive": 0.9},
        {"churn_risk": None, "predicted_clv_12m": 900.0, "stage": "retention", "p_alive": 0.2},
        {},
    ]
    columns = {"person": pa.array(range(len(people)), pa.int64())}
    for name in NUMBERS:
        columns[name] = pa.array([p.get(name) for p in people], pa.float64())
    for name in NAMES:
        columns[name] = pa.array([p.get(name) for p in people], pa.string())
    persons, found = choose_all(rules, pa.table(columns))
    alone = {
        n: [
            a.model_dump()
            for a in choose(rules, n, {k: v for k, v in p.items() if v is not None}).actions
        ]
        for n, p in enumerate(people)
    }
    assert persons == [0, 1, 3]
    assert dict(zip(persons, found, strict=True)) == {n: a for n, a in alone.items() if a}
    assert [a["name"] for a in found[0]] == ["win-back call", "accessory offer"]
    assert found[0][1]["because"] == ["stage = purchase"]
    assert [a["name"] for a in found[2]] == ["newsletter"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("actions:\n  - name: a\n    action: call\n    when:\n      churn: {at_least: 1}\n",
         "actions[0].when: 'churn' is no figure; give one of p_alive"),
        ("actions:\n  - name: a\n    action: call\n    when:\n"
         "      churn_risk: {at_least: 0.6, below: 0.2}\n",
         "actions[0].when.churn_risk: below (0.2) must be more than at_least (0.6)"),
        ("actions:\n  - name: a\n    action: call\n    when:\n      stage: {at_least: 2}\n",
         "actions[0].when: stage: give equals (a stage by name)"),
        ("actions:\n  - name: a\n    action: call\n    when: {}\n",
         "actions[0].when: Dictionary should have at least 1 item"),
        ("actions:\n  - name: a\n    when:\n      p_alive: {below: 0.5}\n",
         "actions[0].action: Field required"),
        ("actions:\n  - name: a\n    action: [call\n",
         "is not valid YAML at line 4"),
    ],
)  # fmt: skip
def test_a_mistake_is_named_with_its_place_and_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ActionRulesError) as raised:
        load_actions(_rules(tmp_path, text))
    assert message in str(raised.value)


def test_a_bad_rules_file_stops_the_start_naming_the_setting(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "actions.yaml").write_text("actions: []\n")
    with pytest.raises(
        ConfigError, match=r"next_best_actions: .*actions: List should have at least 1"
    ):
        Touchpoints(load_settings(data_dir, next_best_actions="actions.yaml"))


def test_the_route_answers_a_persons_actions(tmp_path: Path) -> None:
    without = tmp_path / "without"
    with Touchpoints(load_settings(without)) as tp:
        _, read = tp.keys.create("read", "r")
        with in_process_client(create_app(tp), read) as client:
            refused = client.get("/v1/predictions/actions/person:1")
        assert refused.status_code == 409 and "next_best_actions" in refused.json()["detail"]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "actions.yaml").write_text(RULES)
    with Touchpoints(load_settings(data_dir, next_best_actions="actions.yaml")) as tp:
        outcome = tp.judge(
            {"batch": [{"type": "identify", "userId": "u1", "traits": {"city": "Kiel"}}]},
            "batch",
            source="t",
        )
        tp.write_rows(outcome.rows)
        _, read = tp.keys.create("read", "r")
        with in_process_client(create_app(tp), read) as client:
            found = client.get("/v1/predictions/actions/user_id:u1")
            assert found.status_code == 200, found.text
            assert found.json()["actions"] == []  # no predictions yet: no rule holds
            assert client.get("/v1/predictions/actions/user_id:nobody").status_code == 404
        lines = tp.warehouse.fetchall(
            "SELECT detail FROM audit_log WHERE action = 'profile.predictions'"
        )
        assert lines == [("actions",)]
