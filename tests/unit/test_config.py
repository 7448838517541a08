"""Settings (src/touchpoints/config.py): defaults, TOUCHPOINTS_* environment, touchpoints.toml.

Precedence (docs/configuration.md): options, then environment, then the file, then defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from touchpoints.channels import ChannelRule
from touchpoints.config import (
    CONFIG_FILE_NAME,
    DEFAULT_CONFIG_TOML,
    ConfigError,
    load_settings,
    resolve_data_dir,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TOUCHPOINTS_* variable of the calling shell leaks in; relative paths land in tmp."""
    for name in list(os.environ):
        if name.upper().startswith("TOUCHPOINTS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def write_config(data_dir: Path, text: str) -> Path:
    path = data_dir / CONFIG_FILE_NAME
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults ------------------------------------------------------------------------------------


def test_defaults(data_dir: Path) -> None:
    settings = load_settings(data_dir)
    assert settings.data_dir == data_dir
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.max_event_bytes == 32_768
    assert settings.max_batch_bytes == 512_000
    assert settings.max_batch_events == 2500
    assert settings.max_message_id_length == 100
    assert settings.flush_interval_ms == 250
    assert settings.flush_max_events == 50_000
    assert settings.max_pending_events == 500_000
    assert settings.wal_fsync is False
    assert settings.wal_fsync_interval_ms == 2.0
    assert settings.channel_rules == []
    assert settings.builtin_channel_rules is True
    assert settings.log_level == "info"


def test_paths_derive_from_the_data_dir(data_dir: Path) -> None:
    settings = load_settings(data_dir)
    assert settings.database_path == data_dir / "touchpoints.duckdb"
    assert settings.wal_dir == data_dir / "wal"
    assert settings.config_path == data_dir / "touchpoints.toml"
    assert settings.server_file == data_dir / "server.json"
    assert settings.base_url == "http://127.0.0.1:8080"


def test_a_missing_data_dir_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "not-yet")
    assert settings.port == 8080
    assert settings.data_dir == tmp_path / "not-yet"


def test_the_default_data_dir() -> None:
    assert resolve_data_dir() == Path("touchpoints-data")
    assert load_settings().data_dir == Path("touchpoints-data")


def test_the_data_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("TOUCHPOINTS_DATA_DIR", str(data_dir))
    assert resolve_data_dir() == data_dir
    assert load_settings().data_dir == data_dir
    # an explicit data dir beats the environment
    assert resolve_data_dir("elsewhere") == Path("elsewhere")
    assert load_settings("elsewhere").data_dir == Path("elsewhere")


def test_the_file_of_the_environments_data_dir_is_read(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    write_config(data_dir, "port = 8123\n")
    monkeypatch.setenv("TOUCHPOINTS_DATA_DIR", str(data_dir))
    assert load_settings().port == 8123


def test_the_default_config_file_is_all_comments(data_dir: Path) -> None:
    assert tomllib.loads(DEFAULT_CONFIG_TOML) == {}
    write_config(data_dir, DEFAULT_CONFIG_TOML)
    settings = load_settings(data_dir)
    assert settings.port == 8080
    assert settings.channel_rules == []


# -- environment ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "setting", "expected"),
    [
        ("TOUCHPOINTS_HOST", "0.0.0.0", "host", "0.0.0.0"),
        ("TOUCHPOINTS_PORT", "9001", "port", 9001),
        ("TOUCHPOINTS_MAX_EVENT_BYTES", "2048", "max_event_bytes", 2048),
        ("TOUCHPOINTS_MAX_BATCH_BYTES", "1048576", "max_batch_bytes", 1_048_576),
        ("TOUCHPOINTS_MAX_BATCH_EVENTS", "10", "max_batch_events", 10),
        ("TOUCHPOINTS_MAX_MESSAGE_ID_LENGTH", "64", "max_message_id_length", 64),
        ("TOUCHPOINTS_FLUSH_INTERVAL_MS", "1000", "flush_interval_ms", 1000),
        ("TOUCHPOINTS_FLUSH_MAX_EVENTS", "7", "flush_max_events", 7),
        ("TOUCHPOINTS_MAX_PENDING_EVENTS", "1000000", "max_pending_events", 1_000_000),
        ("TOUCHPOINTS_WAL_FSYNC", "true", "wal_fsync", True),
        ("TOUCHPOINTS_WAL_FSYNC", "1", "wal_fsync", True),
        ("TOUCHPOINTS_WAL_FSYNC_INTERVAL_MS", "0.5", "wal_fsync_interval_ms", 0.5),
        ("TOUCHPOINTS_BUILTIN_CHANNEL_RULES", "false", "builtin_channel_rules", False),
        ("TOUCHPOINTS_LOG_LEVEL", "debug", "log_level", "debug"),
    ],
)
def test_environment_overrides_the_default(
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    variable: str,
    value: str,
    setting: str,
    expected: object,
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(data_dir), setting) == expected


