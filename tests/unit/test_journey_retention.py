"""Retention cohorts, hand-computed on the real DuckDB file: ISO weeks begin on Monday (the
last millisecond of a Sunday is the week before), a same-moment event that arrived later is a
return, a late event that happened earlier moves a person's cohort, periods not yet reached
are unknown rather than 0, per device differs from per person, and DuckDB and Spark agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_identity_rebuild import send

from conftest import spark_source
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.journeys.funnels import AnalysisError
from touchpoints.journeys.model import load_model
from touchpoints.journeys.retention import retention
from touchpoints.journeys.source import duckdb_source
from touchpoints.journeys.store import refresh
from touchpoints.times import iso

DEFAULT = load_model()  # the facts kept for the default model are what the API reads


def ev(anon: str, ts: str, message_id: str, event: str = "Page Viewed", **extra: Any) -> dict:
    message: dict[str, Any] = {
        "type": "track",
        "anonymousId": anon,
        "timestamp": f"2026-{ts}Z",
        "messageId": message_id,
        "event": event,
    }
    return message | extra


def identify(anon: str, ts: str, message_id: str, user: str) -> dict:
    return {
        "type": "identify",
        "anonymousId": anon,
        "userId": user,
        "timestamp": f"2026-{ts}Z",
        "messageId": message_id,
    }


# Weeks: W0 = 2 March (a Monday) to 8 March, W1 = 9-15, W2 = 16-22, W3 = 23-29, W4 = 30
# March to 5 April. The latest event is on 2 April, so W4 is known and W5 is not.
def journeys(tp: Touchpoints) -> None:
    send(
        tp,
        [
            # Anna, signed in on her phone and laptop: one person, three devices' worth of
            # anchors (her user id for the identifies, the laptop's and the phone's cookies).
            identify("phone", "03-02T09:00:00", "a1", "anna"),
            identify("laptop", "03-02T09:01:00", "a2", "anna"),
            ev("laptop", "03-02T10:00:00", "a3"),
            ev("laptop", "03-08T23:59:59", "a4", "Product Viewed"),
            ev("phone", "03-10T12:00:00", "a5", "Order Completed"),
            # Ben: starts in the last second of W0's Sunday, returns at W1's first moment.
            ev("store-1", "03-08T23:59:59.999", "b1"),
            ev("store-1", "03-09T00:00:00", "b2"),
            # Cem: two events at the same moment; the second to arrive is a return.
            ev("cem", "03-03T10:00:00", "c1"),
            ev("cem", "03-03T10:00:00", "c2"),
            # Dan: seen in W1 ...
            ev("dan", "03-10T10:00:00", "d1"),
            # Eve: starts in W1, skips W2, back in W3 and W4.
            ev("eve", "03-11T10:00:00", "e1"),
            ev("eve", "03-25T10:00:00", "e2"),
            ev("eve", "04-02T10:00:00", "e3"),
        ],
    )
    # ... but an event from W0 arrives late: Dan's cohort is W0, and W1 a return.
    send(tp, [ev("dan", "03-05T10:00:00", "d0")])


@pytest.fixture
def tp_journeys(tmp_path: Path) -> Any:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, DEFAULT)
        yield tp


def table(result: Any) -> dict[str, tuple[int, list[int | None]]]:
    return {c.cohort.isoformat(): (c.size, c.returned) for c in result.cohorts}


def test_weekly_cohorts_per_person(tp_journeys: Any) -> None:
    result = retention(
        duckdb_source(tp_journeys.warehouse, DEFAULT), {"period": "week", "periods": 4}
    )
    # W0: Anna, Ben, Cem, Dan. Week 0: Anna (her laptop), Cem (the later arrival); week 1:
    # Anna (the order), Ben (Monday 00:00), Dan (the late event moved him to W0).
    # W1: Eve, back in week 2 and 3; week 4 (6 April) is after the latest event.
    assert table(result) == {
        "2026-03-02": (4, [2, 3, 0, 0, 0]),
        "2026-03-09": (1, [0, 0, 1, 1, None]),
    }
    assert result.cohorts[0].share == [0.5, 0.75, 0.0, 0.0, 0.0]
    assert result.cohorts[1].share == [0.0, 0.0, 1.0, 1.0, None]
    assert iso(result.as_of) == "2026-04-02T10:00:00.000Z"


def test_per_device_anna_is_three_starts(tp_journeys: Any) -> None:
    result = retention(
        duckdb_source(tp_journeys.warehouse, DEFAULT),
        {"period": "week", "periods": 4, "unit": "device"},
    )
    # W0: Anna's user id (identifies), her laptop, Ben, Cem, Dan; W1: her phone, Eve.
    assert table(result) == {
        "2026-03-02": (5, [3, 2, 0, 0, 0]),
        "2026-03-09": (2, [0, 0, 1, 1, None]),
    }


def test_monthly_cohorts(tp_journeys: Any) -> None:
    result = retention(
        duckdb_source(tp_journeys.warehouse, DEFAULT), {"period": "month", "periods": 2}
    )
    # Everybody came back in March after starting; Eve in April; May is not known yet.
    assert table(result) == {"2026-03-01": (5, [5, 1, None])}
    assert result.cohorts[0].share == [1.0, 0.2, None]


def test_named_start_and_return_events(tp_journeys: Any) -> None:
    source = duckdb_source(tp_journeys.warehouse, DEFAULT)
    orders = retention(source, {"periods": 2, "return_event": "Order Completed"})
    assert table(orders) == {"2026-03-02": (4, [0, 1, 0]), "2026-03-09": (1, [0, 0, 0])}
    # Anna's view (Sunday of W0) starts her; the order on Tuesday is a week-1 return.
    viewed = retention(
        source,
        {"periods": 1, "start_event": "Product Viewed", "return_event": "Order Completed"},
    )
    assert table(viewed) == {"2026-03-02": (1, [0, 1])}


def test_since_chooses_cohorts_by_the_first_start(tp_journeys: Any) -> None:
    result = retention(
        duckdb_source(tp_journeys.warehouse, DEFAULT),
        {"periods": 1, "since": "2026-03-09T00:00:00Z"},
    )
    # Ben and Dan were active in W1 but started in W0: only Eve.
    assert table(result) == {"2026-03-09": (1, [0, 0])}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"period": "day"}, "period: Input should be 'week' or 'month'"),
        ({"periods": 0}, "periods: Input should be greater than or equal to 1"),
        ({"return_event": " "}, "return_event: give an event name, or leave it out"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_a_bad_retention_request_is_refused_with_the_place_and_the_reason(
    tp_journeys: Any, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(AnalysisError) as caught:
        retention(duckdb_source(tp_journeys.warehouse, DEFAULT), spec)
    assert message in str(caught.value)


def everything(source: Any) -> dict[str, Any]:
    return {
        "weekly_devices": retention(source, {"periods": 4, "unit": "device"}).model_dump(),
        "monthly": retention(source, {"period": "month", "periods": 2}).model_dump(),
    }


@pytest.mark.spark
def test_duckdb_and_spark_give_the_same_retention(tp_journeys: Any, spark: object) -> None:
    on_duckdb = everything(duckdb_source(tp_journeys.warehouse, DEFAULT))
    on_spark = everything(spark_source(spark, tp_journeys))
    assert on_spark == on_duckdb
    assert on_duckdb["weekly_devices"]["cohorts"][0]["returned"] == [3, 2, 0, 0, 0]


@pytest.mark.parametrize(
    "spec",
    [
        {"periods": 4},
        {"periods": 4, "unit": "device"},
        {"period": "month", "periods": 2},
        {"periods": 3, "start_event": "Product Viewed"},
        {"periods": 3, "start_event": "Order Completed", "unit": "device"},
        {"periods": 2, "return_event": "Order Completed"},
    ],
)
def test_the_kept_facts_give_what_the_events_give(tp_journeys: Any, spec: dict[str, Any]) -> None:
    # The kept facts' order answers returns by period; the events alone, by joining each
    # event with its unit's start: the two ways must agree on every question.
    kept = duckdb_source(tp_journeys.warehouse, DEFAULT)
    computed = duckdb_source(tp_journeys.warehouse)
    assert kept.derived(DEFAULT) and not computed.derived(DEFAULT)
    assert retention(kept, spec) == retention(computed, spec)
