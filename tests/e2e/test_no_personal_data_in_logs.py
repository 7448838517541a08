"""No personal data in any log: a canary e-mail address and phone number sent through every
path a customer's data takes (good events, refused ones, the quarantine, bodies that are not
JSON, too large or too deep, lookups and searches, the dashboard, errors, the CLI's import
with bad rows) never appear in the server's log (at debug level, the most it says) nor in
what the CLI prints when it refuses something."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from conftest import Server, dashboard_sign_in, run_cli, start_server

pytestmark = pytest.mark.e2e

EMAIL = "canary.q7x9@example.org"
PHONE = "+49 170 5550123"
CANARIES = (EMAIL, "canary.q7x9", PHONE, "1705550123", "170 5550123")


def _leaks(text: str) -> list[str]:
    return [canary for canary in CANARIES if canary in text]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    found = start_server(
        tmp_path_factory.mktemp("canary") / "data", {"TOUCHPOINTS_LOG_LEVEL": "debug"}
    )
    yield found
    found.stop()


def _send_everything(srv: Server) -> None:
    auth = (srv.write_key, "")
    traits = {"email": EMAIL, "phone": PHONE, "name": "Canary Bird"}
    good = [
        ("/v1/identify", {"userId": "canary-user", "traits": traits}),
        ("/v1/track", {"userId": EMAIL, "event": "Signed up", "properties": traits}),
        ("/v1/page", {"anonymousId": "anon-canary", "name": "Home", "context": {"traits": traits}}),
    ]
    for path, body in good:
        assert srv.post(path, json=body, auth=auth).status_code == 200
    # A batch with one good and one refused event (quarantined), a batch with none good.
    mixed = {
        "batch": [
            {"type": "identify", "userId": PHONE, "traits": traits},
            {"type": "track", "userId": EMAIL, "properties": traits},  # no event name
        ]
    }
    assert srv.post("/v1/batch", json=mixed, auth=auth).status_code == 200
    assert srv.post("/v1/track", json={"properties": traits}, auth=auth).status_code == 400
    bad_type = {"userId": EMAIL, "event": ["not", "text", EMAIL], "timestamp": PHONE}
    assert srv.post("/v1/track", json=bad_type, auth=auth).status_code == 400
    # Not JSON, not gzip, too deep, too large, no key, a wrong key.
    not_json = f'{{"userId": "{EMAIL}", "traits": {{"phone": "{PHONE}"'.encode()
    assert srv.post("/v1/identify", content=not_json, auth=auth).status_code == 400
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = srv.post("/v1/track", content=not_json, auth=auth, headers=headers)
    assert response.status_code == 400
    truncated = gzip.compress(not_json)[:-8]
    assert srv.post("/v1/track", content=truncated, auth=auth, headers=headers).status_code in (
        400,
        413,
    )
    deep = '{"userId": "' + EMAIL + '", "event": "E", "properties": ' + '{"x":' * 400
    deep += f'"{PHONE}"' + "}" * 400 + "}"
    assert srv.post("/v1/track", content=deep.encode(), auth=auth).status_code == 400
    big = {"userId": EMAIL, "event": "E", "properties": {"phone": PHONE, "blob": "x" * 40_000}}
    assert srv.post("/v1/track", json=big, auth=auth).status_code == 413
    assert srv.post("/v1/track", json={"userId": EMAIL, "event": "E"}).status_code == 401
    wrong = ("tp_write_" + "0" * 32, "")
    assert (
        srv.post("/v1/track", json={"userId": EMAIL, "event": "E"}, auth=wrong).status_code == 401
    )


def _read_everything(srv: Server) -> None:
    admin = srv.admin_key()
    with srv.client(admin) as http:
        for path, params in [
            (f"/v1/profiles/email:{EMAIL}", {}),
            (f"/v1/profiles/phone:{PHONE}", {}),
            ("/v1/profiles/email:nobody-canary.q7x9@example.org", {}),
            ("/v1/profiles", {"trait": "email", "value": EMAIL}),
            ("/v1/profiles", {"trait": f"{EMAIL}.", "value": PHONE}),
            ("/v1/events", {"user_id": EMAIL}),
            ("/v1/events", {"user_id": EMAIL, "since": PHONE}),
            ("/v1/events/count", {"anonymous_id": EMAIL, "limit": PHONE}),
        ]:
            assert http.get(path, params=params).status_code < 500, path
        items = http.get("/v1/quarantine").json()["items"]
        assert items
        for item in items:
            assert http.get(f"/v1/quarantine/{item['id']}").status_code == 200
        assert http.post("/v1/quarantine/replay", json={}).status_code == 200
        assert http.post("/v1/identity/rebuild").status_code < 500
        body = {"kind": "funnel", "steps": [{"event": EMAIL}, {"event": PHONE}]}
        assert http.post("/v1/journeys/query", json=body).status_code < 500
    with httpx.Client(base_url=srv.url, timeout=30) as browser:
        assert dashboard_sign_in(browser, admin).status_code == 303
        for q in (EMAIL, f"email:{EMAIL}", f"phone:{PHONE}", f"email={EMAIL}", f"{EMAIL}.=x"):
            assert browser.get("/people", params={"q": q}).status_code < 500, q
        assert browser.get(f"/people/email:{EMAIL}").status_code < 500
        assert dashboard_sign_in(browser, EMAIL).status_code == 401


def test_the_server_log_holds_no_personal_data(srv: Server) -> None:
    _send_everything(srv)
    srv.wait_idle()
    _read_everything(srv)
    srv.wait_idle()
    log = srv.log_path.read_text()
    assert "DEBUG" in log  # the log said what it could
    assert _leaks(log) == [], [line for line in log.splitlines() if _leaks(line)][:5]


def test_the_cli_says_no_personal_data_when_it_refuses(srv: Server, tmp_path: Path) -> None:
    lines = tmp_path / "events.jsonl"
    lines.write_text(
        "\n".join(
            [
                json.dumps({"type": "identify", "userId": "c1", "traits": {"email": EMAIL}}),
                f'{{"type": "identify", "userId": "{EMAIL}", "traits": {{"phone": "{PHONE}"',
                json.dumps({"type": "track", "userId": EMAIL, "properties": {"phone": PHONE}}),
                json.dumps({"type": "teleport", "userId": PHONE}),
            ]
        )
        + "\n"
    )
    result = run_cli("import", str(lines), data_dir=srv.data_dir)
    assert "rejected" in result.stdout
    assert _leaks(result.stdout + result.stderr) == [], result.stdout + result.stderr
    csv = tmp_path / "crm.csv"
    csv.write_text(f"id;mail;phone;born\nK-1;{EMAIL};{PHONE};31.02.1986\nK-2;;{PHONE};{EMAIL}\n")
    mapping = tmp_path / "crm.toml"
    mapping.write_text(
        'type = "identify"\nuser_id = "id"\n[traits]\nemail = "mail"\nphone = "phone"\n'
        'birthday = "born"\n'
    )
    result = run_cli("import", str(csv), "--mapping", str(mapping), data_dir=srv.data_dir)
    assert _leaks(result.stdout + result.stderr) == [], result.stdout + result.stderr
    missing = tmp_path / "missing.toml"
    missing.write_text('type = "identify"\nuser_id = "Kundennummer"\n')
    result = run_cli("import", str(csv), "--mapping", str(missing), data_dir=srv.data_dir)
    assert result.returncode != 0
    assert _leaks(result.stdout + result.stderr) == [], result.stdout + result.stderr
    for args in (
        ("events", "query", "--since", EMAIL),
        ("keys", "revoke", EMAIL),
        ("quarantine", "show", PHONE),
    ):
        result = run_cli(*args, data_dir=srv.data_dir)
        assert result.returncode != 0, args
        # What the user typed may be echoed back to them; nothing stored is shown.
        assert "Canary Bird" not in result.stderr, result.stderr
    srv.wait_idle()
    assert _leaks(srv.log_path.read_text()) == []


def test_an_unexpected_error_is_logged_with_its_route_not_its_path() -> None:
    """A 500's log line names the route's template; the path (an identifier in it) is left
    out."""
    from touchpoints.api.errors import place

    scope = {
        "method": "GET",
        "path": f"/v1/profiles/email:{EMAIL}",
        "route": SimpleNamespace(path="/v1/profiles/{key}"),
    }
    assert place(scope) == "in GET /v1/profiles/{key}"
    assert EMAIL not in place({"method": "GET", "path": f"/x/{EMAIL}"})
