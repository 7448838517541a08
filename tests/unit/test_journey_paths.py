"""Paths after a start event and before an end event (depth, repeats collapsed, rare steps
grouped), journey variants from the stage model, and DuckDB and Spark agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_identity_rebuild import send
from test_journey_stages import MODEL
from test_journey_stages import journeys as stage_journeys

from conftest import cli, spark_source
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.journeys.model import load_model
from touchpoints.journeys.paths import PathsError, journey_variants, top_paths
from touchpoints.journeys.source import duckdb_source
from touchpoints.journeys.store import refresh

DEFAULT = load_model()  # the facts kept for the default model are what the API reads


def page(anon: str, when: str, message_id: str, name: str) -> dict[str, Any]:
    return {"type": "page", "anonymousId": anon, "name": name,
            "timestamp": f"2026-03-{when}Z", "messageId": message_id}  # fmt: skip


def track(anon: str, when: str, message_id: str, event: str) -> dict[str, Any]:
    return {"type": "track", "anonymousId": anon, "event": event,
            "timestamp": f"2026-03-{when}Z", "messageId": message_id}  # fmt: skip


def sessions(tp: Touchpoints) -> None:
    """a: Home, Signed Up, Modelle twice, Konfigurator, Order Completed, Rare;
    b: Signed Up, Modelle, Konfigurator, Signed Up again, Order Completed;
    c: Signed Up and nothing after; d: never signs up."""
    send(
        tp,
        [
            page("a", "01T10:00:00", "a1", "Home"),
            track("a", "01T11:00:00", "a2", "Signed Up"),
            page("a", "01T12:00:00", "a3", "Modelle"),
            page("a", "01T13:00:00", "a4", "Modelle"),
            {
                "type": "identify",
                "anonymousId": "a",
                "userId": "ua",
                "timestamp": "2026-03-01T13:30:00Z",
                "messageId": "a4i",
            },  # not a step  # fmt: skip
            page("a", "01T14:00:00", "a5", "Konfigurator"),
            track("a", "01T15:00:00", "a6", "Order Completed"),
            page("a", "01T16:00:00", "a7", "Rare"),
            track("b", "02T10:00:00", "b1", "Signed Up"),
            page("b", "02T11:00:00", "b2", "Modelle"),
            page("b", "02T12:00:00", "b3", "Konfigurator"),
            track("b", "02T13:00:00", "b4", "Signed Up"),
            track("b", "02T14:00:00", "b5", "Order Completed"),
            track("c", "03T10:00:00", "c1", "Signed Up"),
            page("d", "03T10:00:00", "d1", "Home"),
        ],
    )
    refresh(tp.warehouse, DEFAULT)


def shown(report: Any) -> list[tuple[list[str], int]]:
    found = report.paths if hasattr(report, "paths") else report.variants
    return [(p.steps, p.people) for p in found]


def test_paths_after_a_start_event_follow_each_persons_first_occurrence(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        sessions(tp)
        source = duckdb_source(tp.warehouse, DEFAULT)
        report = top_paths(source, start="Signed Up", depth=3, min_share=0)
        assert (report.people, report.distinct_paths, report.other_people) == (3, 3, 0)
        assert shown(report) == [
            ([], 1),  # c: nothing after signing up
            (["Modelle", "Konfigurator", "Order Completed"], 1),  # Modelle twice is one step
            (["Modelle", "Konfigurator", "Signed Up"], 1),  # b's second sign-up is a step
        ]
        two = top_paths(source, start="Signed Up", depth=2, min_share=0)
        assert shown(two) == [(["Modelle", "Konfigurator"], 2), ([], 1)]
        assert two.paths[0].share == pytest.approx(2 / 3)
        raw = top_paths(source, start="Signed Up", depth=3, min_share=0, collapse_repeats=False)
        assert ["Modelle", "Modelle", "Konfigurator"] in [p.steps for p in raw.paths]
        limited = top_paths(source, start="Signed Up", depth=2, min_share=0, limit=1)
        assert (shown(limited), limited.other_people) == ([(["Modelle", "Konfigurator"], 2)], 1)


def test_rare_steps_are_grouped_and_paths_before_an_end_read_forwards(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        sessions(tp)
        source = duckdb_source(tp.warehouse, DEFAULT)
        # Steps seen by fewer than half of the 3 people (Rare, the second Signed Up) group.
        grouped = top_paths(source, start="Signed Up", depth=4, min_share=0.5)
        assert shown(grouped) == [
            ([], 1),
            (["Modelle", "Konfigurator", "(other)", "Order Completed"], 1),
            (["Modelle", "Konfigurator", "Order Completed", "(other)"], 1),
        ]
        before = top_paths(source, end="Order Completed", depth=2, min_share=0)
        assert before.people == 2
        assert shown(before) == [
            (["Konfigurator", "Signed Up"], 1),
            (["Modelle", "Konfigurator"], 1),
        ]


def test_the_paths_command_keeps_repeats_when_asked(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        sessions(tp)
    common = ("journeys", "paths", "--after", "Signed Up", "--depth", "3", "--min-share", "0")
    collapsed = cli(*common, "--json", data_dir=tmp_path / "data")
    kept = cli(*common, "--keep-repeats", "--json", data_dir=tmp_path / "data")
    assert collapsed.returncode == kept.returncode == 0, (collapsed.stderr, kept.stderr)
    steps = [p["steps"] for p in json.loads(collapsed.stdout)["paths"]]
    raw = [p["steps"] for p in json.loads(kept.stdout)["paths"]]
    assert ["Modelle", "Konfigurator", "Order Completed"] in steps  # a's Modelle twice: once
    repeated = ["Modelle", "Modelle", "Konfigurator"]
    assert repeated in raw and repeated not in steps


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give exactly one of start"),
        ({"start": "A", "end": "B"}, "give exactly one of start"),
        ({"start": "A", "depth": 0}, "depth: 0 must be at least 1"),
        ({"start": "A", "min_share": 1}, "min_share: 1 must be at least 0 and below 1"),
        ({"start": "A", "step": "page"}, "step: 'page' is not a kind of step"),
    ],
)
def test_impossible_path_questions_are_refused(tmp_path: Path, kwargs: Any, message: str) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        with pytest.raises(PathsError, match=message):
            top_paths(duckdb_source(tp.warehouse, DEFAULT), **kwargs)


def test_journey_variants_count_people_per_stage_sequence(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        stage_journeys(tp)
        refresh(tp.warehouse, DEFAULT)
        report = journey_variants(duckdb_source(tp.warehouse, DEFAULT), MODEL)
    assert (report.people, report.distinct_variants, report.other_people) == (3, 3, 0)
    # Anna entered awareness and consideration with one event: the model's order breaks ties.
    assert shown(report) == [
        (["awareness", "consideration"], 1),
        (["awareness", "consideration", "decision", "purchase", "retention"], 1),
        (["awareness", "purchase", "advocacy"], 1),
    ]
    assert report.variants[0].share == pytest.approx(1 / 3)


@pytest.mark.spark
def test_duckdb_and_spark_give_the_same_paths(tmp_path: Path, spark: object) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        sessions(tp)
        stage_journeys(tp)
        refresh(tp.warehouse, DEFAULT)
        results = []
        for source in (duckdb_source(tp.warehouse, DEFAULT), spark_source(spark, tp)):
            results.append(
                (
                    top_paths(source, start="Signed Up", depth=4, min_share=0.5).model_dump(),  # type: ignore[arg-type]
                    top_paths(source, end="Order Completed", depth=3, step="channel").model_dump(),  # type: ignore[arg-type]
                    journey_variants(source, MODEL).model_dump(),  # type: ignore[arg-type]
                )
            )
    assert results[1] == results[0]
    assert results[0][2]["distinct_variants"] == 4


def _reference_paths(
    people: dict[str, list[tuple[str, str, str]]],
    after: bool,
    depth: int,
    step: str,
    collapse: bool,
) -> list[tuple[list[str], int]]:
    """Paths counted in Python from each person's (type, name, channel) events in order."""
    counted: dict[tuple[str, ...], int] = {}
    for events in people.values():
        steps = [(name, channel) for kind, name, channel in events if kind != "identify"]
        at = next((i for i, (name, _c) in enumerate(steps) if name == "Start"), None)
        if at is None:
            continue
        away = steps[at + 1 :] if after else list(reversed(steps[:at]))
        keys = [name if step == "event" else channel for name, channel in away]
        if collapse:
            keys = [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]
        path = tuple(keys[:depth] if after else list(reversed(keys[:depth])))
        counted[path] = counted.get(path, 0) + 1
    return sorted(((list(p), n) for p, n in counted.items()), key=lambda x: (-x[1], x[0]))


