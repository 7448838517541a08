"""Incremental identity updates and the set-based rebuild agree, on the real DuckDB file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.identity.identifiers import Identifier
from touchpoints.identity.rebuild import rebuild
from touchpoints.identity.resolver import LinkRequest


def send(tp: Touchpoints, messages: list[dict[str, Any]]) -> None:
    outcome = tp.judge({"batch": messages}, "batch", source="identity-test")
    assert not outcome.rejected, outcome.rejected
    tp.write_rows(outcome.rows)


def snapshot(tp: Touchpoints) -> dict[str, Any]:
    wh = tp.warehouse
    return {
        "identifiers": wh.fetchall(
            "SELECT sid, type, value, first_seq, person, detached FROM identifiers ORDER BY sid"
        ),
        "event_identifiers": wh.fetchall(
            "SELECT seq, pos, sid FROM event_identifiers ORDER BY seq, pos"
        ),
        "rejections": wh.fetchall(
            "SELECT seq, message_id, link_id, person, other, sid, rule FROM identity_rejections "
            "ORDER BY seq, link_id NULLS FIRST, sid"
        ),
        "processed": tp.identity.processed_seq(),
    }


def event_persons(tp: Touchpoints) -> dict[str, int]:
    return dict(
        tp.warehouse.fetchall(
            "SELECT e.message_id, i.person FROM events e "
            "JOIN event_identifiers ei ON ei.seq = e.seq AND ei.pos = 0 "
            "JOIN identifiers i ON i.sid = ei.sid"
        )
    )


def test_a_cross_device_journey_becomes_one_person_and_lookups_find_it(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(
            tp,
            [
                {"type": "page", "anonymousId": "laptop", "messageId": "m1"},
                {"type": "page", "anonymousId": "phone", "messageId": "m2"},
                {
                    "type": "identify",
                    "userId": "u1",
                    "anonymousId": "laptop",
                    "traits": {"email": "Anna@Example.com", "phone": "0171 2345678"},
                    "messageId": "m3",
                },
            ],
        )
        send(tp, [{"type": "track", "event": "Login", "userId": "u1", "anonymousId": "phone"}])
        laptop = tp.identity.lookup(Identifier("anonymous_id", "laptop"))
        assert laptop == 1
        for identifier in (
            Identifier("anonymous_id", "phone"),
            Identifier("user_id", "u1"),
            Identifier("email", " anna@EXAMPLE.com"),  # looked up in its normal form
            Identifier("phone", "+49 171 2345678"),
            Identifier("person", "2"),  # the phone's person before the merge
        ):
            assert tp.identity.lookup(identifier) == 1, identifier
        assert tp.identity.lookup(Identifier("email", "nobody@example.com")) is None
        merges = tp.warehouse.fetchall("SELECT kind, kept, absorbed, sid FROM identity_merges")
        assert merges == [("merge", 1, 2, 2)]
        assert tp.identity.identifiers_of(1) == {
            "anonymous_id": ["laptop", "phone"],
            "email": ["anna@example.com"],
            "phone": ["+491712345678"],
            "user_id": ["u1"],
        }


def test_detach_splits_a_person_and_survives_a_rebuild(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(
            tp,
            [
                {"type": "identify", "userId": "mother", "anonymousId": "tablet"},
                {"type": "identify", "anonymousId": "tablet", "traits": {"email": "kid@x.de"}},
                {"type": "track", "event": "Chat Started", "anonymousId": "kid-phone",
                 "context": {"traits": {"email": "kid@x.de"}}},
            ],
        )  # fmt: skip
        tablet = tp.warehouse.scalar(
            "SELECT sid FROM identifiers WHERE type = 'anonymous_id' AND value = 'tablet'"
        )
        assert {p for _, p in tp.identity.persons_by_sid().items()} == {1}
        persons = tp.identity.detach(tablet, note="family tablet")
        kid = tp.identity.lookup(Identifier("email", "kid@x.de"))
        assert tp.identity.lookup(Identifier("user_id", "mother")) == 1
        assert tp.identity.lookup(Identifier("anonymous_id", "tablet")) == tablet
        assert kid not in (1, tablet)
        assert persons == sorted({1, tablet, kid})
        log = tp.warehouse.fetchall("SELECT kind, kept, sid, note FROM identity_merges")
        assert ("unmerge", 1, tablet, "family tablet") in log
        before = snapshot(tp)
        rebuild(tp.identity)
        assert snapshot(tp) == before


def test_catch_up_after_events_stored_without_identity_rows(tmp_path: Path) -> None:
    settings_ = load_settings(tmp_path / "data")
    with Touchpoints(settings_) as tp:
        outcome = tp.judge(
            {"batch": [{"type": "identify", "userId": "u", "anonymousId": "a"}]},
            "batch",
            source="t",
        )
        tp.store.append(outcome.rows)  # as if the process died before the identity update
        assert tp.identity.processed_seq() == 0
    with Touchpoints(settings_) as tp:
        tp.start_writer()
        assert tp.identity.processed_seq() == 1
        assert tp.identity.lookup(Identifier("anonymous_id", "a")) == 1


def test_catch_up_takes_the_rows_just_stored_and_reads_back_after_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's catch-up applies the rows it has just stored without reading them back;
    when they are not the next to apply (a batch was stored without its catch-up), it reads
    from where the map stands, both batches. Either way the map is what a rebuild makes."""
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        reads: list[int] = []
        read_back = tp.identity.store.events_after

        def events_after(seq: int, limit: int) -> Any:
            reads.append(seq)
            return read_back(seq, limit)

        monkeypatch.setattr(tp.identity.store, "events_after", events_after)
        send(
            tp,
            [
                {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m1"},
                {"type": "page", "anonymousId": "a2", "messageId": "m2"},
            ],
        )
        assert reads == [] and tp.identity.processed_seq() == 2
        assert tp.identity.lookup(Identifier("user_id", "u1")) == 1
        alone = tp.judge(
            {"batch": [{"type": "identify", "userId": "u2", "anonymousId": "a2"}]},
            "batch",
            source="t",
        )
        tp.store.append(alone.rows)  # as if the process died before the identity update
        send(tp, [{"type": "track", "event": "Login", "userId": "u1", "anonymousId": "a3"}])
        assert reads == [2] and tp.identity.processed_seq() == 4
        assert tp.identity.lookup(Identifier("user_id", "u2")) == tp.identity.lookup(
            Identifier("anonymous_id", "a2")
        )
        assert tp.identity.lookup(Identifier("anonymous_id", "a3")) == 1
        check_incremental_equals_rebuild(tp)


# -- incremental == rebuild, for random streams ---------------------------------------------
users = st.sampled_from(["u1", "u2", "u3", None, None])
anons = st.sampled_from(["a1", "a2", "a3", "a4", "a5", "null"])  # "null" is junk
emails = st.sampled_from(["e1@x.de", "e2@x.de", "E1@X.DE", "test@test.com", None])
phones = st.sampled_from(["0171 1111111", "+49 171 1111111", "0171 2222222", None])
devices = st.sampled_from(["d1", "d2", None])


@st.composite
def message(draw: st.DrawFn) -> dict[str, Any]:
    user, anon = draw(users), draw(anons)
    if user is None:
        anon = anon if anon != "null" else "a1"
    msg: dict[str, Any] = {"type": "identify", "anonymousId": anon}
    if user is not None:
        msg["userId"] = user
    traits = {}
    if (email := draw(emails)) is not None:
        traits["email"] = email
    if (phone := draw(phones)) is not None:
        traits["phone"] = phone
    if traits:
        msg["traits"] = traits
    if (device := draw(devices)) is not None:
        msg["context"] = {"device": {"id": device}}
    # Out-of-order event times: arrival order (seq), not event time, decides.
    day = draw(st.integers(1, 28))
    msg["timestamp"] = f"2026-03-{day:02d}T10:00:00Z"
    msg["messageId"] = f"m{draw(st.integers(0, 40))}"  # repeats are replays: deduplicated
    return msg


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.one_of(
            st.lists(message(), min_size=1, max_size=8),  # a batch of events
            st.tuples(st.just("link"), st.integers(0, 60), st.integers(0, 60)),
            st.tuples(st.just("unlink"), st.integers(0, 10), st.just(0)),
        ),
        min_size=1,
        max_size=8,
    ),
    limits=st.sampled_from([{"user_id": 1, "email": 5, "phone": 5}, {"user_id": 1, "email": 1}]),
)
@pytest.mark.slow
def test_incremental_and_rebuilt_identity_maps_are_identical(
    tmp_path_factory, steps: list[Any], limits: dict[str, int]
) -> None:
    """Random events, probabilistic links between any two known identifiers (a link may be
    refused by the limits) and removed links (unmerges), in any order."""
    data = tmp_path_factory.mktemp("prop")
    with Touchpoints(load_settings(data)) as tp:
        tp.identity.limits = limits
        apply_steps(tp, steps)
        check_incremental_equals_rebuild(tp)


