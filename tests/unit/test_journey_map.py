"""The journey map: per-stage reach, conversion, time to move on, drop-off, channels and
touchpoints while in a stage, pain points weighed against dropping out, and transitions,
computed by hand on a small case (skipped stages, same timestamps, a late event); the
directly-follows counts equal pm4py's on the demo data; DuckDB and Spark give the same map."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_identity_rebuild import send

from conftest import spark_source
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.journeys.journey_map import (
    StageStep,
    directly_follows,
    journey_map,
    persons_who,
)
from touchpoints.journeys.model import StageModel, load_model
from touchpoints.journeys.source import duckdb_source
from touchpoints.journeys.spec import AnalysisError
from touchpoints.journeys.stages import computed_stage_entries, stage_entries, with_progress
from touchpoints.journeys.store import refresh

MODEL = StageModel.model_validate(
    {
        "stages": [
            {"name": "awareness", "rules": [{"first": True}]},
            {"name": "consideration", "rules": [{"event": "Product Viewed"}]},
            {"name": "decision", "rules": [{"event": "Quote Requested"}]},
            {"name": "purchase", "rules": [{"event": "Order Completed"}]},
        ],
        "pain_points": [
            {"name": "configurator error", "rules": [{"event": "Configurator Error"}]},
            {"name": "complaint", "rules": [{"event": "Complaint Filed", "channel": "phone"}]},
            {"name": "low rating", "rules": [{"properties": {"rating": {"lte": 2}}}]},
        ],
    }
)


def dumped(answers: list[Any]) -> list[dict[str, Any]]:
    """Parts of an answer as plain dicts, to compare with a hand-written table."""
    return [answer.model_dump() for answer in answers]


def ev(anon: str, ts: str, message_id: str, channel: str, event: str, **extra: Any) -> dict:
    """A track call, or a page call when ``event`` is a page name (Home)."""
    message: dict[str, Any] = {
        "anonymousId": anon,
        "timestamp": f"2026-03-{ts}Z",
        "messageId": message_id,
        "context": {"channel": channel},
    }
    if event == "Home":
        message |= {"type": "page", "name": "Home"}
    else:
        message |= {"type": "track", "event": event}
    return message | extra


def journeys(tp: Touchpoints) -> None:
    send(
        tp,
        [
            # Anna, laptop and phone: a visit and a product view at the same second (arrival
            # decides: the visit is first), a configurator error, a quote on the phone, then
            # she signs in on both devices and buys in the store.
            ev("a-laptop", "01T10:00:00", "a1", "web", "Home"),
            ev("a-laptop", "01T10:00:00", "a2", "web", "Product Viewed"),
            ev("a-laptop", "02T10:00:00", "a3", "web", "Configurator Error"),
            ev("a-phone", "03T12:00:00", "a4", "app", "Quote Requested"),
            {
                "type": "identify",
                "anonymousId": "a-phone",
                "userId": "anna",
                "timestamp": "2026-03-03T12:00:01Z",
                "messageId": "a5",
                "context": {"channel": "app"},
            },
            {
                "type": "identify",
                "anonymousId": "a-laptop",
                "userId": "anna",
                "timestamp": "2026-03-03T12:00:02Z",
                "messageId": "a6",
                "context": {"channel": "web"},
            },
            ev("a-laptop", "05T12:00:00", "a7", "store", "Order Completed"),
            # Ben: a product view is his first event (awareness and consideration at once),
            # an error and a complaint by phone, then nothing.
            ev("ben", "01T09:00:00", "b1", "web", "Product Viewed"),
            ev("ben", "02T09:00:00", "b2", "web", "Configurator Error"),
            ev("ben", "02T09:30:00", "b3", "phone", "Complaint Filed"),
            # Cem: skips consideration and decision; complains after buying (the last stage:
            # no dropping out to weigh there).
            ev("cem", "04T14:00:00", "c1", "web", "Home"),
            ev("cem", "04T15:00:00", "c2", "store", "Order Completed"),
            ev("cem", "06T15:00:00", "c3", "phone", "Complaint Filed"),
            # Dana: a visit, a newsletter, a quote; her product view arrives late (below).
            ev("dana", "02T08:00:00", "d1", "web", "Home"),
            ev("dana", "02T08:05:00", "d2", "email", "Email Opened"),
            ev("dana", "07T10:00:00", "d3", "web", "Quote Requested"),
            # Eve: a visit and an error at the same second, then nothing.
            ev("eve", "03T09:00:00", "e1", "web", "Home"),
            ev("eve", "03T09:00:00", "e2", "web", "Configurator Error"),
            # Finn: looks on the app and leaves, no pain on the way.
            ev("finn", "05T08:00:00", "f1", "app", "Product Viewed"),
            ev("finn", "05T09:00:00", "f2", "app", "Brochure Downloaded"),
        ],
    )
    # Dana's product view happened first but arrives last: it enters awareness and
    # consideration at its event time.
    send(tp, [ev("dana", "01T20:00:00", "d0", "web", "Product Viewed")])


def test_the_journey_map_of_a_small_case_matches_the_hand_count(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, MODEL)
        found = journey_map(duckdb_source(tp.warehouse, MODEL), MODEL, top=2)

    awareness, consideration, decision, purchase = found.stages
    # Awareness: 6 persons; all but Eve went on (Cem straight to purchase), four to
    # consideration. Times: Anna, Ben, Dana, Finn 0 s (same second or same event), Cem
    # 3,600 s: median 0, p90 0 + 0.6 × 3,600.
    assert awareness == StageStep(
        stage="awareness",
        reached=6,
        went_on=5,
        next_stage=4,
        dropped=1,
        conversion=0.8333,
        median_seconds=0.0,
        p90_seconds=2160.0,
        top_channels=[{"channel": "web", "persons": 3, "events": 4}],
        top_touchpoints=[
            {"event": "Home", "persons": 3, "events": 3},
            {"event": "Configurator Error", "persons": 1, "events": 1},
        ],
    )
    # Consideration: Anna, Ben, Dana, Finn; Anna (50 h) and Dana (5 days 14 h, from her late
    # product view) went on to decision.
    assert consideration == StageStep(
        stage="consideration",
        reached=4,
        went_on=2,
        next_stage=2,
        dropped=2,
        conversion=0.5,
        median_seconds=(180_000 + 482_400) / 2,
        p90_seconds=180_000 + 0.9 * (482_400 - 180_000),
        top_channels=[
            {"channel": "web", "persons": 3, "events": 6},
            {"channel": "mobile_app", "persons": 1, "events": 2},
        ],
        top_touchpoints=[
            {"event": "Product Viewed", "persons": 4, "events": 4},
            {"event": "Configurator Error", "persons": 2, "events": 2},
        ],
    )
    # Decision: Anna's quote and both sign-ins (the laptop's on the web) until her order.
    assert decision == StageStep(
        stage="decision",
        reached=2,
        went_on=1,
        next_stage=1,
        dropped=1,
        conversion=0.5,
        median_seconds=172_800.0,
        p90_seconds=172_800.0,
        top_channels=[
            {"channel": "web", "persons": 2, "events": 2},
            {"channel": "mobile_app", "persons": 1, "events": 2},
        ],
        top_touchpoints=[
            {"event": "Quote Requested", "persons": 2, "events": 2},
            {"event": "identify", "persons": 1, "events": 2},
        ],
    )
    assert (purchase.reached, purchase.went_on, purchase.dropped, purchase.conversion) == (
        2,
        None,
        None,
        None,
    )
    assert dumped(purchase.top_channels) == [
        {"channel": "store", "persons": 2, "events": 2},
        {"channel": "phone", "persons": 1, "events": 1},
    ]

    pains = {p.name: p for p in found.pain_points}
    # Configurator errors: Eve in awareness (dropped; none of the 5 others did), Anna and
    # Ben in consideration (1 of 2 dropped; of Dana and Finn, 1 of 2). Mantel-Haenszel:
    # (1·5/6 + 1·2/4) / (0·1/6 + 1·2/4) = 2.6667.
    error = pains["configurator error"]
    assert (error.persons, error.relative_risk) == (3, 2.6667)
    assert dumped(error.by_stage) == [
        {
            "stage": "awareness",
            "persons": 1,
            "dropped": 1,
            "drop_rate": 1.0,
            "others": 5,
            "others_dropped": 0,
            "others_drop_rate": 0.0,
            "relative_risk": None,
        },
        {
            "stage": "consideration",
            "persons": 2,
            "dropped": 1,
            "drop_rate": 0.5,
            "others": 2,
            "others_dropped": 1,
            "others_drop_rate": 0.5,
            "relative_risk": 1.0,
        },
    ]
    # Complaints by phone: Ben in consideration (dropped; 1 of 3 others did: RR 3); Cem's
    # after buying counts among persons but not against dropping out.
    complaint = pains["complaint"]
    assert (complaint.persons, complaint.relative_risk) == (2, 3.0)
    assert [(s.stage, s.persons, s.dropped) for s in complaint.by_stage] == [
        ("consideration", 1, 1)
    ]
    assert (pains["low rating"].persons, pains["low rating"].by_stage) == (0, [])

    assert dumped(found.stage_transitions) == [
        {"source": "awareness", "target": "consideration", "persons": 4},
        {"source": "awareness", "target": "purchase", "persons": 1},
        {"source": "consideration", "target": "decision", "persons": 2},
        {"source": "decision", "target": "purchase", "persons": 1},
    ]
    # Collapsed: no web → web; Anna's two app events count as one visit.
    assert dumped(found.channel_transitions) == [
        {"source": "email", "target": "web", "count": 1},
        {"source": "mobile_app", "target": "web", "count": 1},
        {"source": "store", "target": "phone", "count": 1},
        {"source": "web", "target": "email", "count": 1},
        {"source": "web", "target": "mobile_app", "count": 1},
        {"source": "web", "target": "phone", "count": 1},
        {"source": "web", "target": "store", "count": 2},
    ]


def test_directly_follows_orders_by_event_time_then_arrival(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, MODEL)
        source = duckdb_source(tp.warehouse, MODEL)
        channels = directly_follows(source, "channel")
        events = directly_follows(source, "event")
    assert channels == {
        ("web", "web"): 5,  # Anna 2, Ben 1, Dana 1, Eve 1
        ("mobile_app", "mobile_app"): 2,  # Anna's quote and sign-in; Finn
        ("web", "mobile_app"): 1,
        ("mobile_app", "web"): 1,
        ("web", "store"): 2,
        ("web", "phone"): 1,
        ("store", "phone"): 1,
        ("web", "email"): 1,
        ("email", "web"): 1,
    }
    # Same second: arrival decides (Eve's visit, then her error; Anna's visit, then her
    # product view); Dana's late product view comes first, by its event time.
    assert events[("Home", "Configurator Error")] == 1
    assert ("Configurator Error", "Home") not in events
    assert events[("Home", "Product Viewed")] == 1
    assert events[("Product Viewed", "Home")] == 1
    assert sum(events.values()) == 21 - 6  # 21 events, less each of 6 persons' first


# -- a reference no one here wrote ----------------------------------------------------------
def load_demo(tp: Touchpoints, people: int, out_dir: Path) -> None:
    """The simulated company's events and CRM export, as benchmarks/identity.py loads them."""
    from touchpoints.collect.importer import load_mapping, read_csv
    from touchpoints.demo.files import write_demo_files
    from touchpoints.demo.simulator import DemoConfig, Simulator

    sim = Simulator(DemoConfig(people=people))
    messages = list(sim.events())
    files = write_demo_files(sim, out_dir)
    mapping = load_mapping(files.crm_mapping)
    messages += [line.message for line in read_csv(files.crm_export, mapping) if line.message]
    for start in range(0, len(messages), 2000):
        outcome = tp.judge({"batch": messages[start : start + 2000]}, "import", source="test")
        assert not outcome.rejected and not outcome.body_problems
        tp.write_rows(outcome.rows)


