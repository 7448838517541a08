"""The collector's rules and status codes, over HTTP against the server's app with its
writer running, in process (tests/conftest.py ``start_app``): what the API does does not
depend on the process; killing and restarting one is tested in test_durability.py."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from conftest import AppServer, run_cli, start_app

pytestmark = pytest.mark.e2e
Server = AppServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AppServer]:
    found = start_app(tmp_path / "data")
    yield found
    found.stop()


def _post(server: Server, path: str, body: object, **kwargs: object) -> httpx.Response:
    kwargs.setdefault("auth", (server.write_key, ""))
    return server.post(path, json=body, **kwargs)


def _quarantine(server: Server) -> dict:
    with server.client(server.admin_key()) as http:
        return http.get("/v1/quarantine").json()


def test_write_key_as_basic_user_or_in_the_body_is_accepted(server: Server) -> None:
    assert _post(server, "/v1/track", {"userId": "a", "event": "E"}).json() == {"success": True}
    body = {"userId": "b", "event": "E", "writeKey": server.write_key}
    assert server.post("/v1/track", json=body).status_code == 200
    server.wait_idle()
    with server.client() as http:
        stored = http.get("/v1/events", params={"user_id": "b"}).json()["events"][0]
    assert "writeKey" not in stored["raw"], "the key must not be stored with the event"


@pytest.mark.parametrize("auth", [None, ("tp_write_" + "0" * 32, ""), ("", "")])
def test_missing_or_wrong_write_key_is_401_and_stores_nothing(
    server: Server, auth: tuple[str, str] | None
) -> None:
    response = server.post(
        "/v1/batch", json={"batch": [{"type": "track", "event": "x"}]}, auth=auth
    )
    assert response.status_code == 401
    assert "key" in response.json()["error"]
    time.sleep(0.4)
    assert server.count() == 0
    assert _quarantine(server)["count"] == 0


def test_a_revoked_key_stops_working_at_once(server: Server) -> None:
    with server.client(server.admin_key()) as http:
        key = http.post("/v1/keys", json={"role": "write", "name": "shop"}).json()
        assert (
            _post(
                server, "/v1/track", {"userId": "a", "event": "E"}, auth=(key["secret"], "")
            ).status_code
            == 200
        )
        assert http.delete(f"/v1/keys/{key['id']}").json()["revoked_at"] is not None
    assert (
        _post(
            server, "/v1/track", {"userId": "a", "event": "E"}, auth=(key["secret"], "")
        ).status_code
        == 401
    )


def test_size_limits_answer_413_naming_the_limit(server: Server) -> None:
    big = {"userId": "a", "event": "E", "properties": {"blob": "x" * 33_000}}
    response = _post(server, "/v1/track", big)
    assert response.status_code == 413
    assert "32768" in response.json()["error"]
    batch = {
        "batch": [
            {"type": "track", "userId": "a", "event": "E", "properties": {"blob": "x" * 20_000}}
            for _ in range(30)
        ]
    }
    response = _post(server, "/v1/batch", batch)
    assert response.status_code == 413
    assert "512000" in response.json()["error"]


def test_a_batch_over_2500_events_is_refused_whole(server: Server) -> None:
    batch = {"batch": [{"type": "track", "userId": "a", "event": "E"} for _ in range(2501)]}
    response = _post(server, "/v1/batch", batch)
    assert response.status_code == 400
    assert "2501 events" in response.json()["error"]


def test_a_mixed_batch_stores_the_valid_events_and_lists_the_others(server: Server) -> None:
    batch = {
        "batch": [
            {"type": "track", "userId": "a", "event": "Good", "messageId": "g1"},
            {"type": "track", "event": "No id"},
            {"type": "track", "userId": "a", "event": "Huge", "properties": {"b": "x" * 33_000}},
            {"type": "identify", "userId": "a", "messageId": "m" * 101},
            {"type": "page", "anonymousId": "x", "messageId": "g2"},
        ]
    }
    response = _post(server, "/v1/batch", batch)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    problems = {r["index"]: r["errors"][0] for r in body["rejected"]}
    assert sorted(problems) == [1, 2, 3]
    assert problems[1]["field"] == "userId"
    assert "32768" in problems[2]["message"]
    assert problems[3]["field"] == "messageId" and "101" in problems[3]["message"]
    server.wait_idle()
    assert server.count() == 2
    held = _quarantine(server)
    assert held["count"] == 3
    assert {item["route"] for item in held["items"]} == {"batch"}


def test_malformed_json_is_400_and_quarantined(server: Server) -> None:
    response = server.post(
        "/v1/track",
        content=b'{"userId": "a", "event"',
        auth=(server.write_key, ""),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    held = _quarantine(server)
    assert held["count"] == 1 and held["items"][0]["kind"] == "body"


def test_content_types_and_encodings(server: Server) -> None:
    form = server.post(
        "/v1/track",
        content=b"userId=a",
        auth=(server.write_key, ""),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    packed = gzip.compress(orjson.dumps({"userId": "gz", "event": "Zipped"}))
    zipped = server.post(
        "/v1/track",
        content=packed,
        auth=(server.write_key, ""),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert zipped.status_code == 200
    broken = server.post(
        "/v1/track",
        content=b"not gzip",
        auth=(server.write_key, ""),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert broken.status_code == 400
    plain = server.post(
        "/v1/t",
        content=orjson.dumps(
            {"anonymousId": "beacon", "event": "Short Path", "writeKey": server.write_key}
        ),
        headers={"Content-Type": "text/plain"},
    )
    assert plain.status_code == 200
    assert plain.headers["access-control-allow-origin"] == "*"
    server.wait_idle()
    assert server.count() == 2


def test_clock_skew_is_corrected_from_sent_at(server: Server) -> None:
    device_now = datetime.now(UTC) + timedelta(hours=3)  # the device clock is 3 h fast
    event_time = device_now - timedelta(hours=1)
    body = {
        "batch": [
            {
                "type": "track",
                "userId": "skew",
                "event": "E",
                "messageId": "s1",
                "timestamp": event_time.isoformat(),
            }
        ],
        "sentAt": device_now.isoformat(),
    }
    before = datetime.now(UTC)
    assert _post(server, "/v1/batch", body).status_code == 200
    server.wait_idle()
    with server.client() as http:
        stored = http.get("/v1/events", params={"user_id": "skew"}).json()["events"][0]
    timestamp = datetime.fromisoformat(stored["timestamp"].removesuffix("Z")).replace(tzinfo=UTC)
    received = datetime.fromisoformat(stored["received_at"].removesuffix("Z")).replace(tzinfo=UTC)
    assert received >= before - timedelta(seconds=1)
    # timestamp = receivedAt - (sentAt - originalTimestamp) = receivedAt - 1 h
    assert abs((received - timestamp) - timedelta(hours=1)) < timedelta(milliseconds=1)


def test_writer_backlog_answers_429_with_retry_after_and_stores_nothing(tmp_path: Path) -> None:
    server = start_app(
        tmp_path / "data",
        max_pending_events=10,
        max_batch_events=10,
        flush_interval_ms=60000,
        flush_max_events=1000000,
    )
    try:
        batch = {
            "batch": [
                {"type": "track", "userId": "a", "event": "E", "messageId": f"b{i}"}
                for i in range(8)
            ]
        }
        assert _post(server, "/v1/batch", batch).status_code == 200
        again = {
            "batch": [
                {"type": "track", "userId": "a", "event": "E", "messageId": f"c{i}"}
                for i in range(8)
            ]
        }
        response = _post(server, "/v1/batch", again)
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
    finally:
        server.stop()
    from touchpoints.config import load_settings
    from touchpoints.core import Touchpoints

    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        assert tp.events.count() == 8


def test_an_event_quarantined_for_its_size_is_stored_by_replay_after_the_limit_is_raised(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    small = start_app(data_dir, max_event_bytes=2048)
    event = {
        "type": "track",
        "userId": "big",
        "event": "Report",
        "messageId": "r1",
        "properties": {"text": "y" * 3000},
    }
    response = _post(small, "/v1/batch", {"batch": [event]})
    assert response.status_code == 400
    small.stop()
    listed = run_cli("quarantine", "list", data_dir=data_dir)
    assert "2048" in listed.stdout
    replay = run_cli("quarantine", "replay", data_dir=data_dir)  # default limit now: 32 KB
    assert replay.returncode == 0, replay.stderr
    assert "replayed 1 item(s) (1 event(s) stored); 0 still held" in replay.stdout
    assert run_cli("events", "count", data_dir=data_dir).stdout.strip() == "1"
    again = run_cli("quarantine", "replay", data_dir=data_dir)
    assert "replayed 0 item(s)" in again.stdout
    assert run_cli("events", "count", data_dir=data_dir).stdout.strip() == "1"