def test_channel_rules_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.setenv(
        "TOUCHPOINTS_CHANNEL_RULES",
        '[{"field": "event", "in": ["Call Started"], "channel": "phone"}]',
    )
    rules = load_settings(data_dir).channel_rules
    assert rules == [ChannelRule(field="event", channel="phone", in_=["Call Started"])]


# -- touchpoints.toml ----------------------------------------------------------------------------


def test_the_config_file_in_the_data_dir_is_read(data_dir: Path) -> None:
    write_config(
        data_dir,
        'host = "0.0.0.0"\nport = 8090\nmax_pending_events = 1000000\nwal_fsync = true\n'
        'log_level = "warning"\nbuiltin_channel_rules = false\n',
    )
    settings = load_settings(data_dir)
    assert settings.host == "0.0.0.0"
    assert settings.port == 8090
    assert settings.max_pending_events == 1_000_000
    assert settings.wal_fsync is True
    assert settings.log_level == "warning"
    assert settings.builtin_channel_rules is False
    # what the file does not set keeps its default
    assert settings.max_batch_events == 2500


def test_a_config_file_elsewhere_is_not_read(tmp_path: Path, data_dir: Path) -> None:
    write_config(tmp_path, "port = 9999\n")  # the working directory, not the data dir
    assert load_settings(data_dir).port == 8080


def test_channel_rules_load_from_the_file(data_dir: Path) -> None:
    # the example of docs/channels.md
    write_config(
        data_dir,
        """
[[channel_rules]]
field = "context.library.name"
equals = "twilio-webhook"
channel = "sms"

[[channel_rules]]
field = "event"
in = ["Call Started", "Call Completed", "Callback Requested"]
channel = "phone"

[[channel_rules]]
field = "properties.touchpoint"
matches = "^(dealer|showroom)"
channel = "store"

[[channel_rules]]
field = "context.wallet"
exists = true
channel = "blockchain"
""",
    )
    rules = load_settings(data_dir).channel_rules
    assert rules == [
        ChannelRule(field="context.library.name", channel="sms", equals="twilio-webhook"),
        ChannelRule(
            field="event",
            channel="phone",
            in_=["Call Started", "Call Completed", "Callback Requested"],
        ),
        ChannelRule(field="properties.touchpoint", channel="store", matches="^(dealer|showroom)"),
        ChannelRule(field="context.wallet", channel="blockchain", exists=True),
    ]


# -- precedence ----------------------------------------------------------------------------------


