"""``touchpoints users`` and ``touchpoints audit`` in process (Typer's runner; without a server
the command drives the API's app on the data directory): passwords from a hidden prompt or
standard input and never from the command line, the users' changes, the audit log's lines,
and ``audit verify`` exiting 1 with the first broken line after the DuckDB file was edited
or a line deleted behind touchpoints' back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from conftest import cli

PASSWORD = "correct horse battery"


def run(*args: str, data_dir: Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
    from touchpoints.cli import app

    result = CliRunner().invoke(
        app,
        list(args),
        input=input,
        env={"TOUCHPOINTS_DATA_DIR": str(data_dir), "COLUMNS": "200"},
        catch_exceptions=False,
    )
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    assert cli("init", data_dir=path).returncode == 0
    return path


def _sql(data_dir: Path, statement: str) -> None:
    """What someone with write access to the database file could do behind touchpoints."""
    with duckdb.connect(str(data_dir / "touchpoints.duckdb")) as db:
        db.execute(statement)


def test_users_are_added_listed_and_changed_through_the_api(data_dir: Path) -> None:
    added = run("users", "add", "Anna", "--role", "admin", "--password-stdin", data_dir=data_dir,
                input=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("added anna (admin), id usr_")
    # The hidden prompt asks twice.
    prompted = run("users", "add", "bert", "--role", "analyst", data_dir=data_dir,
                   input=f"{PASSWORD}\n{PASSWORD}\n")  # fmt: skip
    assert prompted.returncode == 0 and "added bert (analyst)" in prompted.stdout
    assert PASSWORD not in prompted.stdout
    # No password on the command line: there is no such option.
    inline = run("users", "add", "carla", "--password", PASSWORD, data_dir=data_dir)
    assert inline.returncode == 2
    short = run("users", "add", "carla", "--password-stdin", data_dir=data_dir, input="short\n")
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
    wrong_role = run("users", "add", "carla", "--role", "boss", data_dir=data_dir, input="x\n")
    assert wrong_role.returncode == 1 and "--role must be one of" in wrong_role.stderr

    listed = run("users", "list", data_dir=data_dir)
    assert listed.returncode == 0
    assert "anna" in listed.stdout and "bert" in listed.stdout and "argon2" not in listed.stdout
    last = run("users", "role", "anna", "viewer", data_dir=data_dir)
    assert last.returncode == 1 and "last enabled admin" in last.stderr
    assert run("users", "role", "bert", "privacy_officer", data_dir=data_dir).returncode == 0
    assert run("users", "disable", "bert", data_dir=data_dir).returncode == 0
    changed = run("users", "password", "anna", "--password-stdin", data_dir=data_dir,
                  input="another long password\n")  # fmt: skip
    assert changed.returncode == 0 and "anna has a new password" in changed.stdout
    gone = run("users", "disable", "nobody", data_dir=data_dir)
    assert gone.returncode == 1 and "no user named 'nobody'" in gone.stderr

    lines = run("audit", "list", "--action", "user.", "--json", data_dir=data_dir)
    assert lines.returncode == 0
    actions = [line.split('"action":"')[1].split('"')[0] for line in lines.stdout.splitlines()]
    assert actions == ["user.password", "user.disable", "user.role", "user.create", "user.create"]
    assert '"actor":"cli"' in lines.stdout and PASSWORD not in lines.stdout
    newest = run("audit", "list", "--actor", "cli", "--action", "user.", "--limit", "2", "--json",
                 data_dir=data_dir)  # fmt: skip
    assert newest.returncode == 0 and len(newest.stdout.splitlines()) == 2
    assert '"action":"user.password"' in newest.stdout.splitlines()[0]
    table = run("audit", "list", "--actor", "cli", data_dir=data_dir)  # a table (width varies)
    assert table.returncode == 0 and "line(s)" in table.stdout


def test_audit_verify_finds_an_edited_line_with_its_number(data_dir: Path) -> None:
    for name in ("anna", "bert", "carla"):
        result = run("users", "add", name, "--role", "admin", "--password-stdin",
                     data_dir=data_dir, input=PASSWORD + "\n")  # fmt: skip
        assert result.returncode == 0
    intact = run("audit", "verify", data_dir=data_dir)
    assert intact.returncode == 0 and intact.stdout.startswith("intact: ")
    head = intact.stdout.split("head: ")[1].strip()
    with duckdb.connect(str(data_dir / "touchpoints.duckdb")) as db:
        (origin,) = db.execute("SELECT origin FROM audit_log WHERE seq = 2").fetchone() or (None,)
    _sql(data_dir, "UPDATE audit_log SET origin = '198.51.100.7' WHERE seq = 2")
    broken = run("audit", "verify", data_dir=data_dir)
    assert broken.returncode == 1
    assert "broken at line 2: line 2 was changed" in broken.stderr
    _sql(data_dir, f"UPDATE audit_log SET origin = '{origin}' WHERE seq = 2")  # as it was
    assert run("audit", "verify", "--anchor", head, data_dir=data_dir).returncode == 0


def test_audit_verify_finds_a_deleted_line(data_dir: Path) -> None:
    for name in ("anna", "bert", "carla"):
        run("users", "add", name, "--role", "admin", "--password-stdin", data_dir=data_dir,
            input=PASSWORD + "\n")  # fmt: skip
    _sql(data_dir, "DELETE FROM audit_log WHERE seq = 2")
    broken = run("audit", "verify", data_dir=data_dir)
    assert broken.returncode == 1 and "broken at line 2: line 2 is missing" in broken.stderr


def test_audit_verify_finds_reordered_lines(data_dir: Path) -> None:
    for name in ("anna", "bert", "carla"):
        run("users", "add", name, "--role", "admin", "--password-stdin", data_dir=data_dir,
            input=PASSWORD + "\n")  # fmt: skip
    # Lines 2 and 3 swap places: each keeps its fields and hashes, under the other's number.
    _sql(data_dir, "UPDATE audit_log SET seq = 5 - seq WHERE seq IN (2, 3)")
    broken = run("audit", "verify", data_dir=data_dir)
    assert broken.returncode == 1 and "broken at line 2" in broken.stderr
