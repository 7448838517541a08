"""Journey stages per resolved person: the model is validated with precise errors, entries
follow event time (not arrival), skipped stages stay skipped, rules that look back at a stage
see only later events, and DuckDB and Spark give the same answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_identity_rebuild import send

from conftest import spark_source
from touchpoints.config import ConfigError, load_settings
from touchpoints.core import Touchpoints
from touchpoints.journeys.model import StageModel, StageModelError, load_model
from touchpoints.journeys.queries import StageHistoryQuery, StagesQuery
from touchpoints.journeys.source import duckdb_source
from touchpoints.journeys.stages import stage_distribution, stage_entries, stage_history
from touchpoints.journeys.store import refresh


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stages.yaml"
    path.write_text(text)
    return path


# -- the model ------------------------------------------------------------------------------
def test_the_default_model_has_the_six_stages_in_order() -> None:
    model = load_model()
    assert model.names == [
        "awareness",
        "consideration",
        "decision",
        "purchase",
        "retention",
        "advocacy",
    ]
    assert "low rating" in [p.name for p in model.pain_points]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "stages:\n  - name: a\n    rules:\n      - channel: webb\n",
            "stages[0].rules[0].channel: 'webb' is not a channel; channels: web, mobile_app",
        ),
        (
            "stages:\n  - name: a\n    rules:\n      - event: X\n        after: b\n"
            "  - name: b\n    rules:\n      - event: Y\n",
            "stages[0].rules[0].after: 'b' is not a stage listed before 'a' (earlier stages: none)",
        ),
        (
            "stages:\n  - name: a\n    rules:\n      - event: X\n"
            "  - name: a\n    rules:\n      - event: Y\n",
            "stages[1]: the name 'a' is used twice",
        ),
        ("stages:\n  - name: a\n    rules: []\n", "stages[0].rules: give at least one rule"),
        (
            "stages:\n  - name: a\n    rules:\n      - {}\n",
            "stages[0].rules[0]: a rule needs at least one condition",
        ),
        (
            "stages:\n  - name: a\n    rules:\n      - event: X\n        colour: red\n",
            "stages[0].rules[0].colour: Extra inputs are not permitted",
        ),
        (
            "stages:\n  - name: a\n    rules:\n      - properties: {rating: {}}\n",
            "stages[0].rules[0].properties: rating: give at least one of gte, lte, gt, lt",
        ),
        ("stages: [\n", "is not valid YAML at line 2, column 1"),
        ("- a\n- b\n", "expected a mapping with 'stages' at the top"),
    ],
)
def test_a_bad_model_is_refused_with_the_place_and_the_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(StageModelError) as caught:
        load_model(write(tmp_path, text))
    assert message in str(caught.value)


def test_a_bad_model_in_the_settings_stops_the_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "stages.yaml").write_text("stages:\n  - name: a\n    rules:\n      - channel: fax\n")
    (data / "touchpoints.toml").write_text('stage_model = "stages.yaml"\n')
    settings = load_settings(data)  # settings name the file; the core reads it, once
    with pytest.raises(ConfigError, match="stage_model.*'fax' is not a channel"):
        Touchpoints(settings)
    assert not (data / "touchpoints.duckdb").exists()  # refused before opening anything


# -- computing stages -----------------------------------------------------------------------
MODEL = StageModel.model_validate(
    {
        "stages": [
            {"name": "awareness", "rules": [{"first": True}, {"campaign": True}]},
            {
                "name": "consideration",
                "rules": [{"event": ["Product Viewed"]}, {"path_prefix": "/modelle"}],
            },
            {"name": "decision", "rules": [{"event": "Quote Requested", "channel": "web"}]},
            {"name": "purchase", "rules": [{"event": "Order Completed"}]},
            {
                "name": "retention",
                "rules": [{"event": ["Trip Completed", "Order Completed"], "after": "purchase"}],
            },
            {
                "name": "advocacy",
                "rules": [
                    {"event": "Review Submitted", "properties": {"rating": {"gte": 4}}},
                    {"event": "Referral Sent", "properties": {"accepted": True, "via": "app"}},
                ],
            },
        ]
    }
)


def ev(kind: str, anon: str, ts: str, message_id: str, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": kind,
        "anonymousId": anon,
        "timestamp": f"2026-03-{ts}Z",
        "messageId": message_id,
    }
    return message | extra


def journeys(tp: Touchpoints) -> None:
    """Anna: laptop and phone, one person; Ben: skips decision; Cem: nothing past awareness."""
    send(
        tp,
        [
            # Anna's laptop: a campaign visit, a model page, a quote on the web.
            ev("page", "laptop", "01T10:00:00", "a1", context={"campaign": {"name": "spring"}}),
            ev("page", "laptop", "01T10:05:00", "a2", context={"page": {"path": "/modelle/e3"}}),
            # A trip before any purchase: not retention.
            ev("track", "phone", "02T08:00:00", "a3", event="Trip Completed"),
            ev(
                "track",
                "phone",
                "03T09:00:00",
                "a4",
                event="Quote Requested",
                context={"channel": "mobile"},
            ),  # app, not web: not decision  # fmt: skip
            ev(
                "track",
                "laptop",
                "04T09:00:00",
                "a5",
                event="Quote Requested",
                context={"library": {"name": "analytics.js"}},
            ),  # web  # fmt: skip
            ev("identify", "phone", "05T09:00:00", "a6", userId="anna"),
            ev("identify", "laptop", "05T09:01:00", "a7", userId="anna"),
            ev("track", "phone", "06T12:00:00", "a8", event="Order Completed"),
            ev("track", "phone", "07T12:00:00", "a9", event="Trip Completed"),
            ev(
                "track",
                "laptop",
                "08T12:00:00",
                "a10",
                event="Review Submitted",
                properties={"rating": 3},
            ),  # too low for advocacy  # fmt: skip
            # Ben: a store order with no consideration or decision events.
            ev("track", "store-1", "02T15:00:00", "b1", event="Order Completed"),
            ev(
                "track",
                "store-1",
                "09T15:00:00",
                "b2",
                event="Referral Sent",
                properties={"accepted": True, "via": "app"},
            ),  # fmt: skip
            # Cem: two events at the same moment; arrival order (seq) decides which is first.
            ev("track", "cem", "03T10:00:00", "c1", event="Newsletter Opened"),
            ev("track", "cem", "03T10:00:00", "c2", event="Product Viewed"),
        ],
    )
    # Anna's product view arrives late but happened first on the phone: it enters
    # consideration at its event time, before the laptop's model page.
    send(tp, [ev("track", "phone", "01T09:00:00", "a0", event="Product Viewed")])


def entries(source: Any) -> list[tuple[Any, ...]]:
    rows = stage_entries(source, MODEL).to_pyarrow().to_pylist()
    return sorted(
        (r["person"], r["stage"], r["entered_at"].replace(tzinfo=None).isoformat(), r["event"])
        for r in rows
    )


def test_stage_entries_per_person_follow_event_time_and_skip_what_was_skipped(
    tmp_path: Path,
) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, MODEL)
        source = duckdb_source(tp.warehouse, MODEL)
        anna = tp.profiles.resolve("user_id:anna")
        ben = tp.profiles.resolve("anonymous_id:store-1")
        cem = tp.profiles.resolve("anonymous_id:cem")
        assert entries(source) == sorted(
            [
                (anna, "awareness", "2026-03-01T09:00:00", "Product Viewed"),  # first event
                (anna, "consideration", "2026-03-01T09:00:00", "Product Viewed"),
                (anna, "decision", "2026-03-04T09:00:00", "Quote Requested"),
                (anna, "purchase", "2026-03-06T12:00:00", "Order Completed"),
                (anna, "retention", "2026-03-07T12:00:00", "Trip Completed"),
                (ben, "awareness", "2026-03-02T15:00:00", "Order Completed"),
                (ben, "purchase", "2026-03-02T15:00:00", "Order Completed"),
                (ben, "advocacy", "2026-03-09T15:00:00", "Referral Sent"),
                (cem, "awareness", "2026-03-03T10:00:00", "Newsletter Opened"),
                (cem, "consideration", "2026-03-03T10:00:00", "Product Viewed"),
            ]
        )
        history = stage_history(source, MODEL, anna)
        assert [h.stage for h in history] == [
            "awareness",
            "consideration",
            "decision",
            "purchase",
            "retention",
        ]
        assert history[2].model_dump(mode="json") == {
            "stage": "decision",
            "entered_at": "2026-03-04T09:00:00.000Z",
            "channel": "web",
            "event": "Quote Requested",
        }
        counts = {c.stage: (c.current, c.reached) for c in stage_distribution(source, MODEL)}
        assert counts == {
            "awareness": (0, 3),
            "consideration": (1, 2),
            "decision": (0, 1),
            "purchase": (0, 2),
            "retention": (1, 1),
            "advocacy": (1, 1),
        }


def test_the_service_catches_up_with_new_events_and_merges(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(tp, [ev("track", "tablet", "01T10:00:00", "t1", event="Order Completed")])
        send(tp, [ev("track", "phone", "02T10:00:00", "p1", event="Product Viewed")])
        assert [s.reached for s in tp.journeys.run(StagesQuery()).stages][:4] == [2, 1, 0, 1]
        send(tp, [ev("identify", "phone", "03T10:00:00", "p2", userId="u1"),
                  ev("identify", "tablet", "03T10:01:00", "t2", userId="u1")])  # fmt: skip
        history = tp.journeys.run(StageHistoryQuery(person="user_id:u1"))
        assert history.person == f"person:{tp.profiles.resolve('user_id:u1')}"
        assert [h.stage for h in history.stages] == [
            "awareness",
            "consideration",
            "purchase",
        ]
        assert [s.reached for s in tp.journeys.run(StagesQuery()).stages][:4] == [1, 1, 0, 1]


@pytest.mark.spark
def test_duckdb_and_spark_give_the_same_stage_entries(tmp_path: Path, spark: object) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, MODEL)
        on_duckdb = entries(duckdb_source(tp.warehouse, MODEL))
        on_spark = entries(spark_source(spark, tp))
        assert on_spark == on_duckdb
        assert len(on_duckdb) == 10


def test_a_rule_on_types_keeps_the_events_of_those_types_and_no_others() -> None:
    """``type`` conditions are checked as "none of the other types" (faster on DuckDB): each
    choice of types keeps exactly the events a Python filter keeps, a null type none."""
    from itertools import combinations

    import ibis

    from touchpoints.journeys.model import Rule
    from touchpoints.journeys.stages import TOUCH_TYPES, is_touch, of_types, rule_filter

    kinds = ["track", "page", "screen", "identify", "group", "alias"]
    types = [*kinds, *kinds, None]
    events = ibis.memtable({"seq": list(range(len(types))), "type": types})
    con = ibis.duckdb.connect()
    for size in (1, 2, 3, 6):
        for chosen in combinations(kinds, size):
            kept = rule_filter(Rule(type=chosen), events, None, {})  # type: ignore[arg-type]
            found = sorted(con.to_pyarrow(kept.seq).to_pylist())
            assert found == [i for i, t in enumerate(types) if t in chosen], chosen
    touches = con.to_pyarrow(events.filter(is_touch(events.type)).seq).to_pylist()
    assert sorted(touches) == [i for i, t in enumerate(types) if t in TOUCH_TYPES]
    assert TOUCH_TYPES == ("track", "page", "screen")
    both = con.to_pyarrow(events.filter(of_types(events.type, ("page", "alias"))).seq)
    assert sorted(both.to_pylist()) == [1, 5, 7, 11]