def test_environment_beats_the_file(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    write_config(data_dir, "port = 8090\nwal_fsync = true\nmax_batch_events = 100\n")
    monkeypatch.setenv("TOUCHPOINTS_PORT", "9100")
    monkeypatch.setenv("TOUCHPOINTS_WAL_FSYNC", "false")
    settings = load_settings(data_dir)
    assert settings.port == 9100
    assert settings.wal_fsync is False
    assert settings.max_batch_events == 100  # not in the environment: the file still counts


def test_environment_channel_rules_replace_the_files(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    write_config(data_dir, '[[channel_rules]]\nfield = "event"\nequals = "a"\nchannel = "sms"\n')
    monkeypatch.setenv(
        "TOUCHPOINTS_CHANNEL_RULES", '[{"field": "event", "equals": "b", "channel": "chat"}]'
    )
    assert load_settings(data_dir).channel_rules == [
        ChannelRule(field="event", channel="chat", equals="b")
    ]


def test_options_beat_the_environment_and_the_file(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    write_config(data_dir, "port = 8090\n")
    monkeypatch.setenv("TOUCHPOINTS_PORT", "9100")
    assert load_settings(data_dir, port=7000).port == 7000


def test_an_option_of_none_is_not_given(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    write_config(data_dir, "port = 8090\n")
    assert load_settings(data_dir, port=None).port == 8090
    monkeypatch.setenv("TOUCHPOINTS_PORT", "9100")
    assert load_settings(data_dir, port=None, host=None).port == 9100


# -- invalid values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("TOUCHPOINTS_PORT", "0", "port"),
        ("TOUCHPOINTS_PORT", "65536", "port"),
        ("TOUCHPOINTS_PORT", "eighty", "port"),
        ("TOUCHPOINTS_MAX_EVENT_BYTES", "1023", "max_event_bytes"),
        ("TOUCHPOINTS_MAX_BATCH_EVENTS", "0", "max_batch_events"),
        ("TOUCHPOINTS_MAX_MESSAGE_ID_LENGTH", "7", "max_message_id_length"),
        ("TOUCHPOINTS_FLUSH_INTERVAL_MS", "-1", "flush_interval_ms"),
        ("TOUCHPOINTS_MAX_PENDING_EVENTS", "many", "max_pending_events"),
        ("TOUCHPOINTS_WAL_FSYNC", "perhaps", "wal_fsync"),
        ("TOUCHPOINTS_WAL_FSYNC_INTERVAL_MS", "-0.5", "wal_fsync_interval_ms"),
        ("TOUCHPOINTS_LOG_LEVEL", "verbose", "log_level"),
        ("TOUCHPOINTS_CHANNEL_RULES", '[{"field": "event"}]', "channel_rules"),
    ],
)
def test_an_invalid_environment_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, variable: str, value: str, setting: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=setting):
        load_settings(data_dir)


def test_channel_rules_that_are_not_json_raise_config_error(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.setenv("TOUCHPOINTS_CHANNEL_RULES", "not json")
    with pytest.raises(ConfigError, match="channel_rules"):
        load_settings(data_dir)


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        ('port = "x"\n', "port"),
        ("port = 0\n", "port"),
        ('log_level = "loud"\n', "log_level"),
        ("wal_fsync = 3\n", "wal_fsync"),
        ("max_batch_bytes = 10\n", "max_batch_bytes"),
        ("match_prior = 1.5\n", "match_prior"),
        ("match_prior = 0\n", "match_prior"),
        ('match_prior_rules = [["first_name", "zip"]]\n', "match_prior_rules"),
        ("match_prior_rules = [[]]\n", "match_prior_rules"),
        ("match_prior_rules = []\n", "match_prior_rules"),
    ],
)
def test_an_invalid_file_value_names_the_setting(data_dir: Path, text: str, setting: str) -> None:
    write_config(data_dir, text)
    with pytest.raises(ConfigError, match=setting) as raised:
        load_settings(data_dir)
    assert CONFIG_FILE_NAME in str(raised.value)


