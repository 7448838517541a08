"""The ``touchpoints`` command as a user runs it: scriptable output, clear errors, no tracebacks.

Commands run in this process (Typer's runner, the same code as the installed command)
unless the process itself matters: the installed command's help and the demo, which starts
a server and a loader process, run as a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import cli, free_port, run_cli, start_server

pytestmark = pytest.mark.e2e

CRM_CSV = (
    "Kundennummer;Vorname;Nachname;E-Mail;Telefon;Geburtsdatum;PLZ;Ort;Geaendert_am\n"
    "K-1000234;Anna;Berg;anna.berg@example.com;0171 2345678;14.03.1986;20095;Hamburg;"
    "2026-05-02T10:00:00\n"
    "K-1000235;Jörg;Müller;;040 123456;01.12.1958;80331;München;2026-05-03T11:30:00\n"
)

CRM_MAPPING = """
type = "identify"
user_id = "Kundennummer"
timestamp = "Geaendert_am"
message_id_prefix = "crm"

[traits]
customer_number = "Kundennummer"
first_name = "Vorname"
last_name = "Nachname"
email = "E-Mail"
phone = "Telefon"
birthday = "Geburtsdatum"
postal_code = "PLZ"
city = "Ort"
"""


def assert_no_traceback(result) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    result = cli("init", data_dir=path)
    assert result.returncode == 0, result.stderr
    return path


def test_init_creates_the_data_directory_config_and_a_write_key(tmp_path: Path) -> None:
    path = tmp_path / "fresh"
    result = cli("init", data_dir=path)
    assert result.returncode == 0, result.stderr
    assert (path / "touchpoints.duckdb").is_file()
    assert (path / "touchpoints.toml").is_file()
    assert "tp_write_" in result.stdout
    listed = cli("keys", "list", data_dir=path)
    assert listed.returncode == 0
    assert "write" in listed.stdout
    # A second init keeps everything and says so; it does not make another key.
    again = cli("init", data_dir=path)
    assert again.returncode == 0
    assert "tp_write_" not in again.stdout


def test_keys_create_prints_only_the_key_and_revoke_refuses_it(data_dir: Path) -> None:
    keys = {}
    for role in ("write", "read", "admin"):
        result = cli("keys", "create", role, data_dir=data_dir)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 1, result.stdout
        assert lines[0].startswith(f"tp_{role}_")
        keys[role] = lines[0]
    assert len(set(keys.values())) == 3

    bad = cli("keys", "create", "superuser", data_dir=data_dir)
    assert bad.returncode != 0
    assert "role must be one of write, read, admin" in bad.stderr
    assert_no_traceback(bad)

    missing = cli("keys", "revoke", "no-such-key", data_dir=data_dir)
    assert missing.returncode != 0
    assert_no_traceback(missing)


def test_events_count_prints_only_a_number_with_and_without_a_server(data_dir: Path) -> None:
    result = cli("events", "count", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "0\n"

    server = start_server(data_dir)
    try:
        auth = (server.write_key, "")
        response = server.post(
            "/v1/batch",
            auth=auth,
            json={
                "batch": [
                    {"type": "track", "event": "Test Drive Requested", "userId": f"u{i}"}
                    for i in range(7)
                ]
            },
        )
        assert response.status_code == 200
        server.wait_idle()
        # The server holds the DuckDB file: the CLI goes through its API.
        through_server = cli("events", "count", data_dir=data_dir)
        assert through_server.returncode == 0, through_server.stderr
        assert through_server.stdout == "7\n"
        by_event = cli("events", "count", "--event", "Test Drive Requested", data_dir=data_dir)
        assert by_event.stdout == "7\n"
        queried = cli("events", "query", "--json", "--limit", "3", data_dir=data_dir)
        assert queried.returncode == 0, queried.stderr
        rows = [json.loads(line) for line in queried.stdout.splitlines()]
        assert len(rows) == 3
        assert {row["event"] for row in rows} == {"Test Drive Requested"}
    finally:
        assert server.stop() == 0

    after = cli("events", "count", data_dir=data_dir)
    assert after.stdout == "7\n"


def test_jsonl_import_keeps_good_lines_rejects_bad_ones_and_is_idempotent(
    data_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "export.jsonl"
    lines = [
        {"type": "track", "event": "Brochure Downloaded", "userId": "u1"},
        {"type": "track", "userId": "u2"},  # no event name
        {"type": "identify", "anonymousId": "a1", "traits": {"email": "a@example.com"}},
        {"type": "page", "name": "Home"},  # no userId or anonymousId
        {"type": "track", "event": "Order Completed", "userId": "u3"},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n{not json\n"
    source.write_text(text)

    result = cli("import", str(source), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    assert (
        "6 lines, 3 accepted (3 stored, 0 already present or suppressed), 3 rejected"
        in result.stdout
    )

    rejects = source.with_name("export.jsonl.rejects.jsonl")
    rejected = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [item["line"] for item in rejected] == [2, 4, 6]
    assert "event" in json.dumps(rejected[0]["errors"])
    assert "userId" in json.dumps(rejected[1]["errors"])
    assert cli("events", "count", data_dir=data_dir).stdout == "3\n"

    again = cli("import", str(source), data_dir=data_dir)
    assert again.returncode == 0, again.stderr
    assert "3 accepted (0 stored, 3 already present or suppressed)" in again.stdout
    assert cli("events", "count", data_dir=data_dir).stdout == "3\n"


def test_an_import_keeps_rows_that_repeat_exactly_and_says_how_many_it_stored(
    data_dir: Path, tmp_path: Path
) -> None:
    view = '{"type":"page","anonymousId":"a1","name":"Home","timestamp":"2026-05-01T10:00:00Z"}'
    clicks = tmp_path / "clicks.jsonl"
    clicks.write_text(f"{view}\n{view}\n{view}\n")
    orders = tmp_path / "orders.csv"
    orders.write_text("customer,amount\nK-1,29.90\nK-1,29.90\n")
    mapping = tmp_path / "orders.toml"
    mapping.write_text(
        'type = "track"\nuser_id = "customer"\nevent_name = "Order Completed"\n'
        '[properties]\nrevenue = "amount"\n'
    )
    imports = [("import", str(clicks)), ("import", str(orders), "--mapping", str(mapping))]
    first = [cli(*args, data_dir=data_dir) for args in imports]
    assert "3 lines, 3 accepted (3 stored, 0 already present or suppressed)" in first[0].stdout
    assert "2 lines, 2 accepted (2 stored, 0 already present or suppressed)" in first[1].stdout
    again = [cli(*args, data_dir=data_dir) for args in imports]
    assert "3 accepted (0 stored, 3 already present or suppressed)" in again[0].stdout
    assert "2 accepted (0 stored, 2 already present or suppressed)" in again[1].stdout
    assert cli("events", "count", data_dir=data_dir).stdout == "5\n"


def test_csv_import_with_a_mapping_and_a_missing_column(data_dir: Path, tmp_path: Path) -> None:
    csv_path = tmp_path / "crm.csv"
    csv_path.write_text(CRM_CSV, encoding="utf-8")
    mapping = tmp_path / "crm.toml"
    mapping.write_text(CRM_MAPPING)

    result = cli("import", str(csv_path), "--mapping", str(mapping), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "2 accepted" in result.stdout
    queried = cli("events", "query", "--json", "--oldest-first", data_dir=data_dir)
    events = [json.loads(line) for line in queried.stdout.splitlines()]
    assert [event["user_id"] for event in events] == ["K-1000234", "K-1000235"]
    assert events[0]["traits"]["email"] == "anna.berg@example.com"
    assert events[1]["traits"]["city"] == "München"
    assert "email" not in events[1]["traits"]  # empty cells are left out
    assert events[0]["timestamp"].startswith("2026-05-02T10:00:00")

    broken = tmp_path / "broken.toml"
    broken.write_text(CRM_MAPPING.replace('city = "Ort"', 'city = "Stadt"'))
    failed = cli("import", str(csv_path), "--mapping", str(broken), data_dir=data_dir)
    assert failed.returncode != 0
    assert_no_traceback(failed)
    assert "Stadt" in failed.stderr
    assert "Ort" in failed.stderr  # lists the file's columns
    assert cli("events", "count", data_dir=data_dir).stdout == "2\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["import", "missing.jsonl"], "missing.jsonl"),
        (["import", "x.jsonl", "--format", "xml"], "--format"),
        (["events", "query", "--since", "yesterday"], "--since"),
        (["events", "count", "--channel", "carrier-pigeon"], "channel"),
        (["quarantine", "show", "999"], "999"),
        (["serve", "--port", "99999"], "port"),
    ],
)
def test_bad_input_gets_a_clear_message_and_no_traceback(
    data_dir: Path, args: list[str], message: str
) -> None:
    result = cli(*args, data_dir=data_dir)
    assert result.returncode != 0
    assert_no_traceback(result)
    assert message in result.stdout + result.stderr


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run_cli("--help", data_dir=tmp_path / "unused")
    assert result.returncode == 0
    for command in (
        "init",
        "serve",
        "demo",
        "import",
        "events",
        "keys",
        "quarantine",
        "identity",
        "journeys",
        "users",
        "audit",
        "destinations",
        "assistant",
        "audiences",
        "traits",
    ):
        assert command in result.stdout


def test_demo_without_serving_loads_and_reports(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    # A port of its own: a demo the developer runs on 8080 must not fail the suite.
    port = str(free_port())
    result = run_cli(
        "demo", "--people", "40", "--seed", "7", "--no-serve", "--port", port, data_dir=data_dir
    )
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    count = int(cli("events", "count", data_dir=data_dir).stdout)
    assert count > 40
    assert f"{count:,}" in result.stdout
    assert (data_dir / "demo").is_dir()
    persons = re.search(r"Identity resolution: ([\d,]+) persons", result.stdout)
    assert persons is not None and 0 < int(persons.group(1).replace(",", "")) < count
    matched = re.search(r"matching linked ([\d,]+) pairs .*: ([\d,]+) persons", result.stdout)
    assert matched is not None, result.stdout
    linked, after = (int(g.replace(",", "")) for g in matched.groups())
    before = int(persons.group(1).replace(",", ""))
    assert before - linked <= after <= before  # a link joins two persons (or closes a loop)
    stages = re.search(
        r"Journey stages \(persons ever entered\): awareness ([\d,]+)", result.stdout
    )
    assert stages is not None and int(stages.group(1).replace(",", "")) > 0
    example = re.search(r"touchpoints profile (email:\S+)", result.stdout)
    assert example is not None
    shown = cli("profile", example.group(1), "--json", data_dir=data_dir)
    assert shown.returncode == 0, shown.stderr
    assert example.group(1).split(":", 1)[1] in shown.stdout
    # The demo's audiences (demo/activation.py) hold what the events say, counted by hand.
    audiences = re.search(r"Audiences: configurators ([\d,]+), recent_configurators", result.stdout)
    assert audiences is not None, result.stdout
    import duckdb

    with duckdb.connect(str(data_dir / "touchpoints.duckdb"), read_only=True) as db:
        by_hand = db.execute(
            "SELECT count(DISTINCT i.person) FROM events e JOIN event_identifiers ei "
            "ON ei.seq = e.seq JOIN identifiers i ON i.sid = ei.sid "
            "WHERE e.event = 'Configuration Saved'"
        ).fetchone()
    assert by_hand is not None and by_hand[0] > 0
    assert int(audiences.group(1).replace(",", "")) == by_hand[0]
    decided = cli("decide", "home_hero", example.group(1), data_dir=data_dir)
    assert decided.returncode == 0, decided.stderr
    assert "Welcome to Nordwind" in decided.stdout or "test drive" in decided.stdout