def test_paths_past_the_first_reach_are_followed_over_all_events(tmp_path: Path) -> None:
    """Long runs of one step put some persons' steps beyond the first reach (2 places a
    step) and beyond eight times it: their paths must be what following every event
    gives, as for everyone else (counted in Python from the same events)."""
    import random

    rng = random.Random(11)
    people: dict[str, list[tuple[str, str, str]]] = {}
    for i in range(60):
        events: list[tuple[str, str, str]] = []
        for _ in range(rng.randint(1, 12)):
            run = rng.choice([1, 1, 2, 3, 9, 20, 70]) if i % 3 == 0 else rng.randint(1, 3)
            kind = rng.choice(["page", "track", "identify"]) if i % 4 else "page"
            name = rng.choice(["A", "B", "C"])
            channel = rng.choice(["web", "email", "mobile_app"])
            events.extend([(kind, name, channel)] * run)
        for _ in range(rng.choice([0, 1, 1, 2])):  # no anchor, one, or a second one later
            events.insert(rng.randint(0, len(events)), ("track", "Start", "web"))
        people[f"p{i}"] = events
    messages = []
    for anon, events in people.items():
        for n, (kind, name, channel) in enumerate(events):
            message: dict[str, Any] = {
                "type": kind,
                "anonymousId": anon,
                "timestamp": f"2026-03-01T{n // 60:02d}:{n % 60:02d}:00Z",
                "messageId": f"{anon}-{n}",
                "context": {"channel": channel},
            }
            if kind == "page":
                message["name"] = name
            elif kind == "track":
                message["event"] = name
            else:
                message["traits"] = {"seen": n}
            messages.append(message)
    # The data reaches where the lookahead does not: steps 7 and 49 places past the anchor.
    far = [
        len(e) - e.index(("track", "Start", "web"))
        for e in people.values()
        if ("track", "Start", "web") in e
    ]
    assert max(far) > 8 * 2 * 3 + 1
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        for at in range(0, len(messages), 500):  # batches within the collector's limits
            send(tp, messages[at : at + 500])
        refresh(tp.warehouse, DEFAULT)
        assert tp.warehouse.fetchall("SELECT count(*) FROM journey_facts") == [(len(messages),)]
        source = duckdb_source(tp.warehouse, DEFAULT)
        for after in (True, False):
            for step in ("event", "channel"):
                for collapse in (True, False):
                    anchor = {"start": "Start"} if after else {"end": "Start"}
                    report = top_paths(
                        source, **anchor, depth=3, step=step, min_share=0,  # type: ignore[arg-type]
                        collapse_repeats=collapse, limit=200,
                    )  # fmt: skip
                    expected = _reference_paths(people, after, 3, step, collapse)
                    assert shown(report) == expected, (after, step, collapse)
                    assert report.people == sum(n for _p, n in expected)
                    assert report.distinct_paths == len(expected)
