"""Write keys made for a source (``touchpoints keys create --role write --source web-shop``):
their events carry that source whatever they claim; a rotated key carries on its source;
keys made without one still stamp their own id. A real server process, as a sender sees it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import Server, dashboard_sign_in, run_cli, start_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    found = start_server(tmp_path_factory.mktemp("scoped") / "data")
    yield found
    found.stop()


def _sources(server: Server, user: str) -> list[str]:
    server.wait_idle()
    with server.client() as http:
        events = http.get("/v1/events", params={"user_id": user, "limit": 100}).json()
    return sorted(e["source"] for e in events["events"])


def _scoped_key(server: Server, source: str, *extra: str) -> str:
    result = run_cli(
        "keys", "create", "--role", "write", "--source", source, *extra, data_dir=server.data_dir
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_events_of_a_scoped_key_carry_its_source_whatever_they_claim(srv: Server) -> None:
    key = _scoped_key(srv, "web-shop")
    claims = [
        {"userId": "s1", "event": "Plain"},
        {"userId": "s1", "event": "Claims", "source": "crm"},
        {"userId": "s1", "event": "In context", "context": {"source": "crm"}},
    ]
    for event in claims:
        assert srv.post("/v1/track", json=event, auth=(key, "")).status_code == 200
    batch = {"batch": [{"type": "track", "userId": "s1", "event": "B", "source": "crm"}]}
    assert srv.post("/v1/batch", json=batch, auth=(key, "")).status_code == 200
    body_key = {"writeKey": key, "batch": [{"type": "track", "userId": "s1", "event": "W"}]}
    assert srv.post("/v1/batch", json=body_key).status_code == 200
    assert _sources(srv, "s1") == ["web-shop"] * 5


def test_a_rotated_key_carries_on_its_source_and_the_old_one_stops(srv: Server) -> None:
    old = _scoped_key(srv, "ios-app")
    assert srv.post("/v1/track", json={"userId": "s2", "event": "E"}, auth=(old, "")).is_success
    new = _scoped_key(srv, "ios-app")
    listed = run_cli("keys", "list", data_dir=srv.data_dir).stdout
    old_id = next(
        line.split()[1]
        for line in listed.splitlines()
        if "ios-app" in line and line.split()[1].startswith("key_")
    )
    assert run_cli("keys", "revoke", old_id, data_dir=srv.data_dir).returncode == 0
    refused = srv.post("/v1/track", json={"userId": "s2", "event": "E"}, auth=(old, ""))
    assert refused.status_code == 401
    assert srv.post("/v1/track", json={"userId": "s2", "event": "F"}, auth=(new, "")).is_success
    assert _sources(srv, "s2") == ["ios-app", "ios-app"]


def test_a_key_without_a_source_still_stamps_its_id(srv: Server) -> None:
    with httpx.Client(
        base_url=srv.url, headers={"Authorization": f"Bearer {srv.admin_key()}"}
    ) as h:
        made = h.post("/v1/keys", json={"role": "write", "name": "plain"}).json()
    assert made["source"] is None
    sent = srv.post("/v1/track", json={"userId": "s3", "event": "E"}, auth=(made["secret"], ""))
    assert sent.is_success
    assert _sources(srv, "s3") == [made["id"]]


def test_a_rejected_event_is_quarantined_under_the_keys_source(srv: Server) -> None:
    key = _scoped_key(srv, "quarantined-shop")
    response = srv.post("/v1/track", json={"event": "no user"}, auth=(key, ""))
    assert response.status_code == 400
    with httpx.Client(
        base_url=srv.url, headers={"Authorization": f"Bearer {srv.admin_key()}"}
    ) as h:
        items = h.get("/v1/quarantine").json()["items"]
    assert any(item["source"] == "quarantined-shop" for item in items), items


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--role", "read", "--source", "web-shop"), "only write keys"),
        (("--role", "write", "--source", "key_abcdef123456"), "looks like a key id"),
        (("--role", "write", "--source", "import"), "the server's own"),
        (("--role", "write", "--source", "web shop"), "letters, digits"),
        (("--role", "write", "--source", "x" * 65), "64"),
    ],
)
def test_a_source_a_key_may_not_have_is_refused(
    srv: Server, args: tuple[str, ...], said: str
) -> None:
    result = run_cli("keys", "create", *args, data_dir=srv.data_dir)
    assert result.returncode != 0
    assert said in " ".join(result.stderr.split()), result.stderr


def test_keys_made_before_sources_keep_working(tmp_path: Path) -> None:
    """A data directory whose keys table has no source column (before migration 8) is migrated; its
    keys verify and stamp their ids as before."""
    from touchpoints.config import load_settings
    from touchpoints.core import Touchpoints

    data = tmp_path / "data"
    settings = load_settings(data)
    tp = Touchpoints(settings)
    key, secret = tp.keys.create("write", "old")
    tp.warehouse.run("ALTER TABLE api_keys DROP COLUMN source")
    tp.warehouse.run("DELETE FROM schema_migrations WHERE version = 8")
    tp.close()
    again = Touchpoints(load_settings(data))
    try:
        found = again.keys.verify(secret)
        assert found is not None and found.source is None and found.event_source == key.id
    finally:
        again.close()


def test_an_admin_makes_a_scoped_key_on_the_sources_page(srv: Server) -> None:
    import re

    with httpx.Client(base_url=srv.url, timeout=30) as browser:
        assert dashboard_sign_in(browser, srv.admin_key()).status_code == 303
        page = browser.get("/sources").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        refused = browser.post(
            "/sources/keys", data={"csrf": csrf[1], "name": "Shop", "source": "key_x"}
        )
        assert refused.status_code == 422
        assert "looks like a key id" in refused.text
        made = browser.post(
            "/sources/keys", data={"csrf": csrf[1], "name": "Shop", "source": "dash-shop"}
        )
        assert made.status_code == 201, made.text[:500]
        secret = re.search(r"tp_write_[0-9a-f]{32}", made.text)
        assert secret is not None
    sent = srv.post("/v1/track", json={"userId": "s4", "event": "E"}, auth=(secret[0], ""))
    assert sent.is_success
    assert _sources(srv, "s4") == ["dash-shop"]
    with httpx.Client(base_url=srv.url, timeout=30) as browser:
        assert dashboard_sign_in(browser, srv.admin_key()).status_code == 303
        assert "dash-shop" in browser.get("/sources").text
