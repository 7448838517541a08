"""Funnels, hand-computed on the real DuckDB file: the window's end counts and a millisecond
later does not, same-moment events follow arrival, a late event counts from when it happened,
a skipped step ends the progress, strict order stops at a repeat, per person and per device
differ where stitching joined two devices, and DuckDB and Spark give the same answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_identity_rebuild import send

from conftest import spark_source
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.journeys.funnels import drop_offs, funnel, funnel_by_unit
from touchpoints.journeys.model import load_model
from touchpoints.journeys.source import duckdb_source
from touchpoints.journeys.spec import AnalysisError
from touchpoints.journeys.store import refresh
from touchpoints.times import iso

DEFAULT = load_model()  # the facts kept for the default model are what the API reads

VIEW, QUOTE, ORDER = "Product Viewed", "Quote Requested", "Order Completed"
SPEC: dict[str, Any] = {
    "steps": [{"event": VIEW}, {"event": QUOTE}, {"event": ORDER}],
    "window": "P2D",
}


def ev(anon: str, ts: str, message_id: str, event: str | None = None, **extra: Any) -> dict:
    message: dict[str, Any] = {
        "type": "track" if event else "identify",
        "anonymousId": anon,
        "timestamp": f"2026-03-{ts}Z",
        "messageId": message_id,
    }
    if event:
        message["event"] = event
    return message | extra


WEB = {"channel": "web"}
APP = {"channel": "mobile"}
STORE = {"channel": "store"}
GUS = {"channel": "mobile", "device": {"id": "gus-phone"}}


def journeys(tp: Touchpoints) -> None:
    """Seven people; Anna uses a laptop and a phone, stitched by signing in on both."""
    send(
        tp,
        [
            # Anna: laptop view; phone view, quote, and an order exactly 48 h after the laptop
            # view (the window's end: it counts).
            ev("phone", "01T09:00:00", "a1", userId="anna", traits={"birthday": "1991-03-02"}),
            ev("laptop", "01T09:01:00", "a2", userId="anna"),
            ev("laptop", "01T10:00:00", "a3", VIEW, context=WEB),
            ev("phone", "02T09:00:00", "a4", VIEW, context=APP),
            ev("phone", "02T10:00:00", "a5", QUOTE, context=APP),
            ev("phone", "03T10:00:00", "a6", ORDER, context=APP, properties={"value": 30000}),
            # Ben: his quote comes one millisecond after the window closed.
            ev("store-1", "01T12:00:00", "b1", VIEW, context=STORE),
            ev("store-1", "03T12:00:00.001", "b2", QUOTE, context=STORE),
            ev("store-1", "03T13:00:00", "b3", ORDER, context=STORE),
            # Cem: view and quote at the same moment, the view arriving first.
            ev("cem", "04T10:00:00", "c1", VIEW, context=WEB),
            ev("cem", "04T10:00:00", "c2", QUOTE, context=WEB),
            # Dan: the same moment, but the quote arrived first: it is before the view.
            ev("dan", "04T12:00:00", "d1", QUOTE, context=WEB),
            ev("dan", "04T12:00:00", "d2", VIEW, context=WEB),
            # Eve: view, a page that is no step, and the order; her quote arrives later.
            ev("eve", "05T09:00:00", "e0", traits={"birthday": "2000-03-05"}),
            ev("eve", "05T10:00:00", "e1", VIEW, context=APP),
            {**ev("eve", "05T10:30:00", "e2"), "type": "page", "name": "Home"},
            ev("eve", "05T12:00:00", "e3", ORDER, context=APP, properties={"value": 500}),
            # Fay: skips the quote.
            ev("fay", "06T10:00:00", "f1", VIEW, context=WEB),
            ev("fay", "06T11:00:00", "f2", ORDER, context=WEB),
            # Gus (an app install): views twice, then quote and order.
            ev("gus", "07T09:00:00", "g0", traits={"birthday": "2010-01-01"}, context=GUS),
            ev("gus", "07T10:00:00", "g1", VIEW, context=GUS),
            ev("gus", "07T10:30:00", "g2", VIEW, context=GUS),
            ev("gus", "07T11:00:00", "g3", QUOTE, context=GUS),
            ev("gus", "07T12:00:00", "g4", ORDER, context=GUS, properties={"value": 25000}),
        ],
    )
    # Eve's quote arrives after her order, but happened before it.
    send(tp, [ev("eve", "05T11:00:00", "e4", QUOTE, context=APP)])


def units(result: Any) -> list[int]:
    return [step.units for step in result.steps]


@pytest.fixture
def tp_journeys(tmp_path: Path) -> Any:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, DEFAULT)
        yield tp


def test_relaxed_funnel_counts_window_edges_ties_late_events_and_skips(tp_journeys: Any) -> None:
    result = funnel(duckdb_source(tp_journeys.warehouse, DEFAULT), SPEC)
    # Entered: all seven. Quote: Anna, Cem, Eve (late), Gus; not Ben (1 ms late), not Dan
    # (quote before view), not Fay (skipped). Order: Anna (at the window's end), Eve, Gus.
    assert units(result) == [7, 4, 3]
    assert [s.conversion for s in result.steps] == [1.0, 0.5714, 0.4286]
    assert [s.from_previous for s in result.steps] == [1.0, 0.5714, 0.75]
    assert [s.dropped for s in result.steps] == [0, 3, 1]
    # From the view to the quote: Cem 0 s, Eve 1 h, Gus 1 h, Anna 1 d -> median 1 h.
    # To the order: Eve 2 h, Gus 2 h, Anna 2 d -> 2 h.
    assert [s.median_seconds for s in result.steps] == [0.0, 3600.0, 7200.0]
    assert result.time_to_convert.median_seconds == 7200.0
    histogram = {b.label: b.units for b in result.time_to_convert.histogram}
    assert histogram == {
        "< 1 min": 0,
        "1-10 min": 0,
        "10-60 min": 0,
        "1-6 h": 2,
        "6-24 h": 0,
        "1-3 d": 1,  # Anna, 48 h: buckets past the 2-day window are left out
    }
    assert result.window_seconds == 172800.0


def test_strict_order_ends_at_a_repeat_but_not_at_events_outside_the_funnel(
    tp_journeys: Any,
) -> None:
    result = funnel(duckdb_source(tp_journeys.warehouse, DEFAULT), SPEC | {"order": "strict"})
    # Anna: her phone's view repeats step 1 before the quote. Gus: a second view. Eve: the
    # 'Home' page between view and quote is no step, so she goes through.
    assert units(result) == [7, 2, 1]


def test_per_device_the_stitched_journey_splits_in_two(tp_journeys: Any) -> None:
    both = funnel_by_unit(duckdb_source(tp_journeys.warehouse, DEFAULT), SPEC)
    assert units(both.person) == [7, 4, 3]
    # Anna's laptop only views; her phone enters on its own view and converts in 25 h.
    assert units(both.device) == [8, 4, 3]
    assert both.device.steps[2].conversion == 0.375
    assert both.device.steps[2].median_seconds == 7200.0  # phone 25 h, Eve 2 h, Gus 2 h
    strict = funnel(
        duckdb_source(tp_journeys.warehouse, DEFAULT), SPEC | {"order": "strict", "unit": "device"}
    )
    assert units(strict) == [8, 3, 2]  # the phone, Cem, Eve; the phone and Eve


def test_a_property_filter_narrows_a_step(tp_journeys: Any) -> None:
    steps = [
        {"event": VIEW},
        {"event": QUOTE},
        {"event": ORDER, "properties": {"value": {"gte": 1000}}},
    ]
    result = funnel(duckdb_source(tp_journeys.warehouse, DEFAULT), SPEC | {"steps": steps})
    assert units(result) == [7, 4, 2]  # Eve's order of 500 is left out


def groups(result: Any) -> dict[Any, list[int]]:
    return {g.value: [s.units for s in g.steps] for g in result.groups}


def test_breakdowns_by_channel_device_type_and_age_at_entry(tp_journeys: Any) -> None:
    source = duckdb_source(tp_journeys.warehouse, DEFAULT)
    by_channel = funnel(source, SPEC | {"breakdown": "channel"})
    assert groups(by_channel) == {
        "mobile_app": [2, 2, 2],  # Eve, Gus
        "store": [1, 0, 0],  # Ben
        "web": [4, 2, 1],  # Anna (laptop), Cem, Dan, Fay
    }
    assert [g.time_to_convert.median_seconds for g in by_channel.groups] == [7200.0, None, 172800.0]
    by_device = funnel(source, SPEC | {"breakdown": "device_type"})
    assert groups(by_device) == {"anonymous_id": [6, 3, 2], "device_id": [1, 1, 1]}
    # Anna turns 35 the day after her entry: 34. Eve turns 26 on hers. Gus is 16.
    by_age = funnel(source, SPEC | {"breakdown": "age_group"})
    # unknown: one under 18 (1, 1, 1) and four without a birthday (4, 1, 0)
    assert groups(by_age) == {"25-34": [2, 2, 2], "unknown": [5, 2, 1]}
    wide = funnel(source, SPEC | {"breakdown": "age_group", "age_bands": ["18-34", "35+"]})
    assert groups(wide) == {"18-34": [2, 2, 2], "unknown": [5, 2, 1]}
    young = funnel(source, SPEC | {"breakdown": "age_group", "age_bands": ["0-17", "18+"]})
    assert groups(young) == {"0-17": [1, 1, 1], "18+": [2, 2, 2], "unknown": [4, 1, 0]}
    by_trait = funnel(source, SPEC | {"breakdown": "trait:birthday"})
    assert groups(by_trait)["2010-01-01"] == [1, 1, 1]


def test_drop_offs_list_who_stopped_after_a_step_by_entry_time(tp_journeys: Any) -> None:
    tp = tp_journeys
    source = duckdb_source(tp.warehouse, DEFAULT)
    person = {
        name: tp.profiles.resolve(f"anonymous_id:{name}")
        for name in ("store-1", "dan", "fay", "cem")
    }
    first = drop_offs(source, SPEC, step=1)
    assert first.total == 3
    assert [u.person for u in first.units] == [person["store-1"], person["dan"], person["fay"]]
    assert first.units[0].model_dump(mode="json", exclude_none=True) == {
        "person": person["store-1"],
        "entered_at": "2026-03-01T12:00:00.000Z",
        "reached_at": "2026-03-01T12:00:00.000Z",
    }
    page = drop_offs(source, SPEC, step=1, limit=1, offset=2)
    assert (page.total, [u.person for u in page.units]) == (3, [person["fay"]])
    second = drop_offs(source, SPEC, step=2)
    assert [(u.person, iso(u.reached_at)) for u in second.units] == [
        (person["cem"], "2026-03-04T10:00:00.000Z")
    ]
    devices = drop_offs(source, SPEC | {"unit": "device"}, step=1)
    assert [u.identifier for u in devices.units] == [
        "anonymous_id:laptop",
        "anonymous_id:store-1",
        "anonymous_id:dan",
        "anonymous_id:fay",
    ]
    assert devices.units[0].person == tp.profiles.resolve("user_id:anna")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"steps": [{"event": VIEW}, {}]}, "steps[1].event: give an event name"),
        ({"steps": [{"event": VIEW}, {"event": " "}]}, "steps[1].event: give an event name"),
        ({"steps": [{"event": VIEW}]}, "steps: give at least two steps"),
        (SPEC | {"window": 0}, "window: give a positive window"),
        (SPEC | {"order": "loose"}, "order: Input should be 'relaxed' or 'strict'"),
        (SPEC | {"breakdown": "colour"}, "breakdown: 'colour' is not a breakdown"),
        (
            SPEC | {"age_bands": ["30-40", "20-25"]},
            "age_bands: bands[1]: '20-25' overlaps or comes before '30-40'",
        ),
        (
            {"steps": [{"event": VIEW}, {"event": ORDER, "properties": {"value": {"max": 1}}}]},
            "steps[1].properties: value: unknown test max; use gte, lte, gt, lt",
        ),
        (
            SPEC | {"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
            "until: give a moment after since",
        ),
    ],
)
def test_a_bad_funnel_is_refused_with_the_place_and_the_reason(
    tp_journeys: Any, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(AnalysisError) as caught:
        funnel(duckdb_source(tp_journeys.warehouse, DEFAULT), spec)
    assert message in str(caught.value)


def test_a_drop_off_after_the_last_step_is_refused(tp_journeys: Any) -> None:
    with pytest.raises(AnalysisError, match="step: give a step from 1 to 2"):
        drop_offs(duckdb_source(tp_journeys.warehouse, DEFAULT), SPEC, step=3)


def test_since_and_until_choose_entries(tp_journeys: Any) -> None:
    source = duckdb_source(tp_journeys.warehouse, DEFAULT)
    # From 2 March: Anna enters with her phone's view (her laptop's is earlier), then
    # converts in 25 h; Ben's entry is before.
    result = funnel(
        source, SPEC | {"since": "2026-03-02T00:00:00Z", "until": "2026-03-07T00:00:00Z"}
    )
    assert units(result) == [5, 3, 2]  # Anna, Cem, Dan, Eve, Fay; Anna, Cem, Eve; Anna, Eve


def everything(source: Any) -> dict[str, Any]:
    return {
        "by_age": funnel(source, SPEC | {"breakdown": "age_group"}).model_dump(),
        "strict_devices": funnel(
            source, SPEC | {"order": "strict", "unit": "device", "breakdown": "device_type"}
        ).model_dump(),
        "drop_offs": drop_offs(source, SPEC | {"unit": "device"}, step=1).model_dump(),
        # Steps that repeat: an event fills one step only, the next one after it.
        "repeats": funnel(
            source, SPEC | {"steps": [{"event": e} for e in (VIEW, VIEW, QUOTE, ORDER, QUOTE)]}
        ).model_dump(),
    }


@pytest.mark.spark
def test_duckdb_and_spark_give_the_same_funnels(tp_journeys: Any, spark: object) -> None:
    on_duckdb = everything(duckdb_source(tp_journeys.warehouse, DEFAULT))
    on_spark = everything(spark_source(spark, tp_journeys))
    assert on_spark == on_duckdb
    assert [s["units"] for s in on_duckdb["by_age"]["steps"]] == [7, 4, 3]


# -- medians of an even count: the mean of the middle two ------------------------------------
@pytest.fixture
def tp_even(tmp_path: Path) -> Any:
    """Four people who order 1, 2, 4 and 8 hours after their view (the middle two differ);
    a fifth who never orders."""
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        sent = []
        for n, hours in enumerate((1, 2, 4, 8, None)):
            sent.append(ev(f"p{n}", "10T08:00:00", f"v{n}", VIEW, context=WEB))
            if hours is not None:
                sent.append(ev(f"p{n}", f"10T{8 + hours:02d}:00:00", f"o{n}", ORDER, context=WEB))
        send(tp, sent)
        refresh(tp.warehouse, DEFAULT)
        yield tp


EVEN = {"steps": [{"event": VIEW}, {"event": ORDER}], "window": "P1D"}


def test_an_even_count_takes_the_mean_of_the_middle_two(tp_even: Any) -> None:
    result = funnel(duckdb_source(tp_even.warehouse, DEFAULT), EVEN)
    assert units(result) == [5, 4]
    # 1 h, 2 h, 4 h, 8 h: the middle two are 2 h and 4 h, so 3 h (not 2 h, the lower one,
    # nor 4 h, the upper).
    assert result.steps[1].median_seconds == 3 * 3600.0
    assert result.time_to_convert.median_seconds == 3 * 3600.0
    # Without the 8 h, an odd count: the middle one.
    three = funnel(duckdb_source(tp_even.warehouse, DEFAULT), EVEN | {"window": "PT5H"})
    assert units(three) == [5, 3]
    assert three.steps[1].median_seconds == 2 * 3600.0


@pytest.mark.spark
def test_duckdb_and_spark_give_the_same_even_medians(tp_even: Any, spark: object) -> None:
    on_duckdb = funnel(duckdb_source(tp_even.warehouse, DEFAULT), EVEN).model_dump()
    on_spark = funnel(spark_source(spark, tp_even), EVEN).model_dump()
    assert on_spark == on_duckdb
    assert on_spark["steps"][1]["median_seconds"] == 3 * 3600.0


# -- long funnels: the relaxed order built flat, checked against the rule itself --------------
def _reference(events: list[tuple[str, int, str]], steps: list[str], window: int) -> list[int]:
    """Units per step by the definition (module docstring of journeys/funnels.py): each
    user's events in order (time, then arrival); entry at the first step-1 event; step k the
    earliest step-k event after the event of step k-1, no later than entry + window."""
    reached = [0] * len(steps)
    for user in sorted({user for user, _, _ in events}):
        mine = [(ts, i, name) for i, (who, ts, name) in enumerate(events) if who == user]
        mine.sort()
        position = next((p for p, (_, _, name) in enumerate(mine) if name == steps[0]), None)
        if position is None:
            continue
        deadline = mine[position][0] + window
        reached[0] += 1
        for k in range(1, len(steps)):
            position = next(
                (
                    p
                    for p in range(position + 1, len(mine))
                    if mine[p][2] == steps[k] and mine[p][0] <= deadline
                ),
                None,
            )
            if position is None:
                break
            reached[k] += 1
    return reached


def test_relaxed_funnels_of_up_to_20_steps_follow_the_rule(tmp_path: Path) -> None:
    """Before, each step's query nested the last one's (about six subqueries a step) and 16
    steps overflowed sqlglot's recursion; the documented limit is 20. Random journeys over
    five event names (so steps repeat and events tie), funnels of 2 to 20 steps: the
    counts are the rule's, and drop-offs after any step answer."""
    import random

    rng = random.Random(20)
    names = ["a", "b", "c", "d", "e"]
    events = [
        (f"u{user}", rng.randrange(0, 40) * 1800, rng.choice(names))
        for user in range(40)
        for _ in range(rng.randrange(1, 30))
    ]
    messages = [
        {
            "type": "track",
            "userId": user,
            "event": name,
            "messageId": f"m{i}",
            "timestamp": iso(datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=ts)),
        }
        for i, (user, ts, name) in enumerate(events)
    ]
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(tp, messages)
        refresh(tp.warehouse, DEFAULT)
        source = duckdb_source(tp.warehouse, DEFAULT)
        for length in (2, 5, 9, 16, 20):
            steps = [rng.choice(names) for _ in range(length)]
            window = rng.choice([3600, 6 * 3600, 20 * 3600])
            spec = {"steps": [{"event": name} for name in steps], "window": window}
            result = funnel(source, spec)
            assert units(result) == _reference(events, steps, window), (steps, window)
        assert drop_offs(source, spec, step=19).step == 19
