"""Destinations through the API, with the server's delivery worker running: secrets shown
once, permissions, audit lines, dead letters replayed; a receiver down for a while gets
everything once it is back (a shortened schedule); a slow receiver never slows ingest."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from conftest import AppServer, free_port, start_app
from receiver import receiver


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppServer]:
    found = start_app(
        tmp_path / "data",
        destinations_allow_private=True,
        destinations_retry_schedule=[0, 0.2, 0.3, 0.5, 0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1, 1],
    )
    yield found
    found.stop()


def _admin(app: AppServer) -> httpx.Client:
    return app.client(app.admin_key())


def _create(admin: httpx.Client, url: str) -> dict:
    answer = admin.post(
        "/v1/destinations", json={"kind": "webhook", "name": "crm", "config": {"url": url}}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _wait(check: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_secrets_are_shown_once_and_reads_need_no_admin(app: AppServer) -> None:
    with receiver() as hook, _admin(app) as admin, app.client() as reader:
        made = _create(admin, hook.url)
        secret = made["secrets"]["secret"]
        destination = made["destination"]["id"]
        listed = reader.get("/v1/destinations")
        assert listed.status_code == 200 and secret not in listed.text
        assert secret not in reader.get(f"/v1/destinations/{destination}").text
        assert reader.post("/v1/destinations/1/disable").status_code == 403
        sent = admin.post(f"/v1/destinations/{destination}/test").json()
        (got,) = hook.wait_for(1)
        assert got.headers["webhook-id"] == sent["message_id"]
        assert Webhook(secret).verify(got.body, got.headers)["type"] == "touchpoints.test"
        _wait(lambda: reader.get(f"/v1/destinations/{destination}").json()["delivered"] == 1)
        log = reader.get("/v1/destinations/deliveries").json()["attempts"]
        assert [a["outcome"] for a in log] == ["delivered"]
    app.tp.audit.flush()
    actions = [line.action for line in app.tp.audit.page(limit=50).lines]
    assert "destination.create" in actions and "destination.test" in actions


def test_dead_letters_are_listed_and_replayed(app: AppServer) -> None:
    with receiver() as hook, _admin(app) as admin:
        hook.answer = lambda _: (422, {})
        destination = _create(admin, hook.url)["destination"]["id"]
        admin.post(f"/v1/destinations/{destination}/test")
        _wait(lambda: admin.get("/v1/destinations/messages?state=dead").json()["messages"])
        hook.answer = lambda _: (200, {})
        replayed = admin.post(f"/v1/destinations/{destination}/replay").json()
        assert replayed == {"replayed": 1}
        hook.wait_for(2)
        assert len({r.headers["webhook-id"] for r in hook.received}) == 1


def test_a_receiver_down_for_a_while_gets_everything_when_it_is_back(app: AppServer) -> None:
    port = free_port()
    with _admin(app) as admin:
        destination = _create(admin, f"http://127.0.0.1:{port}")["destination"]["id"]
        ids = [
            admin.post(
                f"/v1/destinations/{destination}/messages",
                json={"payload": {"n": n}, "ordering_key": f"k{n % 3}"},
            ).json()["message_id"]
            for n in range(9)
        ]
        _wait(lambda: admin.get("/v1/destinations/deliveries").json()["attempts"])
        time.sleep(1.5)  # down: every attempt so far refused
        with receiver(port) as hook:
            hook.wait_for(9)
            _wait(lambda: admin.get(f"/v1/destinations/{destination}").json()["delivered"] == 9)
        assert {r.headers["webhook-id"] for r in hook.received} == set(ids)
        per_key = {}
        for r in hook.received:
            n = orjson.loads(r.body)["n"]
            per_key.setdefault(n % 3, []).append(n)
        assert all(ns == sorted(ns) for ns in per_key.values())


def test_a_slow_receiver_never_slows_ingest(app: AppServer) -> None:
    with receiver() as hook, _admin(app) as admin:
        hook.delay = 3.0
        destination = _create(admin, hook.url)["destination"]["id"]
        for n in range(10):
            admin.post(f"/v1/destinations/{destination}/messages", json={"payload": {"n": n}})
        time.sleep(0.3)  # the deliveries are hanging now
        with app.client(app.write_key) as writer:
            for n in range(20):
                started = time.perf_counter()
                answer = writer.post(
                    "/v1/track", json={"userId": f"u-{n}", "event": "Viewed", "messageId": f"m{n}"}
                )
                assert answer.status_code == 200
                assert time.perf_counter() - started < 0.5
        assert len(hook.received) < 10  # still delivering while the events were taken


def test_an_erasure_while_delivering_takes_the_persons_messages(app: AppServer) -> None:
    with receiver() as hook, _admin(app) as admin:
        hook.answer = lambda _: (503, {})  # retried again and again meanwhile
        destination = _create(admin, hook.url)["destination"]["id"]
        with app.client(app.write_key) as writer:
            for who in ("anna", "bert"):
                writer.post("/v1/identify", json={"userId": who, "traits": {"plan": "pro"}})
        app.wait_idle()
        for who in ("anna", "bert"):
            for n in range(3):
                sent = admin.post(
                    f"/v1/destinations/{destination}/messages",
                    json={"payload": {"who": who, "n": n}, "key": f"user_id:{who}"},
                )
                assert sent.status_code == 202, sent.text
        hook.wait_for(4)
        erased = admin.post("/v1/privacy/erasures", json={"key": "user_id:anna"})
        assert erased.status_code == 200, erased.text
        left = admin.get("/v1/destinations/messages").json()["messages"]
        assert len(left) == 3 and len({m["person"] for m in left}) == 1
        attempts = admin.get("/v1/destinations/deliveries").json()["attempts"]
        assert {a["person"] for a in attempts} == {left[0]["person"]}
        count = len(hook.received)
        time.sleep(1)
        assert all(orjson.loads(r.body)["who"] == "bert" for r in hook.received[count:])