@pytest.mark.slow
def test_directly_follows_equals_pm4py_discover_dfg_on_the_demo(tmp_path: Path) -> None:
    pm4py = pytest.importorskip("pm4py")
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        load_demo(tp, 300, tmp_path / "demo")
        refresh(tp.warehouse, load_model())
        source = duckdb_source(tp.warehouse, load_model())
        assert source.derived(load_model())
        events = source.events()
        # pm4py sorts each case by timestamp with a stable sort, so events of the same
        # moment keep the order they are given in: give them in arrival order (seq).
        frame = (
            events.select(case="person", ts="ts", seq="seq", channel="channel", event="event")
            .order_by(["case", "ts", "seq"])
            .to_pandas()
        )
        ours = {by: directly_follows(source, by) for by in ("channel", "event")}
        sankey = journey_map(source, load_model()).channel_transitions

    frame["case:concept:name"] = frame["case"].astype(str)
    frame["time:timestamp"] = frame["ts"]
    ties = frame.duplicated(["case", "ts"]).sum()
    assert ties > 100  # same-moment events within a person: the order above matters
    for by in ("channel", "event"):
        log = frame.assign(**{"concept:name": frame[by]})
        dfg, _starts, _ends = pm4py.discover_dfg(log)
        assert {pair: int(n) for pair, n in dfg.items()} == ours[by]
        assert sum(ours[by].values()) == len(frame) - frame["case"].nunique()
    # The Sankey's channel transitions are the same counts without self-loops.
    assert {(t.source, t.target): t.count for t in sankey} == {
        (a, b): n for (a, b), n in ours["channel"].items() if a != b
    }
    assert len(sankey) > 20
    # The same log with same-moment events the other way round gives another event DFG.
    reversed_ties = frame.sort_values(["case", "ts", "seq"], ascending=[True, True, False])
    other, _s, _e = pm4py.discover_dfg(reversed_ties.assign(**{"concept:name": frame["event"]}))
    assert dict(other) != ours["event"]


