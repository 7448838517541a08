"""Access on a real server process over loopback HTTP: ``touchpoints users add`` while the
server holds the database (the command goes through its API, not the file), signing in to
the dashboard with that user's password, the lines it leaves in the audit log with the
client's address, and ``touchpoints audit verify`` against the running server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from conftest import run_cli, start_server

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"


def test_a_user_added_through_the_running_server_signs_in_and_is_audited(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "data")
    try:
        added = run_cli("users", "add", "olga", "--role", "privacy_officer", "--password-stdin",
                        data_dir=server.data_dir, input=PASSWORD + "\n")  # fmt: skip
        assert added.returncode == 0, added.stderr
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            form = browser.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf
            fields = {"csrf": csrf[1], "name": "olga", "password": PASSWORD}
            signed_in = browser.post("/login", data=fields)
            assert signed_in.status_code == 303
            assert signed_in.headers["location"] == "/people"  # no overview for her role
            cookie = signed_in.headers.get_list("set-cookie")[0].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
            assert browser.get("/audit").status_code == 200
            assert browser.get("/").status_code == 403
            assert browser.get("/users").status_code == 403
        listed = run_cli("audit", "list", "--json", data_dir=server.data_dir)
        assert listed.returncode == 0, listed.stderr
        lines = [json.loads(line) for line in listed.stdout.splitlines()]
        created = next(line for line in lines if line["action"] == "user.create")
        assert created["actor"] == "cli" and created["target"].startswith("user:usr_")
        signin = next(line for line in lines if line["action"] == "signin.success")
        assert signin["origin"] == "127.0.0.1" and signin["target"] == created["target"]
        assert PASSWORD not in listed.stdout
        verified = run_cli("audit", "verify", data_dir=server.data_dir)
        assert verified.returncode == 0 and verified.stdout.startswith("intact: ")
    finally:
        server.stop()
