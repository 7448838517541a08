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
