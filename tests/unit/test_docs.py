"""The documentation lists what the code has: every setting, every channel, every CLI command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from touchpoints.channels import CHANNELS
from touchpoints.config import DEFAULT_CONFIG_TOML, Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_setting_is_documented_with_its_default() -> None:
    text = (DOCS / "configuration.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", text, re.M))
    assert set(rows) == set(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, bool):
            shown = str(default).lower()
        elif isinstance(default, Path | str | int | float):
            shown = str(default)
        else:
            continue
        assert shown.lstrip("./") in rows[name], (name, shown, rows[name])


def test_the_commented_default_config_names_every_setting_with_its_default() -> None:
    # Uncommenting the "# name = value" lines must give exactly the defaults.
    lines = re.findall(r"^# (\w+ = .*)$", DEFAULT_CONFIG_TOML, re.M)
    shown = tomllib.loads("\n".join(lines))
    shown = {key: value for key, value in shown.items() if key in Settings.model_fields}
    # TOML has no null: a setting that is unset by default is shown as "# name: unset …".
    unset = {name for name, field in Settings.model_fields.items() if field.default is None}
    for name in unset:
        assert re.search(rf"^# {name}: unset", DEFAULT_CONFIG_TOML, re.M), name
    # Tables of several lines are described instead: shown as "# name: …".
    described = {"consent_purposes"}
    for name in described:
        assert re.search(rf"^# {name}: ", DEFAULT_CONFIG_TOML, re.M), name
    expected = set(Settings.model_fields) - {"data_dir", "channel_rules"} - unset - described
    assert set(shown) == expected
    defaults = Settings.model_construct()
    for name, value in shown.items():
        assert getattr(defaults, name) == value, name


def test_every_channel_is_documented() -> None:
    text = (DOCS / "channels.md").read_text()
    for channel in CHANNELS:
        assert f"`{channel}`" in text, channel


def test_privacy_doc_names_every_personal_table_and_privacy_command() -> None:
    from touchpoints.cli.privacy import privacy_app
    from touchpoints.warehouse.personal import PERSONAL

    text = (DOCS / "privacy.md").read_text()
    for table in PERSONAL:
        assert f"`{table.name}`" in text, table.name
    for command in privacy_app.registered_commands:
        name = command.name or (command.callback.__name__ if command.callback else "")
        assert f"touchpoints privacy {name}" in text, name


def test_access_names_every_role_permission_and_audited_action() -> None:
    from touchpoints.access.roles import ALL, KEY_PERMISSIONS, USER_PERMISSIONS

    text = (DOCS / "access.md").read_text()
    permissions = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|$", text, re.M))
    assert set(permissions) == ALL
    # The two role tables say what roles.py says, tick for tick.
    header = re.search(r"^\| role \| (.+) \|$", text, re.M)
    assert header
    columns = [name.strip(" `") for name in header[1].split("|")]
    assert set(columns) == ALL
    rows = {
        role: {p for p, cell in zip(columns, cells.split("|"), strict=True) if "✓" in cell}
        for role, cells in re.findall(r"^\| `(\w+)` \| (.*) \|$", text, re.M)
        if role not in ALL or cells.count("|") == len(columns) - 1
    }
    for role, granted in [*KEY_PERMISSIONS.items(), *USER_PERMISSIONS.items()]:
        assert rows[role] == granted, role
    from touchpoints.web.pages.audit import ACTIONS

    for action in ACTIONS:
        if not action.endswith("."):
            assert f"`{action}`" in text, action


def test_security_md_names_only_real_settings_and_every_limit_and_real_tests() -> None:
    """docs/security.md as a contract: a `snake_case` name it shows that looks like a setting
    is one; every setting that bounds a request, a connection or TLS is described there;
    every test file it lists exists."""
    text = (DOCS / "security.md").read_text()
    fields = set(Settings.model_fields)
    shown = set(re.findall(r"`([a-z]+(?:_[a-z]+)+)`", text))
    setting_like = re.compile(r"^(max|rate|tls|trusted|keep|header|body)_")
    assert {name for name in shown if setting_like.match(name)} <= fields
    limits = {name for name in fields if setting_like.match(name)}
    assert limits - shown == set(), limits - shown
    root = DOCS.parent
    listed = re.findall(r"`(tests/[\w/]+\.py)`", text)
    assert len(listed) >= 8
    assert [path for path in listed if not (root / path).is_file()] == []


def test_destinations_doc_names_every_command_route_kind_setting_and_its_check_works() -> None:
    """docs/destinations.md as a contract: every command, route, kind and setting of
    destinations is there, and its hand-written signature check accepts what we sign."""
    from touchpoints.activate import KINDS, sign
    from touchpoints.activate.senders import new_webhook_secret
    from touchpoints.api.destinations import router
    from touchpoints.cli.destinations import destinations_app

    text = (DOCS / "destinations.md").read_text()
    for command in destinations_app.registered_commands:
        name = command.name or (command.callback.__name__ if command.callback else "")
        assert f"touchpoints destinations {name}" in text, name
    for route in router.routes:
        for method in route.methods:
            assert f"`{method} {route.path}`" in text, (method, route.path)
    for kind in KINDS:
        assert f"| `{kind}` |" in text, kind
    for name in Settings.model_fields:
        if name.startswith("destinations_"):
            assert f"`{name}`" in text, name
    example = re.search(r"```python\n(import base64.*?)```", text, re.S)
    assert example
    scope: dict[str, object] = {}
    exec(example[1], scope)
    verified = scope["verified"]
    secret, body = new_webhook_secret(), b'{"n": 1}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": sign(secret, "msg_1", 1700000000, body),
    }
    assert verified(secret, headers, body)
    assert not verified(secret, headers, body + b" ")


def test_audiences_doc_names_every_command_route_setting_and_its_definitions_work(
    tmp_path: Path,
) -> None:
    """docs/audiences.md as a contract: every command, route and setting of audiences and
    computed traits is there, and every definition it shows is accepted, in order, by a real
    data directory (the audiences name the traits and audiences shown before them)."""
    import json

    import yaml

    from touchpoints.api.audiences import router
    from touchpoints.cli.audiences import audiences_app, traits_app
    from touchpoints.core import Touchpoints

    text = (DOCS / "audiences.md").read_text()
    for group, typer_app in (("audiences", audiences_app), ("traits", traits_app)):
        for command in typer_app.registered_commands:
            name = command.name or (command.callback.__name__ if command.callback else "")
            assert f"touchpoints {group} {name}" in text, name
    for route in router.routes:
        for method in route.methods:
            assert f"`{method} {route.path}`" in text, (method, route.path)
    for name in Settings.model_fields:
        if name.startswith("audiences_"):
            assert f"`{name}`" in text, name
    blocks = re.findall(r"```(yaml|json)\n(.*?)```", text, re.S)
    definitions = [
        yaml.safe_load(body) if kind == "yaml" else json.loads(body) for kind, body in blocks
    ]
    definitions = [d for d in definitions if isinstance(d, dict) and "key" in d]
    assert len(definitions) >= 7
    from touchpoints.config import load_settings

    with Touchpoints.open(load_settings(tmp_path / "data")) as tp:
        for definition in definitions:
            if "kind" in definition:
                assert tp.traits.create(definition).key == definition["key"]
            else:
                assert tp.audiences.create(definition).key == definition["key"]


def test_triggers_doc_names_every_command_and_route() -> None:
    from touchpoints.api.triggers import router
    from touchpoints.cli.triggers import triggers_app

    text = (DOCS / "triggers.md").read_text()
    for command in triggers_app.registered_commands:
        name = command.name or (command.callback.__name__ if command.callback else "")
        assert f"touchpoints triggers {name}" in text, name
    for route in router.routes:
        for method in route.methods:
            assert f"`{method} {route.path}`" in text, (method, route.path)


def test_personalisation_doc_names_every_command_and_route_and_its_placement_works(
    tmp_path: Path,
) -> None:
    """docs/personalisation.md as a contract: every placements command, route and reason is
    there, and the placement it shows is accepted by a real data directory (with the
    audience it names) and decides as it says."""
    import yaml

    from touchpoints.activate.decide import decide_query
    from touchpoints.activate.decide.results import REASONS
    from touchpoints.api.placements import router
    from touchpoints.cli.placements import placements_app
    from touchpoints.config import load_settings
    from touchpoints.core import Touchpoints

    text = (DOCS / "personalisation.md").read_text()
    for command in placements_app.registered_commands:
        name = command.name or (command.callback.__name__ if command.callback else "")
        assert f"touchpoints placements {name}" in text, name
    assert "touchpoints decide " in text
    for route in router.routes:
        for method in route.methods:
            assert f"`{method} {route.path}`" in text or f"{method} {route.path}\n" in text, (
                method,
                route.path,
            )
    for reason in REASONS:
        assert f"| `{reason}` |" in text, reason
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    placement = next(b for b in blocks if isinstance(b, dict) and "rules" in b)
    with Touchpoints.open(load_settings(tmp_path / "data")) as tp:
        tp.audiences.create(
            {"key": "configurators", "name": "C",
             "condition": {"event": "Configuration Saved", "at_least": 2}}
        )  # fmt: skip
        assert tp.placements.create(placement).key == "home_hero"
        consent = {"consent": {"categoryPreferences": {"personalisation": True}}}
        batch = [
            {"type": "track", "anonymousId": "9f1c", "event": "Configuration Saved",
             "context": consent}
            for _ in range(2)
        ]  # fmt: skip
        tp.write_rows(tp.judge({"batch": batch}, "batch", source="docs").rows)
        tp.evaluation.catch_up()
        found = tp.decider.decide(
            decide_query({"placement": "home_hero", "anonymousId": "9f1c"}), False
        )
        if found.reason == "control":  # the hash put this visitor in the 10 %
            assert found.content == placement["default"]
        else:
            assert (found.rule, found.content) == ("test_drive", placement["rules"][0]["content"])
