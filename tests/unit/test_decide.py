"""Personalisation: placements checked with the place of a mistake; ``POST /v1/decide``
answering from what is kept live (the content changes as soon as the person enters an
audience, without anyone evaluating), honouring consent, holding a control group out
deterministically, choosing by first match, score and weighted random; the uplift compared
with its interval; the decision log is the person's (export, erasure)."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import AppServer, start_app
from touchpoints.activate.decide.service import newcombe
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

GRANTED = {"consent": {"categoryPreferences": {"personalisation": True}}}
REFUSED = {"consent": {"categoryPreferences": {"personalisation": False}}}
CONFIGURATORS = {
    "key": "configurators",
    "name": "Configured twice",
    "condition": {"event": "Configuration Saved", "at_least": 2},
}
HERO = {
    "key": "home_hero",
    "name": "Home page hero",
    "conversion_event": "Order Completed",
    "default": {"headline": "Welcome"},
    "rules": [
        {
            "key": "test_drive",
            "condition": {"audience": "configurators"},
            "content": {"headline": "Book a test drive"},
        },
        {
            "key": "gold",
            "condition": {"trait": "plan", "equals": "gold"},
            "content": {"headline": "Gold service"},
        },
    ],
}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppServer]:
    found = start_app(tmp_path / "data", rate_limit_collect=0)
    yield found
    found.stop()


def _wait(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)
    return found


def _send(app: AppServer, body: dict[str, Any]) -> None:
    answer = app.post(f"/v1/{body['type']}", json=body, auth=(app.write_key, ""))
    assert answer.status_code == 200, answer.text
    app.wait_idle()


def _batch(app: AppServer, bodies: list[dict[str, Any]]) -> None:
    answer = app.post("/v1/batch", json={"batch": bodies}, auth=(app.write_key, ""))
    assert answer.status_code == 200, answer.text
    app.wait_idle()


def _decide(app: AppServer, **body: Any) -> dict[str, Any]:
    answer = app.post(
        "/v1/decide", json={"placement": "home_hero", **body}, auth=(app.write_key, "")
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _setup(app: AppServer, placement: dict[str, Any] | None = None) -> None:
    with app.client(app.admin_key()) as admin:
        assert admin.post("/v1/audiences", json=CONFIGURATORS).status_code == 201
        answer = admin.post("/v1/placements", json=placement or HERO)
        assert answer.status_code == 201, answer.text


def test_placements_are_checked_and_answered_with_the_place(app: AppServer) -> None:
    with app.client(app.admin_key()) as admin, app.client() as reader:
        assert admin.post("/v1/audiences", json=CONFIGURATORS).status_code == 201
        assert reader.post("/v1/placements", json=HERO).status_code == 403

        def problem(**change: Any) -> str:
            answer = admin.post("/v1/placements", json={**HERO, **change})
            assert answer.status_code == 422, answer.text
            return str(answer.json()["detail"])

        rule = HERO["rules"][0]  # type: ignore[index]
        assert problem(rules=[{**rule, "condition": {"event": "Order Completed"}}]).startswith(
            "rules[0].condition.event: a decision does not count events"
        )
        assert problem(rules=[{**rule, "condition": {"audience": "nobody"}}]) == (
            "rules[0].condition: no audience nobody; known: configurators"
        )
        assert problem(rules=[rule, rule]) == "rules[1].key: test_drive names two rules"
        assert problem(strategy="best").startswith("strategy: Input should be")
        assert problem(control_percent=80).startswith("control_percent: Input should be less")
        assert problem(default={"text": "x" * 20_000}) == (
            "default: 20011 bytes as JSON; at most 16384"
        )
        figure = {**rule, "score": {"prediction": "luck"}}
        assert problem(strategy="score", rules=[figure]).startswith(
            "rules[0].score: prediction: 'luck' is not a prediction (churn_risk, "
        )
        nested = {"and": [{"or": [{"computed_trait": "orders", "gte": 1}]}]}
        assert problem(rules=[{**rule, "condition": nested}]) == (
            "rules[0].condition.and[0].or[0]: no computed trait orders; there are none yet"
        )
        scored = {**rule, "score": {"computed_trait": "orders"}}
        assert problem(strategy="score", rules=[scored]).startswith(
            "rules[0].score.computed_trait: orders is not a computed trait with a number"
        )
        assert admin.post("/v1/placements", json=HERO).status_code == 201
        assert admin.post("/v1/placements", json=HERO).status_code == 409
        listed = reader.get("/v1/placements").json()["placements"]
        assert [p["key"] for p in listed] == ["home_hero"]
        assert listed[0]["rules"][0]["condition"] == {"audience": "configurators"}
        # What a placement names is not deleted under it.
        refused = admin.delete("/v1/audiences/configurators")
        assert (refused.status_code, refused.json()["detail"]) == (
            409,
            "audience configurators is named by placement home_hero: change it first",
        )
        assert admin.delete("/v1/placements/home_hero").status_code == 204
        assert admin.delete("/v1/audiences/configurators").status_code == 204
        trait = {"key": "views", "name": "Views", "kind": "count", "event": "Viewed"}
        assert admin.post("/v1/traits/computed", json=trait).status_code == 201
        scored = [{**rule, "condition": None, "score": {"computed_trait": "views"}}]
        answer = admin.post("/v1/placements", json={**HERO, "strategy": "score", "rules": scored})
        assert answer.status_code == 201, answer.text
        refused = admin.delete("/v1/traits/computed/views")
        assert (refused.status_code, refused.json()["detail"]) == (
            409,
            "computed trait views is named by placement home_hero: change it first",
        )


def test_content_changes_as_soon_as_the_person_enters_an_audience(app: AppServer) -> None:
    _setup(app)
    _send(app, {"type": "page", "anonymousId": "anon-1", "name": "Home", "context": GRANTED})
    first = _decide(app, anonymousId="anon-1")
    assert (first["content"], first["rule"], first["reason"]) == (
        {"headline": "Welcome"},
        None,
        "default",
    )
    for n in range(2):
        _send(
            app,
            {"type": "track", "anonymousId": "anon-1", "event": "Configuration Saved",
             "messageId": f"c{n}", "context": GRANTED},
        )  # fmt: skip
    # Nobody asks for an evaluation: the live evaluation moves the person, and the decision
    # reads the membership it keeps.
    entered = _wait(lambda: (d := _decide(app, anonymousId="anon-1"))["rule"] and d)
    assert entered["content"] == {"headline": "Book a test drive"}
    assert entered["reason"] == "rule" and entered["strategy"] == "first_match"
    # Signing in merges the device into the user; the user id decides the same.
    _send(app, {"type": "identify", "userId": "u-1", "anonymousId": "anon-1", "context": GRANTED})
    assert _decide(app, userId="u-1")["rule"] == "test_drive"


def test_a_person_who_refused_or_never_chose_gets_the_default(app: AppServer) -> None:
    _setup(app)
    plan = {"plan": "gold"}
    _send(app, {"type": "identify", "userId": "yes", "traits": plan, "context": GRANTED})
    _send(app, {"type": "identify", "userId": "no", "traits": plan, "context": REFUSED})
    _send(app, {"type": "identify", "userId": "never", "traits": plan})
    assert _decide(app, userId="yes")["rule"] == "gold"
    for user in ("no", "never"):
        found = _decide(app, userId=user)
        assert (found["content"], found["reason"]) == ({"headline": "Welcome"}, "consent")
    unknown = _decide(app, anonymousId="nobody-knows")
    assert (unknown["content"], unknown["reason"]) == ({"headline": "Welcome"}, "unknown")
    # The consent changes: the next decision follows it.
    _send(app, {"type": "identify", "userId": "yes", "context": REFUSED})
    assert _decide(app, userId="yes")["reason"] == "consent"


def test_who_may_decide_by_what(app: AppServer) -> None:
    _setup(app)
    _send(app, {"type": "identify", "userId": "u", "traits": {"email": "a@x.example"},
                "context": GRANTED})  # fmt: skip
    body = {"placement": "home_hero", "identifier": "email:a@x.example"}
    assert app.post("/v1/decide", json=body, auth=(app.write_key, "")).status_code == 403
    with app.client() as reader:
        assert reader.post("/v1/decide", json=body).json()["reason"] == "default"
    with_body_key = {"placement": "home_hero", "userId": "u", "writeKey": app.write_key}
    assert app.post("/v1/decide", json=with_body_key).json()["reason"] == "default"
    assert app.post("/v1/decide", json={"placement": "home_hero", "userId": "u"}).status_code == 401
    wrong = app.post("/v1/decide", json={"placement": "home_hero", "userId": "u"}, auth=("x", ""))
    assert wrong.status_code == 401
    missing = app.post("/v1/decide", json={"placement": "hero"}, auth=(app.write_key, ""))
    assert missing.status_code == 422
    assert missing.json()["detail"] == "anonymousId: give anonymousId, userId or identifier"
    other = app.post("/v1/decide", json={"placement": "x", "userId": "u"}, auth=(app.write_key, ""))
    assert (other.status_code, other.json()["detail"]) == (404, "placement: no placement x")
    bad = app.post("/v1/decide", json={"placement": "home_hero", "userId": 7},
                   auth=(app.write_key, ""))  # fmt: skip
    assert (bad.status_code, bad.json()["detail"]) == (
        422,
        "userId: Input should be a valid string",
    )
    with app.client() as reader:
        options = reader.options("/v1/decide")
        assert options.status_code == 204
        assert options.headers["access-control-allow-origin"] == "*"


def test_control_group_is_held_out_deterministically(app: AppServer) -> None:
    _setup(app, {**HERO, "control_percent": 25})
    users = [f"p{n}" for n in range(120)]
    _batch(
        app,
        [{"type": "identify", "userId": u, "traits": {"plan": "gold"}, "context": GRANTED}
         for u in users],
    )  # fmt: skip
    first = {user: _decide(app, userId=user) for user in users}
    again = {user: _decide(app, userId=user) for user in users}
    assert first == again  # the same person, the same group and content
    held = [u for u, d in first.items() if d["control"]]
    assert all(first[u]["content"] == {"headline": "Welcome"} for u in held)
    assert all(first[u]["reason"] == "control" for u in held)
    assert all(d["rule"] == "gold" for u, d in first.items() if u not in held)
    assert 12 <= len(held) <= 50  # 25% of 120 is 30; the hash spreads, it does not count


def test_score_and_random_strategies(app: AppServer) -> None:
    rules = [
        {"key": "low", "content": {"n": 1}, "score": 1},
        {"key": "spend", "content": {"n": 2}, "score": {"trait": "spend", "times": 0.01}},
        {"key": "high", "content": {"n": 3}, "score": 5,
         "condition": {"trait": "vip", "equals": True}},
    ]  # fmt: skip
    _setup(app, {**HERO, "strategy": "score", "rules": rules})
    people = {"a": {"spend": 200}, "b": {"spend": 900, "vip": True}, "c": {"spend": 700}}
    for user, traits in people.items():
        _send(app, {"type": "identify", "userId": user, "traits": traits, "context": GRANTED})
    chosen = {user: _decide(app, userId=user) for user in people}
    assert (chosen["a"]["rule"], chosen["a"]["score"]) == ("spend", 2.0)
    assert (chosen["b"]["rule"], chosen["b"]["score"]) == ("spend", 9.0)
    assert (chosen["c"]["rule"], chosen["c"]["score"]) == ("spend", 7.0)
    with app.client(app.admin_key()) as admin:
        weighted = [
            {"key": "one", "content": {"n": 1}, "weight": 1},
            {"key": "three", "content": {"n": 3}, "weight": 3},
        ]
        answer = admin.put(
            "/v1/placements/home_hero", json={**HERO, "strategy": "random", "rules": weighted}
        )
        assert answer.status_code == 200, answer.text
    users = [f"r{n}" for n in range(80)]
    _batch(app, [{"type": "identify", "userId": u, "context": GRANTED} for u in users])
    picks = [_decide(app, userId=user)["rule"] for user in users]
    assert picks == [_decide(app, userId=user)["rule"] for user in users]  # sticky
    assert 40 <= picks.count("three") <= 75  # weighted 3:1, about 60 of 80


def test_uplift_compares_conversions_after_exposure(app: AppServer) -> None:
    _setup(app, {**HERO, "control_percent": 50, "rules": [
        {"key": "everyone", "content": {"headline": "Offer"}}]})  # fmt: skip
    users = [f"c{n}" for n in range(60)]
    _batch(app, [{"type": "identify", "userId": u, "context": GRANTED} for u in users])
    groups = {user: _decide(app, userId=user)["control"] for user in users}
    app.tp.placements.decisions.flush()
    time.sleep(0.01)
    treated = [u for u, control in groups.items() if not control]
    held = [u for u, control in groups.items() if control]
    # Every treated person converts after the decision, one held-out person does.
    _batch(
        app,
        [{"type": "track", "userId": user, "event": "Order Completed", "messageId": f"o{n}",
          "context": GRANTED} for n, user in enumerate([*treated, held[0]])],
    )  # fmt: skip
    with app.client() as reader:
        found = reader.get("/v1/placements/home_hero/uplift").json()
    assert found["treatment"] == {"persons": len(treated), "converted": len(treated), "rate": 1.0}
    assert found["control"]["persons"] == len(held) and found["control"]["converted"] == 1
    expected = newcombe((len(treated), len(treated)), (len(held), 1))
    assert expected is not None
    assert found["uplift"] == pytest.approx(expected[0])
    assert (found["low"], found["high"]) == (pytest.approx(expected[1]), pytest.approx(expected[2]))
    assert found["significant"] is True
    reasons = {(r["reason"], r["rule"]): r["decisions"] for r in found["reasons"]}
    assert reasons == {("rule", "everyone"): len(treated), ("control", None): len(held)}


def test_newcombe_interval_matches_the_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17, 873-890, table II, method 10 (the hybrid
    # score interval): (a) 56/70 − 48/80 is 0.2000 (0.0524, 0.3339); (b) 9/10 − 3/10 is
    # 0.6000 (0.1705, 0.8090).
    for treated, control, published in (
        ((70, 56), (80, 48), (0.2, 0.0524, 0.3339)),
        ((10, 9), (10, 3), (0.6, 0.1705, 0.8090)),
    ):
        found = newcombe(treated, control)
        assert found is not None
        assert tuple(round(x, 4) for x in found) == published
    assert newcombe((0, 0), (10, 1)) is None


def test_decisions_are_the_persons_export_and_erasure(tmp_path: Path) -> None:
    with Touchpoints.open(load_settings(tmp_path / "data")) as tp:
        tp.placements.create({"key": "hero", "name": "Hero", "default": {"h": "Hi"}})
        for user in ("u1", "u2"):
            body = {"type": "identify", "userId": user, "context": GRANTED}
            tp.write_rows(tp.judge(body, "identify", source="t").rows)
        from touchpoints.activate.decide import decide_query

        for user in ("u1", "u2"):
            tp.decider.decide(decide_query({"placement": "hero", "userId": user}), False)
        anna = tp.profiles.resolve("user_id:u1")
        count = "SELECT count(*) FROM decisions WHERE person = ?"
        assert tp.warehouse.scalar(count, [anna]) == 1
        _request, archive = tp.privacy.export("user_id:u1")
        rows = orjson.loads(zipfile.ZipFile(io.BytesIO(archive)).read("tables/decisions.json"))
        assert [(row["person"], row["reason"]) for row in rows] == [(anna, "default")]
        tp.privacy.erase("user_id:u1")
        assert tp.warehouse.scalar(count, [anna]) == 0
        assert tp.warehouse.scalar("SELECT count(*) FROM decisions") == 1  # the other's stays


# Conditions a rule may test, each also compiled as an audience: the decision's in-memory
# test must hold for exactly the audience's members.
SAME_MEANING = [
    {"trait": "plan", "equals": "gold"},
    {"trait": "plan", "not_equals": "gold"},
    {"trait": "plan", "one_of": ["gold", "silver"]},
    {"trait": "plan", "starts_with": "go"},
    {"trait": "spend", "gte": 300, "lt": 800},
    {"trait": "spend", "equals": 200},
    {"trait": "vip", "equals": True},
    {"trait": "plan", "exists": False},
    {"computed_trait": "views", "gte": 2},
    {"computed_trait": "views", "lt": 1},
    {"computed_trait": "pages", "contains": "/cars"},
    {"consent": "personalisation"},
    {"consent": "marketing", "granted": False},
    {"audience": "viewers"},
    {"not": {"audience": "viewers"}},
    {"or": [
        {"trait": "vip", "equals": True},
        {"and": [{"computed_trait": "views", "gte": 1},
                 {"not": {"trait": "plan", "equals": "free"}}]},
    ]},
]  # fmt: skip


def test_rules_test_conditions_as_audiences_do(tmp_path: Path) -> None:
    from touchpoints.activate.decide.rules import holds

    people: list[tuple[str, dict[str, Any], int, dict[str, bool]]] = [
        ("a", {"plan": "gold", "spend": 200, "vip": True}, 3, {"personalisation": True}),
        ("b", {"plan": "free", "spend": 500}, 1, {"marketing": False}),
        ("c", {"plan": "silver", "spend": 800.0}, 0, {"personalisation": False}),
        ("d", {"spend": "300"}, 2, {"marketing": True}),
        ("e", {"plan": "golden", "vip": False}, 0, {}),
        ("f", {}, 5, {"personalisation": True, "marketing": False}),
    ]
    with Touchpoints.open(load_settings(tmp_path / "data")) as tp:
        tp.traits.create({"key": "views", "name": "Views", "kind": "count", "event": "Viewed"})
        tp.traits.create(
            {"key": "pages", "name": "Pages", "kind": "unique", "event": "Viewed",
             "property": "path"}
        )  # fmt: skip
        tp.audiences.create({"key": "viewers", "name": "V", "condition": {"event": "Viewed"}})
        batch: list[dict[str, Any]] = []
        for user, traits, views, consent in people:
            context = {"consent": {"categoryPreferences": consent}}
            batch.append({"type": "identify", "userId": user, "traits": traits, "context": context})
            batch.extend(
                {"type": "track", "userId": user, "event": "Viewed", "context": context,
                 "properties": {"path": "/cars" if n % 2 else "/home"}}
                for n in range(views)
            )  # fmt: skip
        tp.write_rows(tp.judge({"batch": batch}, "batch", source="t").rows)
        tp.evaluation.catch_up()
        persons = {user: tp.profiles.resolve(f"user_id:{user}") for user, *_ in people}
        now = datetime.now(UTC)
        sizes = []
        for n, condition in enumerate(SAME_MEANING):
            made = tp.audiences.create({"key": f"same_{n}", "name": "x", "condition": condition})
            members = {p.person for p in tp.audiences.members(made.key, 100, 0).members}
            tested = {
                f"person:{person}"
                for person in persons.values()
                if holds(_condition(condition), tp.facts.get(person), now)
            }
            assert tested == members, condition
            sizes.append(len(members))
        assert len(set(sizes)) >= 4 and max(sizes) < len(people), sizes


def _condition(data: dict[str, Any]) -> Any:
    from touchpoints.activate.audiences.conditions import parsed_definition

    return parsed_definition({"key": "x", "name": "x", "condition": data}).condition