def by_hand(entries: pd.DataFrame) -> pd.DataFrame:
    """Each entry's progress counted in Python: the stage of the next entry (by time, then
    arrival, then stage), the first later stage entered with or after it, the next stage."""
    rows = []
    for _person, mine in entries.groupby("person"):
        ordered = mine.sort_values(["entered_at", "entered_seq", "stage_index"]).to_dict("records")
        for i, e in enumerate(ordered):
            later = [
                o
                for o in ordered
                if o["stage_index"] > e["stage_index"]
                and (o["entered_at"], o["entered_seq"]) >= (e["entered_at"], e["entered_seq"])
            ]
            rows.append(
                {
                    **e,
                    "next_index": ordered[i + 1]["stage_index"] if i + 1 < len(ordered) else None,
                    "went_on_at": min((o["entered_at"] for o in later), default=None),
                    "to_next": any(o["stage_index"] == e["stage_index"] + 1 for o in later),
                }
            )
    return pd.DataFrame(rows)


def test_the_progress_kept_with_the_entries_equals_the_progress_computed(tmp_path: Path) -> None:
    """The derivation keeps each entry's next entry, later stage and next stage; the map reads
    them for whole journeys and computes them within a period: both give what Python counts
    from the entries, and the map what the events give (a source that reads no kept rows),
    on a demo where some skip a stage."""
    model = load_model()
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        load_demo(tp, 200, tmp_path / "demo")
        refresh(tp.warehouse, model)
        kept = duckdb_source(tp.warehouse, model)
        computed = duckdb_source(tp.warehouse)
        assert kept.derived(model) and not computed.derived(model)
        ours = stage_entries(kept, model).to_pandas()
        fresh = with_progress(computed_stage_entries(computed, model)).to_pandas()
        mapped = [journey_map(source, model).model_dump() for source in (kept, computed)]
    progress = ["person", "stage_index", "next_index", "went_on_at", "to_next"]
    theirs = by_hand(ours.drop(columns=progress[2:]))
    ours, fresh, theirs = (
        f[progress].sort_values(progress[:2]).reset_index(drop=True) for f in (ours, fresh, theirs)
    )
    assert len(ours) > 300
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)
    pd.testing.assert_frame_equal(fresh, theirs, check_dtype=False)
    assert ours.to_next.sum() > 50 and ours.went_on_at.isna().sum() > 50
    assert (ours.went_on_at.notna() & ~ours.to_next).sum() > 0  # a stage skipped
    assert mapped[0] == mapped[1]