def apply_steps(tp: Touchpoints, steps: list[Any]) -> None:
    for step in steps:
        if isinstance(step, list):
            send(tp, list({m["messageId"]: m for m in step}.values()))
            continue
        kind, i, j = step
        if kind == "link":
            known = tp.warehouse.fetchall("SELECT type, value FROM identifiers ORDER BY sid")
            if len(known) < 2 or i % len(known) == j % len(known):
                continue
            a, b = known[i % len(known)], known[j % len(known)]
            request = LinkRequest(Identifier(*a), Identifier(*b), "match", 0.9)
            [outcome] = tp.identity.add_links([request])
            event(f"link: {outcome.refused or ('same' if outcome.already_one else 'merge')}")
        else:
            live = tp.warehouse.fetchall(
                "SELECT link_id FROM identity_links WHERE NOT removed ORDER BY link_id"
            )
            if live:
                tp.identity.remove_link(live[i % len(live)][0])
                event("unlink")


def check_incremental_equals_rebuild(tp: Touchpoints) -> None:
    incremental, persons = snapshot(tp), event_persons(tp)
    # The in-memory graph agrees with what was written.
    graph = tp.identity.graph()
    assert {sid: graph.find(sid) for sid, *_ in incremental["identifiers"]} == {
        row[0]: row[4] for row in incremental["identifiers"]
    }
    # Lookups (what the API answers from memory) agree with the warehouse.
    for _sid, id_type, value, _first, person, _detached in incremental["identifiers"]:
        assert tp.identity.lookup(Identifier(id_type, value)) == person
    result = rebuild(tp.identity)
    assert snapshot(tp) == incremental
    assert event_persons(tp) == persons
    assert result.persons == len({row[4] for row in incremental["identifiers"]})


