"""The journey facts the warehouse keeps (each event's person, order and stage; the stage
entries) stay equal to computing them from the events and the identity map, through new
events, late events, merges, links and unmerges, a rebuilt map and a new stage model; and only
the persons that changed are derived again."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from test_identity_rebuild import send

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.identity.identifiers import Identifier
from touchpoints.identity.rebuild import rebuild
from touchpoints.identity.resolver import LinkRequest
from touchpoints.journeys.attribution import NULL_MOVES_COLUMNS, kept_null_moves
from touchpoints.journeys.model import StageModel, load_model
from touchpoints.journeys.source import duckdb_source
from touchpoints.journeys.stages import (
    ENTRY_COLUMNS,
    FACT_COLUMNS,
    computed_facts,
    computed_stage_entries,
    ordered_events,
    with_progress,
)
from touchpoints.journeys.store import refresh

MODEL = load_model()
EVENTS = (
    ("page", None, {}),
    ("track", "Product Viewed", {}),
    ("track", "Configuration Saved", {}),
    ("track", "Quote Requested", {}),
    ("track", "Order Completed", {}),
    ("track", "Service Booked", {}),
    ("track", "Review Submitted", {"rating": 5}),
    ("track", "Review Submitted", {"rating": 2}),
    ("track", "Chat Started", {}),
)


TRAIT_COLUMNS = ("person", "key", "text_value", "number_value")


def kept(tp: Touchpoints) -> tuple[list[tuple[Any, ...]], ...]:
    facts = tp.warehouse.fetchall(f"SELECT {', '.join(FACT_COLUMNS)} FROM journey_facts")
    entries = tp.warehouse.fetchall(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM journey_stage_entries")
    traits = tp.warehouse.fetchall(f"SELECT {', '.join(TRAIT_COLUMNS)} FROM journey_latest_traits")
    moves = tp.warehouse.fetchall(f"SELECT {', '.join(NULL_MOVES_COLUMNS)} FROM journey_null_moves")
    return (
        sorted(facts, key=repr),
        sorted(entries, key=repr),
        sorted(traits, key=repr),
        sorted(moves, key=repr),
    )


def computed(tp: Touchpoints, model: StageModel) -> tuple[list[tuple[Any, ...]], ...]:
    """The same, computed from journey_events and the identity map, as Spark does."""
    source = duckdb_source(tp.warehouse)  # no model: nothing kept is read
    assert source.derived_for is None
    facts = computed_facts(source, model).select(*FACT_COLUMNS).to_pyarrow().to_pylist()
    entries = with_progress(computed_stage_entries(source, model)).select(*ENTRY_COLUMNS)
    traits = source.latest_traits().select(*TRAIT_COLUMNS)
    moves = kept_null_moves(ordered_events(source)).select(*NULL_MOVES_COLUMNS)
    return (
        sorted((tuple(r.values()) for r in facts), key=repr),
        sorted((tuple(r.values()) for r in entries.to_pyarrow().to_pylist()), key=repr),
        sorted((tuple(r.values()) for r in traits.to_pyarrow().to_pylist()), key=repr),
        sorted((tuple(r.values()) for r in moves.to_pyarrow().to_pylist()), key=repr),
    )


def message(rng: random.Random, n: int, devices: list[str]) -> dict[str, Any]:
    kind, name, properties = rng.choice(EVENTS)
    day, hour = rng.randint(1, 20), rng.randint(0, 23)
    out: dict[str, Any] = {
        "type": kind,
        "anonymousId": rng.choice(devices),
        # Whole hours only: same-moment events are common, so arrival order matters.
        "timestamp": f"2026-05-{day:02d}T{hour:02d}:00:00Z",
        "messageId": f"m{n}",
        "context": {"campaign": {"name": "spring"}} if rng.random() < 0.1 else {},
    }
    if rng.random() < 0.3:  # a trait the event carries: the latest per person is kept
        out["context"]["traits"] = {"plan": rng.choice(["basic", "plus"]), "visits": n}
    if kind == "track":
        out |= {"event": name, "properties": properties}
    else:
        out |= {"name": "Home", "properties": {"path": "/"}}
    return out


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_facts_equal_computed_ones_through_merges_links_and_unmerges(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    devices = [f"d{i}" for i in range(24)]
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        n = 0
        links: list[int] = []
        for round_ in range(8):
            batch = []
            for _ in range(rng.randint(5, 25)):
                n += 1
                batch.append(message(rng, n, devices))
            if round_ > 0:  # sign-ins: a device joins a user (a merge when the user is known)
                for _ in range(rng.randint(1, 3)):
                    n += 1
                    batch.append(
                        message(rng, n, devices)
                        | {"type": "identify", "userId": f"u{rng.randint(1, 6)}"}
                    )
            send(tp, batch)
            if round_ in (3, 5):  # an accepted match between two devices
                seen = sorted({m["anonymousId"] for m in batch})
                a, b = rng.sample(seen, 2)
                outcomes = tp.identity.add_links(
                    [
                        LinkRequest(
                            Identifier("anonymous_id", a), Identifier("anonymous_id", b), "match"
                        )
                    ]
                )
                links += [o.link_id for o in outcomes if o.link_id]
            if round_ == 6 and links:  # an operator takes a link back: an unmerge
                tp.identity.remove_link(links[0])
            done = refresh(tp.warehouse, MODEL)
            assert done.full == (round_ == 0)
            facts, entries, traits, moves = kept(tp)
            assert (facts, entries, traits, moves) == computed(tp, MODEL), f"round {round_}"
            assert traits, f"round {round_}: no latest trait to compare"
            persons = len({row[FACT_COLUMNS.index("person")] for row in facts})
            if round_ > 0:  # only the persons that changed were derived again
                assert 0 < done.persons <= persons
        assert len(facts) == n
        # Null paths of both keys, begun from (start) and ended in (null), were compared.
        begun = {(m[1], m[2]) for m in moves}
        assert begun >= {("channel", "(start)"), ("campaign", "(start)")}, begun
        assert "(null)" in {m[3] for m in moves}
        merges = dict(
            tp.warehouse.fetchall("SELECT kind, count(*) FROM identity_merges GROUP BY 1")
        )
        assert merges.get("merge", 0) >= 3 and merges.get("link", 0) >= 1, merges
        assert {row[1] for row in entries} >= {"awareness", "consideration", "purchase"}
        assert refresh(tp.warehouse, MODEL).persons == 0  # nothing new: nothing derived


def test_a_late_event_moves_the_stage_entry_and_the_stages_of_later_events(
    tmp_path: Path,
) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(
            tp,
            [
                {"type": "track", "anonymousId": "p", "event": "Product Viewed",
                 "timestamp": "2026-05-02T10:00:00Z", "messageId": "a"},
                {"type": "track", "anonymousId": "p", "event": "Order Completed",
                 "timestamp": "2026-05-05T10:00:00Z", "messageId": "b"},
            ],
        )  # fmt: skip
        refresh(tp.warehouse, MODEL)
        stages = dict(tp.warehouse.fetchall("SELECT seq, stage_index FROM journey_facts"))
        assert sorted(stages.values()) == [1, 3]  # consideration, then purchase
        # A quote from before the order arrives late: decision is entered on 4 May, and the
        # order is still what enters purchase.
        send(
            tp,
            [{"type": "track", "anonymousId": "p", "event": "Quote Requested",
              "timestamp": "2026-05-04T10:00:00Z", "messageId": "c"}],
        )  # fmt: skip
        done = refresh(tp.warehouse, MODEL)
        assert (done.events, done.persons, done.full) == (1, 1, False)
        rows = tp.warehouse.fetchall(
            "SELECT event, order_in_person, stage_index FROM journey_facts ORDER BY ts"
        )
        assert rows == [
            ("Product Viewed", 0, 1),
            ("Quote Requested", 1, 2),
            ("Order Completed", 2, 3),
        ]


def test_a_rebuilt_identity_map_or_another_model_derives_everything_again(
    tmp_path: Path,
) -> None:
    rng = random.Random(7)
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(tp, [message(rng, i, ["a", "b", "c"]) for i in range(30)])
        assert refresh(tp.warehouse, MODEL).full
        assert not refresh(tp.warehouse, MODEL).full
        rebuild(tp.identity)
        again = refresh(tp.warehouse, MODEL)
        assert again.full and again.persons == 3
        assert kept(tp) == computed(tp, MODEL)
        # A model with only two stages: the kept rows follow it, and a source made for the
        # old model does not read them.
        small = StageModel.model_validate(
            {
                "stages": [
                    {"name": "seen", "rules": [{"first": True}]},
                    {"name": "bought", "rules": [{"event": ["Order Completed"]}]},
                ]
            }
        )
        assert refresh(tp.warehouse, small).full
        assert kept(tp) == computed(tp, small)
        assert duckdb_source(tp.warehouse, small).derived(small)
        assert duckdb_source(tp.warehouse, MODEL).derived_for is None


def test_a_failed_refresh_leaves_the_kept_facts_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from touchpoints.journeys import store

    rng = random.Random(9)
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(tp, [message(rng, i, ["a", "b"]) for i in range(10)])
        refresh(tp.warehouse, MODEL)
        before = kept(tp)
        send(tp, [message(rng, i, ["a", "b"]) for i in range(10, 20)])

        def broken(*_args: object) -> None:
            raise RuntimeError("disk full")

        monkeypatch.setattr(store, "_insert_derived", broken)
        with pytest.raises(RuntimeError):
            refresh(tp.warehouse, MODEL)
        assert kept(tp) == before
        assert tp.warehouse.scalar("SELECT count(*) FROM journey_events") == 10
        monkeypatch.undo()
        done = refresh(tp.warehouse, MODEL)
        assert (done.events, done.full) == (10, False)
        assert kept(tp) == computed(tp, MODEL)