@pytest.mark.spark
def test_duckdb_and_spark_give_the_same_journey_map(tmp_path: Path, spark: object) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, MODEL)
        on_duckdb = journey_map(duckdb_source(tp.warehouse, MODEL), MODEL, top=2).model_dump()
        on_spark = journey_map(spark_source(spark, tp), MODEL, top=2).model_dump()  # type: ignore[arg-type]
    assert on_spark == on_duckdb
    assert on_duckdb["stages"][1]["p90_seconds"] == 452_160.0
    assert on_duckdb["pain_points"][0]["relative_risk"] == 2.6667


def test_repeated_contacts_count_only_when_often_enough_within_the_days(tmp_path: Path) -> None:
    """Two calls within 14 days are a signal; two calls 20 days apart are not; of three
    calls, the second and third within 14 days are."""
    model = StageModel.model_validate(
        {
            "stages": [{"name": "awareness", "rules": [{"first": True}]}],
            "pain_points": [
                {
                    "name": "repeated calls",
                    "rules": [{"channel": "phone"}],
                    "min_count": 2,
                    "within_days": 14,
                },
                {"name": "third call ever", "rules": [{"channel": "phone"}], "min_count": 3},
            ],
        }
    )
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(
            tp,
            [
                ev("ann", "01T10:00:00", "a1", "phone", "Call"),
                ev("ann", "10T10:00:00", "a2", "phone", "Call"),  # 9 days later
                ev("ben", "01T10:00:00", "b1", "phone", "Call"),
                ev("ben", "21T10:00:00", "b2", "phone", "Call"),  # 20 days later
                ev("cem", "01T10:00:00", "c1", "phone", "Call"),
                ev("cem", "20T10:00:00", "c2", "phone", "Call"),
                ev("cem", "29T10:00:00", "c3", "phone", "Call"),  # 9 days after c2
                ev("cem", "29T11:00:00", "c4", "web", "Home"),
            ],
        )
        refresh(tp.warehouse, model)
        result = journey_map(duckdb_source(tp.warehouse, model), model)
        persons = {p.name: p.persons for p in result.pain_points}
        assert persons == {"repeated calls": 2, "third call ever": 1}


