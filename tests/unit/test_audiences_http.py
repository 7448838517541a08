"""Audiences and computed traits through the API, with the server's writer and the live
evaluation running: definitions checked with the place of a mistake; membership moves as
events arrive, at once and without anyone asking; members are sent to a destination as
Segment sends them (identify with ``<key>: true|false``, or Audience Entered / Exited),
first all of them, then only changes, and only with consent to the destination's purposes;
triggers hear every entry and exit; a person's traits and audiences are on their profile."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import AppServer, start_app
from receiver import receiver
from touchpoints.activate.audiences import MembershipChanges

HIGH_INTENT = {
    "key": "high_intent",
    "name": "High intent, no order",
    "condition": {
        "and": [
            {"event": "Configuration Saved", "at_least": 2, "within_days": 30},
            {"not": {"event": "Order Completed"}},
        ]
    },
}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppServer]:
    found = start_app(
        tmp_path / "data",
        destinations_allow_private=True,
        destinations_retry_schedule=[0, 0.2, 0.5],
    )
    yield found
    found.stop()


def _wait(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)
    return found


def _track(app: AppServer, user: str, event: str, n: int, **extra: Any) -> None:
    body = {"userId": user, "event": event, "messageId": f"{user}-{event}-{n}", **extra}
    answer = app.post("/v1/track", json=body, auth=(app.write_key, ""))
    assert answer.status_code == 200, answer.text


def _members(app: AppServer, key: str) -> set[int]:
    """Members as stored, read without evaluating (so only the live thread moves them)."""
    row = app.tp.audiences.store.definition("audiences", key)
    assert row is not None
    return {p for p, _ in app.tp.audiences.store.members(row[0], 1000, 0)}


def test_definitions_are_checked_and_answered_with_the_place(app: AppServer) -> None:
    with app.client(app.admin_key()) as admin, app.client() as reader:
        assert reader.post("/v1/audiences", json=HIGH_INTENT).status_code == 403
        bad = dict(HIGH_INTENT, condition={"and": [{"event": "X", "at_least": -1}]})
        answer = admin.post("/v1/audiences", json=bad)
        assert answer.status_code == 422
        assert answer.json()["detail"].startswith("condition.and[0].event.at_least: ")
        typo = dict(HIGH_INTENT, condition={"or": [{"evnt": "X"}]})
        detail = admin.post("/v1/audiences", json=typo).json()["detail"]
        assert detail.startswith("condition.or[0]: a condition is an object with one of the keys")
        unknown = dict(HIGH_INTENT, condition={"computed_trait": "orders", "gte": 1})
        answer = admin.post("/v1/audiences", json=unknown)
        assert answer.status_code == 422
        assert answer.json()["detail"] == "condition: no computed trait orders; there are none yet"
        stage = dict(HIGH_INTENT, condition={"not": {"journey_stage": "nirvana"}})
        assert (
            admin.post("/v1/audiences", json=stage)
            .json()["detail"]
            .startswith("condition.not: no journey stage 'nirvana'; the stages: awareness")
        )
        consent = dict(HIGH_INTENT, condition={"consent": "telepathy"})
        assert "no consent category 'telepathy'" in admin.post("/v1/audiences", json=consent).text
        reserved = dict(HIGH_INTENT, key="schema")
        assert "key: schema is a word" in admin.post("/v1/audiences", json=reserved).text
        assert admin.post("/v1/audiences", json=[1]).status_code == 422
        made = admin.post("/v1/audiences", json=HIGH_INTENT)
        assert made.status_code == 201, made.text
        assert made.json()["size"] == 0 and made.json()["time_relative"] is True
        assert admin.post("/v1/audiences", json=HIGH_INTENT).status_code == 409
        own = {"key": "loop", "name": "l", "condition": {"audience": "loop"}}
        assert "would be in itself" in admin.post("/v1/audiences", json=own).text
        outer = {"key": "outer", "name": "o", "condition": {"audience": "high_intent"}}
        assert admin.post("/v1/audiences", json=outer).status_code == 201
        cycle = dict(HIGH_INTENT, condition={"audience": "outer"})
        answer = admin.put("/v1/audiences/high_intent", json=cycle)
        assert answer.status_code == 422 and "would be in itself" in answer.text
        assert admin.delete("/v1/audiences/high_intent").status_code == 409
        assert reader.get("/v1/audiences/nothing").status_code == 404
        assert reader.get("/v1/audiences/Bad-Key").status_code == 422
        schema = reader.get("/v1/audiences/schema").json()
        assert "condition" in schema["properties"]
        trait = {"key": "orders", "name": "Orders", "kind": "sum", "event": "Order Completed"}
        answer = admin.post("/v1/traits/computed", json=trait)
        assert answer.status_code == 422
        assert answer.json()["detail"] == "property: a sum needs the property it is computed from"
        preview = reader.post("/v1/audiences/preview", json={"condition": {"event": "X"}})
        assert preview.json()["size"] == 0
        wrong = reader.post("/v1/audiences/preview", json={"condition": {"event": ""}})
        assert wrong.status_code == 422 and wrong.json()["detail"].startswith("condition.event")


def test_membership_is_live_and_sent_to_a_destination_as_segment_does(app: AppServer) -> None:
    heard: list[MembershipChanges] = []
    app.tp.evaluation.listeners.append(heard.extend)
    with receiver() as hook, app.client(app.admin_key()) as admin, app.client() as reader:
        made = admin.post(
            "/v1/destinations", json={"kind": "webhook", "name": "crm", "config": {"url": hook.url}}
        ).json()
        destination = made["destination"]["id"]
        assert admin.post("/v1/audiences", json=HIGH_INTENT).status_code == 201
        for n in (1, 2):
            _track(app, "anna", "Configuration Saved", n, properties={"model": "E3"})
            _track(app, "ben", "Configuration Saved", n)
        _wait(lambda: len(_members(app, "high_intent")) == 2)  # the live thread did it
        anna, ben = app.tp.profiles.resolve("user_id:anna"), app.tp.profiles.resolve("user_id:ben")
        linked = admin.post(
            "/v1/audiences/high_intent/destinations", json={"destination": destination}
        )
        assert linked.status_code == 200, linked.text
        assert linked.json()["destinations"][0]["sent"] == 2
        first = [orjson.loads(r.body) for r in hook.wait_for(2)]
        assert sorted(call["userId"] for call in first) == ["anna", "ben"]
        assert all(call["type"] == "identify" for call in first)
        assert all(call["traits"] == {"high_intent": True} for call in first)
        assert first[0]["context"]["personas"]["computation_key"] == "high_intent"
        assert first[0]["messageId"] == hook.received[0].headers["webhook-id"]
        _track(app, "ben", "Order Completed", 1)  # ben exits: only that change is sent
        (*_, last) = hook.wait_for(3)
        exit_call = orjson.loads(last.body)
        assert (exit_call["userId"], exit_call["traits"]) == ("ben", {"high_intent": False})
        time.sleep(0.5)
        assert len(hook.received) == 3
        members = reader.get("/v1/audiences/high_intent/members").json()
        assert members["size"] == 1 and len(members["members"]) == 1
        history = reader.get("/v1/audiences/high_intent/history").json()["changes"]
        assert [c["change"] for c in history] == ["exited", "entered", "entered"]
        sizes = reader.get("/v1/audiences/high_intent/sizes").json()["sizes"]
        assert sizes[-1]["size"] == 1 and sizes[-1]["entered"] == 2 and sizes[-1]["exited"] == 1
    assert {(c.audience, person) for c in heard for person in c.entered} == {
        ("high_intent", p) for p in (anna, ben)
    }
    assert [(c.audience, c.exited) for c in heard if c.exited] == [("high_intent", (ben,))]


def test_track_mode_and_consent_to_the_destinations_purposes(app: AppServer) -> None:
    with receiver() as hook, app.client(app.admin_key()) as admin:
        made = admin.post(
            "/v1/destinations",
            json={
                "kind": "webhook",
                "name": "ads",
                "config": {"url": hook.url},
                "purposes": ["marketing"],
            },
        ).json()
        destination = made["destination"]["id"]
        keen = {"key": "keen", "name": "Keen", "condition": {"event": "Product Viewed"}}
        assert admin.post("/v1/audiences", json=keen).status_code == 201
        consent = {"consent": {"categoryPreferences": {"marketing": True}}}
        _track(app, "carla", "Product Viewed", 1, context=consent)
        _track(app, "dan", "Product Viewed", 1)  # never chose: marketing is not granted
        _wait(lambda: len(_members(app, "keen")) == 2)
        body = {"destination": destination, "mode": "track"}
        linked = admin.post("/v1/audiences/keen/destinations", json=body).json()
        assert linked["destinations"][0] | {"linked_at": 0, "synced_at": 0} == {
            "destination": destination,
            "mode": "track",
            "linked_at": 0,
            "synced_at": 0,
            "sent": 1,
            "schedule": None,
            "next_run_at": None,
            "rows": None,
        }
        (got,) = hook.wait_for(1)
        call = orjson.loads(got.body)
        assert (call["type"], call["event"]) == ("track", "Audience Entered")
        assert call["userId"] == "carla"
        assert call["properties"] == {"audience_key": "keen", "keen": True}
        assert admin.get(f"/v1/destinations/{destination}").json()["skipped"] == 1
        answer = admin.post("/v1/audiences/keen/destinations", json=body)
        assert answer.status_code == 409
        email = admin.post(
            "/v1/destinations",
            json={"kind": "email", "name": "m", "config": {"host": "h", "sender": "a@b.c"}},
        ).json()["destination"]["id"]
        answer = admin.post("/v1/audiences/keen/destinations", json={"destination": email})
        assert answer.status_code == 422 and "cannot take audience calls" in answer.text
        assert admin.delete(f"/v1/audiences/keen/destinations/{destination}").status_code == 200
        assert admin.get("/v1/audiences/keen").json()["destinations"] == []


def test_computed_traits_are_on_the_profile_with_their_definition(app: AppServer) -> None:
    with app.client(app.admin_key()) as admin, app.client() as reader:
        for trait in (
            {"key": "orders", "name": "Orders", "kind": "count", "event": "Order Completed"},
            {"key": "spent", "name": "Spent", "kind": "sum", "event": "Order Completed",
             "property": "revenue"},
            {"key": "models", "name": "Models", "kind": "unique", "property": "model"},
        ):  # fmt: skip
            assert admin.post("/v1/traits/computed", json=trait).status_code == 201
        _track(app, "eva", "Order Completed", 1, properties={"revenue": 100, "model": "E3"})
        _track(app, "eva", "Order Completed", 2, properties={"revenue": 50.5, "model": "E5"})
        _track(app, "finn", "Product Viewed", 1)
        app.wait_idle()
        found = reader.get("/v1/profiles/user_id:eva/computed-traits").json()
        values = {t["key"]: t["value"] for t in found["traits"]}
        assert values == {"orders": 2, "spent": 150.5, "models": ["E3", "E5"]}
        summary = {t["key"]: t["summary"] for t in found["traits"]}
        assert summary["spent"] == "sum of revenue of Order Completed, ever"
        finn = reader.get("/v1/profiles/user_id:finn/computed-traits").json()
        assert {t["key"]: t["value"] for t in finn["traits"]} == {
            "orders": 0,
            "spent": None,
            "models": [],
        }
        listed = reader.get("/v1/traits/computed").json()["traits"]
        assert [(t["key"], t["persons"]) for t in listed] == [
            ("orders", 1),
            ("spent", 1),
            ("models", 1),
        ]
        values = reader.get("/v1/traits/computed/spent/values").json()
        assert values["total"] == 1 and values["values"][0]["value"] == 150.5
        rich = {"key": "rich", "name": "Rich", "condition": {"computed_trait": "spent", "gt": 100}}
        assert admin.post("/v1/audiences", json=rich).json()["size"] == 1
        answer = admin.delete("/v1/traits/computed/spent")
        assert answer.status_code == 409 and "rich" in answer.text
        text = {"key": "rich", "name": "Rich", "condition": {"computed_trait": "spent",
                                                            "contains": "1"}}  # fmt: skip
        answer = admin.put("/v1/audiences/rich", json=text)
        assert answer.status_code == 422 and "tests text" in answer.text
        person = reader.get("/v1/profiles/user_id:eva/audiences").json()
        assert [a["key"] for a in person["audiences"]] == ["rich"]
        assert [c["change"] for c in person["history"]] == ["entered"]
        assert admin.delete("/v1/audiences/rich").status_code == 204
        assert admin.delete("/v1/traits/computed/spent").status_code == 204
    app.tp.audit.flush()
    actions = {line.action for line in app.tp.audit.page(limit=100).lines}
    assert {"trait.create", "audience.create", "profile.traits", "profile.list"} <= actions


def test_a_read_key_sees_figures_and_lists_but_changes_nothing(app: AppServer) -> None:
    with app.client() as reader:
        assert reader.get("/v1/audiences").json() == {"audiences": []}
        assert reader.post("/v1/audiences/evaluate").status_code == 403
        assert reader.post("/v1/traits/computed", json={}).status_code == 403
    with app.client(app.write_key) as writer:
        assert writer.get("/v1/audiences").status_code == 403


def test_evaluating_everyone_on_demand(app: AppServer) -> None:
    with app.client(app.admin_key()) as admin:
        assert admin.post("/v1/audiences", json=HIGH_INTENT).status_code == 201
        done = admin.post("/v1/audiences/evaluate").json()
        assert done["full"] is True and done["audiences"] == 1 and done["entered"] == 0
