"""``touchpoints placements`` and ``touchpoints decide``: every command through the API (in
process, no server), placements read from YAML files, mistakes answered with their place."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cli

HERO = """\
key: home_hero
name: Home page hero
control_percent: 0
conversion_event: Order Completed
default: {headline: Welcome}
rules:
  - key: gold
    condition: {trait: plan, equals: gold}
    content: {headline: Gold service}
"""


def test_placements_and_decide_commands_go_through_the_api(tmp_path: Path) -> None:
    data = tmp_path / "data"
    events = tmp_path / "events.jsonl"
    consent = {"consent": {"categoryPreferences": {"personalisation": True}}}
    events.write_text(
        "\n".join(
            json.dumps({"type": "identify", "userId": user, "messageId": f"m{n}",
                        "traits": {"plan": plan}, "context": consent})
            for n, (user, plan) in enumerate([("anna", "gold"), ("ben", "free")])
        )
    )  # fmt: skip
    assert cli("init", data_dir=data).returncode == 0
    assert cli("import", str(events), data_dir=data).returncode == 0
    source = tmp_path / "hero.yaml"
    source.write_text(HERO)
    made = cli("placements", "create", str(source), data_dir=data)
    assert made.returncode == 0, made.stderr
    assert "placement home_hero: first_match, 1 rules" in made.stdout
    gold = cli("decide", "home_hero", "user_id:anna", data_dir=data)
    assert gold.returncode == 0, gold.stderr
    assert '"headline": "Gold service"' in gold.stdout and "rule gold (rule" in gold.stdout
    other = json.loads(cli("decide", "home_hero", "user_id:ben", "--json", data_dir=data).stdout)
    assert (other["content"], other["reason"]) == ({"headline": "Welcome"}, "default")
    listed = json.loads(cli("placements", "list", "--json", data_dir=data).stdout)
    assert [(p["key"], p["decisions"]) for p in listed["placements"]] == [("home_hero", 2)]
    uplift = cli("placements", "uplift", "home_hero", data_dir=data).stdout
    assert "treatment" in uplift and "not yet (no persons in one of the groups)" in uplift
    source.write_text(HERO.replace("{trait: plan, equals: gold}", "{audience: nobody}"))
    bad = cli("placements", "change", "home_hero", str(source), data_dir=data)
    assert bad.returncode != 0
    assert "rules[0].condition: no audience nobody; there are none yet" in bad.stderr + bad.stdout
    assert cli("placements", "delete", "home_hero", data_dir=data).returncode == 0
    gone = cli("placements", "show", "home_hero", data_dir=data)
    assert gone.returncode != 0 and "no placement home_hero" in gone.stderr + gone.stdout
