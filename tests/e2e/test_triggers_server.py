"""Triggers in a real server on loopback, delivered to a real webhook receiver: an event
sent to the collector arrives at the receiver as the trigger's call, signed per Standard
Webhooks (verified with the ``standardwebhooks`` package); a delay survives the server
being killed (SIGKILL) and fires after the restart; the API refuses a mistake with its
place, and a read key may look but not change."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from conftest import Server, free_port, start_server
from receiver import receiver

pytestmark = pytest.mark.e2e

FAST = {
    "TOUCHPOINTS_DESTINATIONS_ALLOW_PRIVATE": "true",
    "TOUCHPOINTS_DESTINATIONS_RETRY_SCHEDULE": "[0, 0.2, 0.5, 1, 1]",
    "TOUCHPOINTS_FLUSH_INTERVAL_MS": "50",
}


def _track(server: Server, user: str, event: str, n: int, **properties: object) -> None:
    body = {"userId": user, "event": event, "properties": properties, "messageId": f"e{n}"}
    answer = server.post("/v1/track", json=body, auth=(server.write_key, ""))
    assert answer.status_code == 200, answer.text


def _webhook(admin: httpx.Client, url: str) -> tuple[int, str]:
    made = admin.post(
        "/v1/destinations", json={"kind": "webhook", "name": "crm", "config": {"url": url}}
    )
    assert made.status_code == 201, made.text
    return made.json()["destination"]["id"], made.json()["secrets"]["secret"]


def _trigger(admin: httpx.Client, key: str, event: str, steps: list[dict[str, object]]) -> None:
    """Make the trigger ``key`` on ``event`` through the API."""
    made = admin.post(
        "/v1/triggers",
        json={"key": key, "name": key.title(), "when": {"event": event}, "steps": steps},
    )
    assert made.status_code == 201, made.text


def test_an_event_reaches_the_receiver_signed_and_a_read_key_only_looks(tmp_path: Path) -> None:
    with receiver() as hook:
        server = start_server(tmp_path / "data", FAST)
        try:
            with server.client(server.admin_key()) as admin, server.client() as reader:
                destination, secret = _webhook(admin, hook.url)
                definition = {
                    "key": "big_cart",
                    "name": "Big cart",
                    "when": {"event": "Product Added", "where": {"price": {"gte": 100}}},
                    "steps": [{"send": destination, "event": "Cart Reminder"}],
                }
                wrong = admin.post("/v1/triggers", json={**definition, "steps": [{"send": 0}]})
                assert wrong.status_code == 422
                assert wrong.json()["detail"].startswith("steps[0].send: ")
                assert reader.post("/v1/triggers", json=definition).status_code == 403
                made = admin.post("/v1/triggers", json=definition)
                assert made.status_code == 201, made.text
                _track(server, "u1", "Product Added", 1, price=50)
                _track(server, "u1", "Product Added", 2, price=150)
                (got,) = hook.wait_for(1)
                call = Webhook(secret).verify(got.body, got.headers)
                assert call["event"] == "Cart Reminder" and call["userId"] == "u1"
                assert call["properties"] == {"price": 150, "trigger": "big_cart"}
                assert got.headers["webhook-id"] == call["messageId"]
                time.sleep(0.5)
                assert len(hook.received) == 1  # the cheaper cart fired nothing
                listed = reader.get("/v1/triggers").json()["triggers"]
                assert [(t["key"], t["fired"]) for t in listed] == [("big_cart", 1)]
                firings = reader.get("/v1/triggers/big_cart/firings").json()["firings"]
                assert [(f["state"], f["cause"]["about"]) for f in firings] == [
                    ("done", "Product Added")
                ]
        finally:
            server.stop()


def test_an_event_sent_to_a_collector_process_fires_the_trigger(tmp_path: Path) -> None:
    """With ``serve --collectors 1`` (docs/scale.md, for high event rates) the event goes to
    the collector process's port; the server loads its log, dispatches and delivers."""
    collect_port = free_port()
    with receiver() as hook:
        server = start_server(
            tmp_path / "data",
            FAST,
            serve_args=("--collectors", "1", "--collect-port", str(collect_port)),
        )
        try:
            with server.client(server.admin_key()) as admin:
                destination, secret = _webhook(admin, hook.url)
                _trigger(admin, "welcome", "Signed Up", [{"send": destination}])
                body = {"userId": "u9", "event": "Signed Up", "messageId": "c1"}
                deadline = time.monotonic() + 30
                while True:  # the collector process may still be starting
                    try:
                        answer = httpx.post(
                            f"http://127.0.0.1:{collect_port}/v1/track",
                            json=body,
                            auth=(server.write_key, ""),
                            timeout=5,
                        )
                        break
                    except httpx.ConnectError:
                        assert time.monotonic() < deadline, "the collector process did not start"
                        time.sleep(0.2)
                assert answer.status_code == 200, answer.text
                (got,) = hook.wait_for(1)
                call = Webhook(secret).verify(got.body, got.headers)
                assert (call["event"], call["userId"]) == ("Welcome", "u9")
                assert call["context"]["trigger"]["messageId"] == "c1"
        finally:
            server.stop()


def test_a_delay_survives_the_server_being_killed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with receiver() as hook:
        server = start_server(data, FAST)
        try:
            with server.client(server.admin_key()) as admin:
                destination, secret = _webhook(admin, hook.url)
                _trigger(admin, "later", "Viewed", [{"delay": "4s"}, {"send": destination}])
                _track(server, "u1", "Viewed", 1)
                deadline = time.monotonic() + 15
                while admin.get("/v1/triggers/later").json()["waiting"] != 1:
                    assert time.monotonic() < deadline, "the trigger did not fire"
                    time.sleep(0.1)
        finally:
            assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        assert hook.received == []
        server = start_server(data, FAST)
        try:
            (got,) = hook.wait_for(1, timeout=30)
            call = Webhook(secret).verify(got.body, got.headers)
            assert call["properties"]["trigger"] == "later" and call["userId"] == "u1"
            with server.client(server.admin_key()) as admin:
                shown = admin.get("/v1/triggers/later").json()
                assert (shown["waiting"], shown["fired"]) == (0, 1)
        finally:
            server.stop()
    assert orjson.loads(got.body)["event"] == "Later"