def test_pain_rules_that_name_their_events_match_on_every_other_condition(
    tmp_path: Path,
) -> None:
    """When every rule names its events, the map copies those events once, with only the
    columns the rules read (rule_columns): each kind of condition still matches as on all
    the events."""
    complaint = ["Complaint Filed"]
    model = StageModel.model_validate(
        {
            "stages": [{"name": "awareness", "rules": [{"first": True}]}],
            "pain_points": [
                {"name": "by phone", "rules": [{"event": complaint, "channel": ["phone"]}]},
                {"name": "first thing", "rules": [{"event": complaint, "first": True}]},
                {"name": "from a campaign", "rules": [{"event": complaint, "campaign": True}]},
                {
                    "name": "complaint page",
                    "rules": [{"event": ["Home"], "type": ["page"], "path_prefix": "/beschwerde"}],
                },
            ],
        }
    )
    utm = {"channel": "web", "campaign": {"name": "spring", "medium": "email"}}
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(
            tp,
            [
                ev("ann", "01T10:00:00", "a1", "phone", "Complaint Filed"),  # first, by phone
                ev("ben", "01T10:00:00", "b1", "web", "Home"),
                ev("ben", "01T11:00:00", "b2", "web", "Complaint Filed", context=utm),
                ev("cem", "01T10:00:00", "c1", "web", "Product Viewed"),
                ev(
                    "cem",
                    "01T11:00:00",
                    "c2",
                    "web",
                    "Home",
                    context={"channel": "web", "page": {"path": "/beschwerde/form"}},
                ),
                ev(
                    "dan",
                    "01T10:00:00",
                    "d1",
                    "web",
                    "Home",
                    context={"channel": "web", "page": {"path": "/modelle"}},
                ),
            ],
        )
        refresh(tp.warehouse, model)
        result = journey_map(duckdb_source(tp.warehouse, model), model)
    persons = {p.name: p.persons for p in result.pain_points}
    assert persons == {
        "by phone": 1,  # Ann
        "first thing": 1,  # Ann; Ben's complaint is his second event
        "from a campaign": 1,  # Ben
        "complaint page": 1,  # Cem; Dan's page is elsewhere
    }


def test_a_date_range_keeps_the_entries_and_events_made_in_it(tmp_path: Path) -> None:
    """From 3 March (inclusive) to 7 March (exclusive): Anna's quote and order, Cem's whole
    journey, Eve, Finn; not Dana's quote on the 7th nor anything of the 1st and 2nd."""
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, MODEL)
        found = journey_map(
            duckdb_source(tp.warehouse, MODEL),
            MODEL,
            since=datetime(2026, 3, 3),
            until=datetime(2026, 3, 7),
        )
        with pytest.raises(AnalysisError, match="until: give a moment after since"):
            journey_map(
                duckdb_source(tp.warehouse, MODEL),
                MODEL,
                since=datetime(2026, 3, 7),
                until=datetime(2026, 3, 3),
            )
    steps = {s.stage: s for s in found.stages}
    # Awareness: Cem, Eve, Finn (Anna, Ben and Dana entered it before); Cem went on to
    # purchase, Finn to consideration.
    assert (steps["awareness"].reached, steps["awareness"].went_on) == (3, 2)
    assert (steps["consideration"].reached, steps["consideration"].went_on) == (1, 0)
    assert (steps["decision"].reached, steps["decision"].went_on) == (1, 1)  # Anna
    assert steps["purchase"].reached == 2  # Anna, Cem
    # In awareness in the range: Cem's visit, Eve's visit and error (Finn's product view
    # enters consideration at once).
    assert dumped(steps["awareness"].top_channels) == [
        {"channel": "web", "persons": 2, "events": 3}
    ]
    errors = next(p for p in found.pain_points if p.name == "configurator error")
    assert errors.persons == 1  # Eve's; Anna's and Ben's were on the 2nd
    assert [(r.stage, r.persons, r.dropped) for r in errors.by_stage] == [("awareness", 1, 1)]
    assert {(t.source, t.target): t.count for t in found.channel_transitions} == {
        ("mobile_app", "web"): 1,  # Anna's quote, then her sign-in on the laptop
        ("web", "store"): 2,  # Anna, Cem
        ("store", "phone"): 1,  # Cem's complaint
    }
    assert [(t.source, t.target, t.persons) for t in found.stage_transitions] == [
        ("awareness", "consideration", 1),
        ("awareness", "purchase", 1),
        ("decision", "purchase", 1),
    ]


