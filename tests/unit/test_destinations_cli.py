"""``touchpoints destinations``: every command through the API (in process, no server)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cli


def test_destinations_commands_go_through_the_api(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli("init", data_dir=data).returncode == 0
    added = cli(
        "destinations",
        "add",
        "webhook",
        "crm",
        "--url",
        "https://hooks.example.com/in",
        "--purpose",
        "marketing",
        data_dir=data,
    )
    assert added.returncode == 0, added.stderr
    assert "added destination 1 (webhook, crm)" in added.stdout
    secret = added.stdout.split("signing secret (shown once): ")[1].strip()
    assert secret.startswith("whsec_")
    shown = cli("destinations", "show", "1", data_dir=data)
    assert "hooks.example.com" in shown.stdout and secret not in shown.stdout
    assert "marketing" in shown.stdout
    listed = json.loads(cli("destinations", "list", "--json", data_dir=data).stdout)
    assert [d["name"] for d in listed["destinations"]] == ["crm"]
    assert secret not in json.dumps(listed)
    sent = cli("destinations", "test", "1", data_dir=data)
    assert "is in the outbox" in sent.stdout
    disabled = cli("destinations", "disable", "1", "--reason", "maintenance", data_dir=data)
    assert "disabled" in disabled.stdout
    show = json.loads(cli("destinations", "show", "1", "--json", data_dir=data).stdout)
    assert (show["state"], show["state_reason"], show["pending"]) == ("disabled", "maintenance", 1)
    assert "enabled" in cli("destinations", "enable", "1", data_dir=data).stdout
    assert cli("destinations", "deliveries", "--json", data_dir=data).returncode == 0
    dead = json.loads(cli("destinations", "dead-letters", "--json", data_dir=data).stdout)
    assert dead == {"messages": []}
    assert "0 dead letters" in cli("destinations", "replay", "1", data_dir=data).stdout
    wrong = cli("destinations", "add", "webhook", "x", data_dir=data)
    assert wrong.returncode == 1 and "config.url" in wrong.stderr
    nothing = cli("destinations", "show", "9", data_dir=data)
    assert nothing.returncode == 1 and "no destination 9" in nothing.stderr
