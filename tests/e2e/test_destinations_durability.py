"""Delivery survives the process: a server killed with SIGKILL while it delivers loses no
message once restarted, and sends a duplicate only with the same webhook-id. And Segment
forwarding reaches another touchpoints server's collector."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import orjson
import pytest

from conftest import Server, start_server
from receiver import receiver

pytestmark = pytest.mark.e2e

FAST = {
    "TOUCHPOINTS_DESTINATIONS_ALLOW_PRIVATE": "true",
    "TOUCHPOINTS_DESTINATIONS_RETRY_SCHEDULE": "[0, 0.2, 0.5, 1, 1, 1, 1, 1, 1, 1]",
}


def _admin(server: Server) -> httpx.Client:
    return server.client(server.admin_key())


def test_a_server_killed_while_delivering_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with receiver() as hook:
        hook.delay = 0.05  # deliveries are in flight at any moment
        server = start_server(data, FAST)
        try:
            with _admin(server) as admin:
                made = admin.post(
                    "/v1/destinations",
                    json={"kind": "webhook", "name": "crm", "config": {"url": hook.url}},
                ).json()
                destination = made["destination"]["id"]
                # Held while the messages are written, so the kill surely comes mid-way.
                admin.post(f"/v1/destinations/{destination}/disable")
                sent = {}
                for n in range(60):
                    answer = admin.post(
                        f"/v1/destinations/{destination}/messages",
                        json={"payload": {"n": n}, "ordering_key": f"person-{n % 5}"},
                    ).json()
                    sent[answer["message_id"]] = n
                admin.post(f"/v1/destinations/{destination}/enable")
            hook.wait_for(5)
        finally:
            assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        before = len(hook.received)
        assert before < 60, "the kill came too late to interrupt delivery"
        server = start_server(data, FAST)
        try:
            deadline = time.monotonic() + 60
            while {r.headers["webhook-id"] for r in hook.received} != set(sent):
                assert time.monotonic() < deadline, "not every message was delivered"
                time.sleep(0.1)
            with _admin(server) as admin:
                shown = admin.get(f"/v1/destinations/{destination}").json()
            assert (shown["delivered"], shown["pending"], shown["dead"]) == (60, 0, 0)
        finally:
            server.stop()
    # A duplicate is the same message: the same webhook-id with the same body.
    for got in hook.received:
        assert orjson.loads(got.body)["n"] == sent[got.headers["webhook-id"]]
    # Per ordering key, first deliveries arrive in the order written.
    firsts: dict[str, int] = {}
    order: dict[int, list[int]] = {}
    for got in hook.received:
        n = orjson.loads(got.body)["n"]
        if got.headers["webhook-id"] not in firsts:
            firsts[got.headers["webhook-id"]] = n
            order.setdefault(n % 5, []).append(n)
    assert all(ns == sorted(ns) for ns in order.values())


def test_segment_forwarding_reaches_another_touchpoints(tmp_path: Path) -> None:
    downstream = start_server(tmp_path / "downstream")
    upstream = start_server(tmp_path / "upstream", FAST)
    try:
        with _admin(upstream) as admin:
            made = admin.post(
                "/v1/destinations",
                json={
                    "kind": "segment",
                    "name": "downstream",
                    "config": {"url": downstream.url},
                    "secrets": {"write_key": downstream.write_key},
                },
            )
            assert made.status_code == 201, made.text
            destination = made.json()["destination"]["id"]
            for n in range(3):
                event = {
                    "type": "track",
                    "userId": "u-1",
                    "event": "Order Completed",
                    "messageId": f"fwd-{n}",
                    "properties": {"n": n},
                }
                admin.post(f"/v1/destinations/{destination}/messages", json={"payload": event})
        assert downstream.wait_for_count(3) == 3
        with downstream.client() as reader:
            events = reader.get("/v1/events", params={"limit": 10}).json()
        assert "fwd-0" in str(events)
    finally:
        upstream.stop()
        downstream.stop()
