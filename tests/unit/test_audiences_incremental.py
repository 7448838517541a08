"""Computed traits and audience membership kept live equal computing them afresh: after
every batch of events, sign-in (a merge), consent choice and unmerge, the persons touched
are evaluated; at the end, evaluating everyone changes nothing, and both equal what a plain
Python reading of the journey tables gives (a property test, as the journey store is
tested). The history of entries and exits replays to the members."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.errors import TouchpointsError
from touchpoints.identity.identifiers import Identifier
from touchpoints.identity.resolver import LinkRequest

NOW = datetime(2026, 6, 30, 12, 0)
EVENTS = ("Configuration Saved", "Order Completed", "Product Viewed")
MODELS = ("A", "B", "C")

TRAITS = [
    {"key": "configs_30d", "name": "c", "kind": "count", "event": "Configuration Saved",
     "within_days": 30},
    {"key": "revenue", "name": "r", "kind": "sum", "event": "Order Completed",
     "property": "revenue"},
    {"key": "average_order", "name": "a", "kind": "average", "event": "Order Completed",
     "property": "revenue"},
    {"key": "biggest_order", "name": "b", "kind": "max", "event": "Order Completed",
     "property": "revenue"},
    {"key": "favourite", "name": "f", "kind": "most_frequent", "property": "model"},
    {"key": "first_model", "name": "f", "kind": "first", "property": "model"},
    {"key": "last_model", "name": "l", "kind": "last", "property": "model", "within_days": 45},
    {"key": "models", "name": "m", "kind": "unique", "property": "model"},
    {"key": "model_count", "name": "m", "kind": "unique_count", "property": "model",
     "event": "Configuration Saved"},
]  # fmt: skip
AUDIENCES = [
    {"key": "high_intent", "name": "h", "condition": {"and": [
        {"event": "Configuration Saved", "at_least": 2, "within_days": 30},
        {"not": {"event": "Order Completed"}}]}},
    {"key": "buyer_or_keen", "name": "b", "condition": {"or": [
        {"event": "Order Completed"}, {"computed_trait": "configs_30d", "gte": 3}]}},
    {"key": "no_configs", "name": "n", "condition": {"computed_trait": "configs_30d", "lt": 1}},
    {"key": "few_views", "name": "f", "condition": {
        "event": "Product Viewed", "at_least": 0, "at_most": 1, "within_days": 20}},
    {"key": "likes_a", "name": "l", "condition": {"computed_trait": "models", "contains": "A"}},
    {"key": "big_b", "name": "b", "condition": {"event": "Configuration Saved",
                                                "where": {"model": "B"}}},
    {"key": "rich", "name": "r", "condition": {"computed_trait": "revenue", "gte": 1000}},
    {"key": "reachable", "name": "r", "condition": {"and": [
        {"consent": "marketing"}, {"audience": "high_intent"}]}},
    {"key": "purchased", "name": "p", "condition": {"journey_stage": "purchase"}},
    {"key": "not_reachable", "name": "n", "condition": {"not": {"audience": "reachable"}}},
]  # fmt: skip

# A step: ("events", [(device, event, days ago, model, revenue)]), ("signin", device, user),
# ("consent", device, granted), ("unmerge", device), ("link", device, device).
event = st.tuples(
    st.integers(0, 5),
    st.sampled_from(EVENTS),
    st.integers(0, 60),
    st.sampled_from(MODELS),
    st.sampled_from((100, 600, 1500)),
)
step = st.one_of(
    st.tuples(st.just("events"), st.lists(event, min_size=1, max_size=6)),
    st.tuples(st.just("signin"), st.integers(0, 5), st.integers(0, 2)),
    st.tuples(st.just("consent"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("unmerge"), st.integers(0, 5)),
    st.tuples(st.just("link"), st.integers(0, 5), st.integers(0, 5)),
)


class World:
    """A data directory the steps are applied to, evaluating after each."""

    def __init__(self, tp: Touchpoints) -> None:
        self.tp = tp
        self.n = 0

    def message(self, device: int, **fields: Any) -> dict[str, Any]:
        self.n += 1
        moment = NOW - timedelta(days=fields.pop("days", 0), minutes=self.n)
        return {
            "anonymousId": f"d{device}",
            "messageId": f"m{self.n}",
            "timestamp": moment.isoformat() + "Z",
            **fields,
        }

    def send(self, messages: list[dict[str, Any]]) -> None:
        outcome = self.tp.judge({"batch": messages}, "batch", source="audiences-test")
        assert not outcome.rejected, outcome.rejected
        self.tp.write_rows(outcome.rows)

    def apply(self, step: tuple[Any, ...]) -> None:
        kind = step[0]
        if kind == "events":
            self.send(
                [
                    self.message(
                        device,
                        type="track",
                        event=name,
                        days=days,
                        properties={"model": model}
                        if name != "Order Completed"
                        else {"model": model, "revenue": revenue},
                    )
                    for device, name, days, model, revenue in step[1]
                ]
            )
        elif kind == "signin":
            self.send([self.message(step[1], type="identify", userId=f"u{step[2]}")])
        elif kind == "consent":
            preferences = {"categoryPreferences": {"marketing": step[2]}}
            self.send(
                [
                    self.message(
                        step[1],
                        type="track",
                        event="Segment Consent Preference Updated",
                        context={"consent": preferences},
                    )
                ]
            )
        elif kind == "link":  # an accepted probabilistic match between two devices
            try:
                self.tp.identity.add_links([_link(step[1], step[2])])
            except (LookupError, ValueError):
                pass  # a device not seen yet, or the same one twice
        else:
            try:
                self.tp.identity.unmerge(f"anonymous_id:d{step[1]}")
            except TouchpointsError:
                pass  # a device not seen yet
        self.tp.evaluation.catch_up(now=NOW)


def _link(a: int, b: int) -> LinkRequest:
    return LinkRequest(
        Identifier("anonymous_id", f"d{a}"), Identifier("anonymous_id", f"d{b}"), "match"
    )


def stored(tp: Touchpoints) -> tuple[dict[Any, Any], dict[str, set[int]]]:
    wh = tp.warehouse
    values = {
        (key, person): (value, number)
        for key, person, value, number in wh.fetchall(
            "SELECT t.key, v.person, v.value, v.number_value FROM computed_trait_values v "
            "JOIN computed_traits t ON t.id = v.trait_id"
        )
    }
    members: dict[str, set[int]] = defaultdict(set)
    for key, person in wh.fetchall(
        "SELECT a.key, m.person FROM audience_members m JOIN audiences a ON a.id = m.audience_id"
    ):
        members[key].add(person)
    return values, dict(members)


def replayed_history(tp: Touchpoints) -> dict[str, set[int]]:
    """Members as the history of entries and exits says."""
    state: dict[tuple[str, int], bool] = {}
    for key, person, change in tp.warehouse.fetchall(
        "SELECT a.key, c.person, c.change FROM audience_changes c "
        "JOIN audiences a ON a.id = c.audience_id ORDER BY c.seq"
    ):
        state[(key, person)] = change == "entered"
    out: dict[str, set[int]] = defaultdict(set)
    for (key, person), member in state.items():
        if member:
            out[key].add(person)
    return dict(out)


def oracle(tp: Touchpoints) -> tuple[dict[Any, Any], dict[str, set[int]]]:
    """A few traits and audiences computed in plain Python from the journey tables."""
    wh = tp.warehouse
    persons = {p for (p,) in wh.fetchall("SELECT DISTINCT person FROM journey_persons")}
    facts = wh.fetchall("SELECT person, seq, ts, event FROM journey_facts")
    model = dict(wh.fetchall("SELECT seq, text_value FROM journey_properties WHERE key = 'model'"))
    revenue = dict(
        wh.fetchall("SELECT seq, number_value FROM journey_properties WHERE key = 'revenue'")
    )
    counts: dict[tuple[int, str], int] = Counter()
    recent: dict[tuple[int, str], int] = Counter()
    views20: dict[int, int] = Counter()
    sums: dict[int, float] = defaultdict(float)
    models: dict[int, set[str]] = defaultdict(set)
    b_configs: set[int] = set()
    for person, seq, ts, name in facts:
        counts[(person, name)] += 1
        if ts >= NOW - timedelta(days=30):
            recent[(person, name)] += 1
        if name == "Product Viewed" and ts >= NOW - timedelta(days=20):
            views20[person] += 1
        if name == "Order Completed" and seq in revenue:
            sums[person] += revenue[seq]
        if seq in model:
            models[person].add(model[seq])
            if name == "Configuration Saved" and model[seq] == "B":
                b_configs.add(person)
    values = {("revenue", p): float(v) for p, v in sums.items()}
    values |= {("configs_30d", p): float(n) for (p, e), n in recent.items() if e == EVENTS[0]}
    high = {p for p in persons if recent[(p, EVENTS[0])] >= 2 and not counts[(p, EVENTS[1])]}
    members = {
        "high_intent": high,
        "no_configs": {p for p in persons if not recent[(p, EVENTS[0])]},
        "few_views": {p for p in persons if views20[p] <= 1},
        "likes_a": {p for p in persons if "A" in models[p]},
        "big_b": b_configs & persons,
        "rich": {p for p, v in sums.items() if v >= 1000} & persons,
    }
    return values, members


def check(tp: Touchpoints) -> None:
    values, members = stored(tp)
    assert replayed_history(tp) == {k: v for k, v in members.items() if v}
    expected_values, expected_members = oracle(tp)
    for (key, person), number in expected_values.items():
        assert values[(key, person)][1] == pytest.approx(number), (key, person)
    assert {k for k, _ in values if k in ("revenue", "configs_30d")} <= {"revenue", "configs_30d"}
    for key, persons in expected_members.items():
        assert members.get(key, set()) == persons, key
    done = tp.evaluation.evaluate_all(now=NOW)  # afresh: nothing may change
    assert (done.entered, done.exited) == (0, 0), done
    assert stored(tp) == (values, members)


def open_world(data: Path) -> World:
    tp = Touchpoints.open(load_settings(data))
    for trait in TRAITS:
        tp.traits.create(trait)
    for audience in AUDIENCES:
        tp.audiences.create(audience)
    return World(tp)


def test_live_evaluation_through_merges_consent_and_unmerges_equals_afresh(tmp_path: Path) -> None:
    world = open_world(tmp_path / "data")
    try:
        steps: list[tuple[Any, ...]] = [
            ("events", [(0, EVENTS[0], 1, "A", 100), (0, EVENTS[0], 2, "B", 100)]),
            ("events", [(1, EVENTS[0], 3, "A", 100), (2, EVENTS[1], 40, "C", 1500)]),
            ("consent", 0, True),
            ("signin", 0, 1),
            ("signin", 2, 1),  # d2's order joins d0: no longer high intent
            ("events", [(3, EVENTS[2], 5, "C", 100), (3, EVENTS[2], 50, "C", 100)]),
            ("unmerge", 2),  # d2 leaves again: d0 is high intent once more
            ("link", 1, 3),  # a probabilistic match joins d1 and d3
            ("events", [(1, EVENTS[0], 0, "B", 100), (1, EVENTS[0], 25, "B", 100)]),
            # Two identifiers move together and no new one comes: d5 and u2 join d4's person.
            ("events", [(4, EVENTS[1], 3, "A", 600)]),
            ("signin", 5, 2),
            ("events", [(5, EVENTS[0], 1, "C", 100), (5, EVENTS[0], 2, "C", 100)]),
            ("signin", 4, 2),
        ]
        for found in steps:
            world.apply(found)
        check(world.tp)
        _, members = stored(world.tp)
        assert members["high_intent"] and members["reachable"]
        d4 = world.tp.profiles.resolve("anonymous_id:d4")
        assert d4 == world.tp.profiles.resolve("anonymous_id:d5")
        assert d4 not in members["high_intent"]  # d5's configurations, d4's order
    finally:
        world.tp.close()


@pytest.mark.slow
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=10))
# Found by hand: two identifiers (d5, u2) move to d4's older person together and no new one
# comes; a checksum of the map that xor-ed DuckDB's hashes did not change, so the move went
# unseen.
@example(
    steps=[
        ("events", [(4, EVENTS[1], 3, "A", 600)]),
        ("signin", 5, 2),
        ("events", [(5, EVENTS[0], 1, "C", 100), (5, EVENTS[0], 2, "C", 100)]),
        ("signin", 4, 2),
    ]
)
def test_incremental_equals_afresh_whatever_the_events_merges_and_unmerges(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[Any, ...]]
) -> None:
    world = open_world(tmp_path_factory.mktemp("audiences") / "data")
    try:
        for found in steps:
            world.apply(found)
        check(world.tp)
    finally:
        world.tp.close()
