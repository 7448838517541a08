"""``touchpoints triggers``: every command through the API (in process, no server),
definitions read from YAML files; a mistake printed with its place."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cli


def test_triggers_commands_go_through_the_api(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli("init", data_dir=data).returncode == 0
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("key: viewed\nname: Viewed\nwhen: {event: Viewed}\nsteps:\n  - delay: 5x\n")
    refused = cli("triggers", "create", str(wrong), data_dir=data)
    assert refused.returncode != 0
    assert "steps[0].delay: give a duration" in refused.stdout + refused.stderr
    good = tmp_path / "viewed.yaml"
    good.write_text(
        "key: viewed\nname: Viewed\nwhen:\n  event: Viewed\nsteps:\n  - delay: 2h\n"
        "limit: {times: 1, per: 1d}\n"
    )
    checked = cli("triggers", "check", str(good), data_dir=data)
    assert "trigger viewed is valid: event Viewed → wait 2h (at most 1 per 1d)" in checked.stdout
    made = cli("triggers", "create", str(good), data_dir=data)
    assert made.returncode == 0, made.stderr
    events = tmp_path / "events.jsonl"
    events.write_text(
        json.dumps({"type": "track", "userId": "anna", "event": "Viewed", "messageId": "m1"})
    )
    assert cli("import", str(events), data_dir=data).returncode == 0
    listed = json.loads(cli("triggers", "list", "--json", data_dir=data).stdout)
    assert [(t["key"], t["fired"], t["waiting"]) for t in listed["triggers"]] == [("viewed", 1, 1)]
    firings = cli("triggers", "firings", "--person", "user_id:anna", data_dir=data).stdout
    assert "viewed" in firings and "waiting" in firings and "event Viewed" in firings
    assert "(disabled)" in cli("triggers", "disable", "viewed", data_dir=data).stdout
    shown = json.loads(cli("triggers", "show", "viewed", "--json", data_dir=data).stdout)
    assert shown["enabled"] is False
    assert cli("triggers", "delete", "viewed", data_dir=data).returncode == 0
    assert json.loads(cli("triggers", "list", "--json", data_dir=data).stdout)["triggers"] == []


def test_on_entered_reads_as_the_key_on_and_a_number_key_is_refused(tmp_path: Path) -> None:
    """YAML 1.1 reads ``on`` as true: ``on: entered`` crashed the command (a key that is not
    text cannot be sent as JSON). Definitions read booleans as YAML 1.2 does (true, false),
    and a key that is not a name is refused by its place."""
    data = tmp_path / "data"
    assert cli("init", data_dir=data).returncode == 0
    audience = tmp_path / "audience.yaml"
    audience.write_text("key: viewers\nname: Viewers\ncondition: {event: Viewed}\n")
    assert cli("audiences", "create", str(audience), data_dir=data).returncode == 0
    entered = tmp_path / "entered.yaml"
    entered.write_text(
        "key: welcome\nname: Welcome\nwhen: {audience: viewers, on: exited}\n"
        "steps:\n  - set_trait: welcomed\n    value: yes\n"
    )
    made = cli("triggers", "create", str(entered), data_dir=data)
    assert made.returncode == 0, made.stdout + made.stderr
    shown = json.loads(cli("triggers", "show", "welcome", "--json", data_dir=data).stdout)
    definition = json.dumps(shown)
    assert '"exited"' in definition and '"yes"' in definition  # not True, not the default
    numbered = tmp_path / "numbered.yaml"
    numbered.write_text("key: odd\nname: Odd\nwhen: {event: Viewed}\nsteps:\n  - 1: x\n")
    refused = cli("triggers", "create", str(numbered), data_dir=data)
    assert refused.returncode == 1
    assert "steps[0]: the key 1 is not a name (quote it)" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