@st.composite
def sparse_message(draw: st.DrawFn) -> dict[str, Any]:
    """An event with one or two identifiers, so that many persons stay apart until linked."""
    msg: dict[str, Any] = {"type": "identify", "anonymousId": draw(st.sampled_from(SPARSE_ANONS))}
    if draw(st.integers(0, 3)) == 0:
        msg["userId"] = draw(st.sampled_from(["u1", "u2", "u3"]))
    msg["messageId"] = f"s{draw(st.integers(0, 60))}"
    return msg


SPARSE_ANONS = [f"a{n}" for n in range(1, 13)]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("link"), st.integers(0, 60), st.integers(0, 60)),
            st.lists(sparse_message(), min_size=1, max_size=4),
            st.tuples(st.just("unlink"), st.integers(0, 10), st.just(0)),
        ),
        min_size=2,
        max_size=12,
    ),
)
@pytest.mark.slow
def test_links_unlinks_and_sparse_events_agree_with_a_rebuild(
    tmp_path_factory, steps: list[Any]
) -> None:
    data = tmp_path_factory.mktemp("links")
    with Touchpoints(load_settings(data)) as tp:
        apply_steps(tp, steps)
        check_incremental_equals_rebuild(tp)


# -- the stored event identifiers, reused while the rules that found them are today's ---------
KIOSK = [
    {"type": "page", "anonymousId": "kiosk-1", "messageId": "k1"},
    {"type": "identify", "anonymousId": "kiosk-1", "userId": "u1", "messageId": "k2"},
    {"type": "identify", "anonymousId": "kiosk-1", "userId": "u2", "messageId": "k3"},
    {"type": "identify", "anonymousId": "a9", "userId": "u2", "messageId": "k4"},
]


def test_a_rebuild_reuses_the_stored_event_identifiers_while_the_rules_are_unchanged(
    tmp_path: Path,
) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(tp, KIOSK)
        incremental = snapshot(tp)
        reused = rebuild(tp.identity)
        assert not reused.extracted
        assert "reuse" in reused.phases
        assert snapshot(tp) == incremental
        extracted = rebuild(tp.identity, extract=True)
        assert extracted.extracted
        assert snapshot(tp) == incremental
        assert (reused.events, reused.identifiers, reused.persons) == (
            extracted.events,
            extracted.identifiers,
            extracted.persons,
        )


def test_changed_identifier_rules_make_the_next_rebuild_extract_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Touchpoints(load_settings(data)) as tp:
        send(tp, KIOSK)
        assert tp.identity.lookup(Identifier("user_id", "u1")) == 1
    # The kiosk's id is blocked now: the stored identifiers were found by other rules.
    blocked = load_settings(data, identity_block_values=["kiosk-1"])
    with Touchpoints(blocked) as tp:
        assert tp.identity.store.rules() is None
        result = rebuild(tp.identity)
        assert result.extracted
        values = tp.warehouse.fetchall("SELECT value FROM identifiers ORDER BY sid")
        assert values == [("u1",), ("u2",), ("a9",)]
        assert tp.identity.store.rules() == tp.identity.extractor.fingerprint()
        assert not rebuild(tp.identity).extracted  # found by today's rules now
    # Opened again with the rules of before, the stored identifiers are no longer theirs.
    with Touchpoints(load_settings(data)) as tp:
        assert tp.identity.store.rules() is None
        assert rebuild(tp.identity).extracted
        assert tp.identity.lookup(Identifier("anonymous_id", "kiosk-1")) is not None


def test_a_map_made_before_the_rules_were_recorded_is_extracted_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Touchpoints(load_settings(data)) as tp:
        send(tp, KIOSK)
        tp.warehouse.run("UPDATE identity_state SET rules = NULL")  # as migration 14 leaves it
    with Touchpoints(load_settings(data)) as tp:
        assert tp.identity.store.rules() is None  # unknown stays unknown on open
        incremental = snapshot(tp)
        assert rebuild(tp.identity).extracted
        assert snapshot(tp) == incremental
        assert not rebuild(tp.identity).extracted