def test_every_bad_setting_is_named(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    write_config(data_dir, 'log_level = "loud"\n')
    monkeypatch.setenv("TOUCHPOINTS_PORT", "0")
    with pytest.raises(ConfigError) as raised:
        load_settings(data_dir)
    assert "port" in str(raised.value)
    assert "log_level" in str(raised.value)


def test_an_unknown_setting_in_the_file_is_named(data_dir: Path) -> None:
    write_config(data_dir, "prot = 8090\n")
    with pytest.raises(ConfigError, match="prot"):
        load_settings(data_dir)


def test_an_invalid_option_names_the_setting(data_dir: Path) -> None:
    with pytest.raises(ConfigError, match="port"):
        load_settings(data_dir, port=70_000)


def test_the_event_limit_must_not_exceed_the_batch_limit(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.setenv("TOUCHPOINTS_MAX_EVENT_BYTES", "600000")
    with pytest.raises(ConfigError, match="max_event_bytes must not exceed max_batch_bytes"):
        load_settings(data_dir)
    # raising the batch limit as well makes it valid
    monkeypatch.setenv("TOUCHPOINTS_MAX_BATCH_BYTES", "600000")
    assert load_settings(data_dir).max_event_bytes == 600_000


def test_a_file_that_is_not_toml(data_dir: Path) -> None:
    path = write_config(data_dir, "port = \n")
    with pytest.raises(ConfigError, match="not valid TOML") as raised:
        load_settings(data_dir)
    assert str(path) in str(raised.value)


def test_the_data_dir_cannot_be_set_in_its_own_file(data_dir: Path) -> None:
    write_config(data_dir, 'data_dir = "/somewhere/else"\n')
    with pytest.raises(ConfigError, match="data_dir"):
        load_settings(data_dir)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ('field = "event"\nequals = "a"\nchannel = "pigeon"\n', "channel_rules.1.channel"),
        ('field = "event"\nequals = "a"\nchannel = "pigeon"\n', "unknown channel 'pigeon'"),
        ('field = "event"\nequals = "a"\nmatches = "b"\nchannel = "sms"\n', "got equals, matches"),
        ('field = "event"\nchannel = "sms"\n', "got none"),
        ('field = "event"\nmatches = "(unclosed"\nchannel = "sms"\n', "regular expression"),
        ('field = "event"\nequals = "a"\nchannel = "sms"\nwhen = "always"\n', "when"),
        ('field = ""\nexists = true\nchannel = "sms"\n', "channel_rules.1.field"),
    ],
)
def test_invalid_channel_rules_name_the_rule(data_dir: Path, rule: str, expected: str) -> None:
    good = '[[channel_rules]]\nfield = "event"\nequals = "ok"\nchannel = "web"\n'
    write_config(data_dir, good + "\n[[channel_rules]]\n" + rule)
    with pytest.raises(ConfigError) as raised:
        load_settings(data_dir)
    assert "channel_rules.1" in str(raised.value)
    assert expected in str(raised.value)


# -- ChannelRule on its own ----------------------------------------------------------------------


def test_channel_rule_takes_in_by_its_toml_name_and_by_field_name() -> None:
    by_alias = ChannelRule.model_validate({"field": "event", "in": ["A"], "channel": "chat"})
    by_name = ChannelRule(field="event", channel="chat", in_=["A"])
    assert by_alias == by_name
    assert by_alias.in_ == ["A"]


@pytest.mark.parametrize(
    "data",
    [
        {"field": "event", "channel": "fax", "equals": "a"},
        {"field": "event", "channel": "sms"},
        {"field": "event", "channel": "sms", "equals": "a", "exists": True},
        {"field": "event", "channel": "sms", "matches": "["},
        {"field": "", "channel": "sms", "equals": "a"},
    ],
)
def test_channel_rule_validation(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ChannelRule.model_validate(data)


def test_a_full_batch_must_fit_under_the_backpressure_limit(data_dir: Path) -> None:
    # Otherwise a full batch would be answered 429 for ever.
    with pytest.raises(ConfigError, match="max_batch_events must not exceed max_pending_events"):
        load_settings(data_dir, max_pending_events=1000)
    assert (
        load_settings(data_dir, max_pending_events=1000, max_batch_events=1000).max_pending_events
        == 1000
    )
