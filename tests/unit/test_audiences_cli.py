"""``touchpoints traits`` and ``touchpoints audiences``: every command through the API (in
process, no server), definitions read from YAML and JSON files and standard input."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cli


def test_traits_and_audiences_commands_go_through_the_api(tmp_path: Path) -> None:
    data = tmp_path / "data"
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            json.dumps(
                {"type": "track", "userId": user, "event": "Viewed", "messageId": f"m{n}",
                 "timestamp": "2026-05-01T10:00:00Z", "properties": {"price": price}}
            )
            for n, (user, price) in enumerate([("anna", 10), ("anna", 30), ("ben", 5)])
        )
    )  # fmt: skip
    assert cli("init", data_dir=data).returncode == 0
    imported = cli("import", str(events), data_dir=data)
    assert imported.returncode == 0, imported.stderr
    trait = tmp_path / "trait.yaml"
    trait.write_text("key: spent\nname: Spent\nkind: sum\nevent: Viewed\nproperty: price\n")
    made = cli("traits", "create", str(trait), data_dir=data)
    assert made.returncode == 0, made.stderr
    assert (
        "computed trait spent: sum of price of Viewed, ever; 2 persons have a value" in made.stdout
    )
    listed = json.loads(cli("traits", "list", "--json", data_dir=data).stdout)
    assert [(t["key"], t["persons"]) for t in listed["traits"]] == [("spent", 2)]
    values = cli("traits", "values", "spent", data_dir=data).stdout
    assert "2 persons have spent" in values and "40" in values
    person = cli("traits", "person", "user_id:anna", data_dir=data).stdout
    assert "spent" in person and "40" in person
    audience = tmp_path / "big.json"
    audience.write_text(
        json.dumps({"key": "big", "name": "Big", "condition": {"computed_trait": "spent",
                                                               "gte": 20}})
    )  # fmt: skip
    created = cli("audiences", "create", str(audience), data_dir=data)
    assert created.returncode == 0, created.stderr
    assert "audience big: 1 members" in created.stdout
    preview = tmp_path / "preview.yaml"
    preview.write_text("event: Viewed\n")
    assert "2 of 2 persons" in cli("audiences", "preview", str(preview), data_dir=data).stdout
    shown = json.loads(cli("audiences", "show", "big", "--json", data_dir=data).stdout)
    assert shown["size"] == 1 and shown["condition"] == {"computed_trait": "spent", "gte": 20}
    members = cli("audiences", "members", "big", data_dir=data).stdout
    assert "1 members" in members and "person:1" in members
    assert "entered" in cli("audiences", "history", "big", data_dir=data).stdout
    assert "+1 -0" in cli("audiences", "sizes", "big", data_dir=data).stdout
    assert "in big since" in cli("audiences", "person", "user_id:anna", data_dir=data).stdout
    done = cli("audiences", "evaluate", data_dir=data)
    assert "1 audiences, 1 computed traits: 0 entered, 0 exited" in done.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: bad\nname: Bad\ncondition:\n  event: Viewed\n  at_least: -2\n")
    refused = cli("audiences", "create", str(bad), data_dir=data)
    assert refused.returncode == 1
    assert "condition.event.at_least: Input should be greater than or equal to 0" in refused.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: [unclosed\n")
    refused = cli("audiences", "create", str(broken), data_dir=data)
    assert refused.returncode == 1 and "line 2" in refused.stderr
    missing = cli("audiences", "create", str(tmp_path / "nope.yaml"), data_dir=data)
    assert missing.returncode == 1 and "no such file" in missing.stderr
    refused = cli("traits", "delete", "spent", data_dir=data)
    assert refused.returncode == 1 and "is in the audiences big" in refused.stderr
    assert "audience big deleted" in cli("audiences", "delete", "big", data_dir=data).stdout
    assert "computed trait spent deleted" in cli("traits", "delete", "spent", data_dir=data).stdout
    hook = cli(
        "destinations", "add", "webhook", "crm", "--url", "https://hooks.example.com/in",
        data_dir=data,
    )  # fmt: skip
    assert hook.returncode == 0
    audience.write_text(json.dumps({"key": "all", "name": "All", "condition": {"event": "Viewed"}}))
    assert cli("audiences", "create", str(audience), data_dir=data).returncode == 0
    sent = cli("audiences", "send", "all", "1", "--mode", "track", data_dir=data)
    assert "is sent to destination 1 (track): 2 messages" in sent.stdout
    listing = cli("audiences", "list", data_dir=data).stdout
    assert "1 (track)" in listing
    stopped = cli("audiences", "stop-sending", "all", "1", data_dir=data)
    assert "no longer sent to destination 1" in stopped.stdout
