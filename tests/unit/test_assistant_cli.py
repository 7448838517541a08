"""touchpoints assistant: the CLI's commands go through the API (in process here)."""

from __future__ import annotations

from pathlib import Path

from conftest import cli


def test_ask_evaluate_and_the_queues_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli("init", data_dir=data).returncode == 0
    asked = cli("assistant", "ask", "Habt ihr am Samstag offen?", data_dir=data)
    assert asked.returncode == 0, asked.stderr
    assert "intent: opening_hours" in asked.stdout and "language: de" in asked.stdout
    assert "> Unser Kundenservice ist erreichbar: Mo–Fr 08:00-20:00" in asked.stdout
    unknown = cli(
        "assistant", "ask", "Wo ist meine Bestellung?", "--as", "email:x@y.z", data_dir=data
    )
    assert unknown.returncode == 1 and "no person has 'email:x@y.z'" in unknown.stderr
    evaluated = cli("assistant", "evaluate", "--seed", "3", data_dir=data)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "out-of-scope recall" in evaluated.stdout and "both" in evaluated.stdout
    queues = cli("assistant", "queues", data_dir=data)
    assert queues.returncode == 0 and "complaints" in queues.stdout
    missing = cli("assistant", "show", "conv_nope", data_dir=data)
    assert missing.returncode == 1 and "no conversation 'conv_nope'" in missing.stderr