def test_a_channel_an_age_group_or_a_segment_keeps_those_persons_journeys(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        send(
            tp,
            [
                {"type": "identify", "userId": "anna", "traits": {"birthday": "1990-05-01",
                 "city": "Hamburg"}, "timestamp": "2026-03-05T13:00:00Z", "messageId": "a8"},
                # Ben lived in Hamburg, then moved to Köln: his latest city is Köln.
                {"type": "identify", "anonymousId": "ben", "traits": {"city": "Hamburg"},
                 "timestamp": "2026-03-01T10:00:00Z", "messageId": "b8"},
                {"type": "identify", "anonymousId": "ben", "traits": {"city": "Köln"},
                 "timestamp": "2026-03-04T10:00:00Z", "messageId": "b9"},
            ],
        )  # fmt: skip
        refresh(tp.warehouse, MODEL)
        source = duckdb_source(tp.warehouse, MODEL)
        store = journey_map(source, MODEL, persons=persons_who(source, channel="store"))
        anna = journey_map(
            source,
            MODEL,
            persons=persons_who(source, age_group="35-44", as_of=datetime(2026, 3, 31).date()),
        )
        unknown = journey_map(source, MODEL, persons=persons_who(source, age_group="unknown"))
        with pytest.raises(AnalysisError, match="age_group: '30-39' is not one of the bands"):
            persons_who(source, age_group="30-39")
        hamburg = journey_map(source, MODEL, persons=persons_who(source, segment="city=hamburg"))
        koeln_web = persons_who(source, segment=" city = KÖLN ", channel="web")
        assert [p["person"] for p in koeln_web.to_pyarrow().to_pylist()] == [
            tp.profiles.resolve("anonymous_id:ben")
        ]
        with pytest.raises(AnalysisError, match="segment: 'Hamburg' is not a trait and a value"):
            persons_who(source, segment="Hamburg")
    # The store: Anna (her order) and Cem (his order); both reached awareness and went on.
    assert [(s.stage, s.reached, s.went_on) for s in store.stages[:2]] == [
        ("awareness", 2, 2),
        ("consideration", 1, 1),  # Anna only (Cem skipped it); she went on to decision
    ]
    assert {(t.source, t.target) for t in store.channel_transitions} >= {("web", "store")}
    # 35-44 on 31 March 2026: Anna (born 1 May 1990: 35); the others have no birthday.
    assert [s.reached for s in anna.stages] == [1, 1, 1, 1]
    assert [s.reached for s in unknown.stages][0] == 5
    # Latest city Hamburg (any letter case): Anna only; Ben has moved to Köln.
    assert [s.reached for s in hamburg.stages] == [1, 1, 1, 1]


def test_the_demos_conversations_with_the_assistant_are_pain_points_of_the_map(
    tmp_path: Path,
) -> None:
    """The demo's chat and voice conversations with the service assistant reach the journey
    map as its pain points (a handover, an unresolved conversation) and as channels."""
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        load_demo(tp, 300, tmp_path / "demo")
        refresh(tp.warehouse, load_model())
        found = journey_map(duckdb_source(tp.warehouse, load_model()), load_model())
        channels = {
            channel
            for (channel,) in tp.warehouse.fetchall(
                "SELECT DISTINCT channel FROM events WHERE event LIKE 'Live Chat %'"
            )
        }
    pains = {pain.name: pain.persons for pain in found.pain_points}
    assert pains["chatbot handover"] > 0 and pains["unresolved conversation"] > 0, pains
    assert {"chat", "voice"} <= channels
