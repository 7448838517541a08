"""The 360° profile: traits with provenance, computed attributes, timeline, search."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.identity.rebuild import rebuild
from touchpoints.profiles import ProfileNotFound, parse_key
from touchpoints.times import iso


def send(tp: Touchpoints, messages: list[dict[str, Any]]) -> None:
    outcome = tp.judge({"batch": messages}, "batch", source="profile-test")
    assert not outcome.rejected, outcome.rejected
    tp.write_rows(outcome.rows)


@pytest.fixture
def tp(tmp_path: Path):
    settings = load_settings(tmp_path / "data", trait_source_priority={"city": ["crm_export"]})
    with Touchpoints(settings) as core:
        yield core


def anna(tp: Touchpoints) -> None:
    send(
        tp,
        [
            {"type": "page", "anonymousId": "laptop", "timestamp": "2026-03-01T09:00:00Z",
             "context": {"page": {"url": "https://nordwind.de/modelle"}}},
            {"type": "identify", "userId": "u1", "anonymousId": "laptop",
             "timestamp": "2026-03-02T09:00:00Z",
             "traits": {"email": "anna@example.com", "city": "Hamburg", "plan": "basic"}},
            {"type": "track", "event": "Order Completed", "userId": "u1",
             "timestamp": "2026-03-10T12:00:00Z", "properties": {"revenue": 48900.5}},
            {"type": "screen", "name": "Fahrzeug", "anonymousId": "phone-app",
             "timestamp": "2026-03-12T08:00:00Z",
             "context": {"traits": {"email": "ANNA@example.com"}}},
            {"type": "track", "event": "Order Completed", "userId": "u1",
             "timestamp": "2026-04-01T12:00:00Z", "properties": {"total": 99}},
        ],
    )  # fmt: skip


def test_a_profile_brings_every_device_and_channel_of_a_person_together(tp) -> None:
    anna(tp)
    person = tp.profiles.resolve("email:anna@example.com")
    assert person == tp.profiles.resolve("anonymous_id:phone-app")  # linked by the e-mail
    profile = tp.profiles.get(person, now=datetime(2026, 4, 11, 12, tzinfo=UTC)).model_dump(
        mode="json", exclude={"trait_history"}
    )
    assert profile["person"] == f"person:{person}"
    assert {t: [i["value"] for i in v] for t, v in profile["identifiers"].items()} == {
        "anonymous_id": ["laptop", "phone-app"],
        "email": ["anna@example.com"],
        "user_id": ["u1"],
    }
    computed = profile["computed"]
    assert computed["events"] == 5
    assert computed["events_by_type"] == {"identify": 1, "page": 1, "screen": 1, "track": 2}
    assert computed["channels"] == {"other": 3, "web": 1, "mobile_app": 1}  # identify, track: other
    assert computed["orders"] == 2
    assert computed["revenue"] == 48999.5
    assert computed["first_seen"] == "2026-03-01T09:00:00.000Z"
    assert computed["last_seen"] == "2026-04-01T12:00:00.000Z"
    assert computed["last_purchase_at"] == "2026-04-01T12:00:00.000Z"
    assert computed["days_since_last_purchase"] == 10
    assert computed["devices"] == 2


def test_latest_by_event_time_wins_and_a_late_old_event_does_not_overwrite(tp) -> None:
    anna(tp)
    send(tp, [{"type": "identify", "userId": "u1", "timestamp": "2026-05-01T00:00:00Z",
               "traits": {"plan": "premium"}}])  # fmt: skip
    # Arrives later, happened earlier: history, not the current value.
    send(tp, [{"type": "identify", "userId": "u1", "timestamp": "2026-02-01T00:00:00Z",
               "traits": {"plan": "trial"}}])  # fmt: skip
    profile = tp.profiles.get(tp.profiles.resolve("user_id:u1"))
    assert profile.traits["plan"].value == "premium"
    assert iso(profile.traits["plan"].timestamp) == "2026-05-01T00:00:00.000Z"
    assert [v.value for v in profile.trait_history["plan"]] == ["trial", "basic", "premium"]


def test_a_preferred_source_wins_over_newer_values_from_others(tp) -> None:
    anna(tp)
    send(tp, [{"type": "identify", "userId": "u1", "timestamp": "2026-03-05T00:00:00Z",
               "traits": {"city": "Hamburg-Altona"},
               "context": {"source": "crm_export"}}])  # fmt: skip
    send(
        tp,
        [
            {
                "type": "identify",
                "userId": "u1",
                "timestamp": "2026-06-01T00:00:00Z",
                "traits": {"city": "Hmaburg"},
            }
        ],
    )  # fmt: skip  (a typo in a web form)
    profile = tp.profiles.get(tp.profiles.resolve("user_id:u1"))
    assert profile.traits["city"].value == "Hamburg-Altona"
    assert profile.traits["city"].source == "crm_export"
    assert profile.traits["email"].source == "profile-test"


def test_a_merge_keeps_the_traits_and_events_of_both_persons(tp) -> None:
    send(tp, [
        {"type": "identify", "anonymousId": "a1", "traits": {"favourite_model": "E5"}},
        {"type": "identify", "userId": "u9", "traits": {"newsletter": True}},
    ])  # fmt: skip
    first = tp.profiles.resolve("anonymous_id:a1")
    second = tp.profiles.resolve("user_id:u9")
    assert first != second
    send(tp, [{"type": "alias", "userId": "u9", "previousId": "a1"}])
    merged = tp.profiles.get(tp.profiles.resolve("user_id:u9"))
    assert merged.number == first == tp.profiles.resolve(f"person:{second}")
    assert merged.traits["favourite_model"].value == "E5"
    assert merged.traits["newsletter"].value is True
    assert merged.computed.events == 3
    assert [(m.kind, m.identifier) for m in merged.merges] == [("merge", "anonymous_id:a1")]


def test_the_timeline_is_newest_first_and_pages_on(tp) -> None:
    anna(tp)
    person = tp.profiles.resolve("user_id:u1")
    first = tp.profiles.timeline(person, limit=2)
    assert [e["timestamp"].day for e in first] == [1, 12]
    last = first[-1]
    rest = tp.profiles.timeline(person, limit=10, before=(last["timestamp"], last["seq"]))
    assert [e["event"] or e["name"] or e["type"] for e in rest] == [
        "Order Completed",
        "identify",
        "page",
    ]


def test_search_by_trait_is_case_insensitive(tp) -> None:
    anna(tp)
    send(tp, [{"type": "identify", "userId": "u2", "traits": {"city": "München"}}])
    assert tp.profiles.search("city", "hamburg") == [tp.profiles.resolve("user_id:u1")]
    assert tp.profiles.search("city", "münchen") == [tp.profiles.resolve("user_id:u2")]
    assert tp.profiles.search("city", "Berlin") == []


def test_unknown_identifiers_and_bad_keys_say_what_is_wrong(tp) -> None:
    with pytest.raises(ProfileNotFound, match="email:nobody@example.com"):
        tp.profiles.resolve("email:nobody@example.com")
    with pytest.raises(ValueError, match="TYPE:VALUE"):
        parse_key("anna@example.com")
    with pytest.raises(ProfileNotFound):
        tp.profiles.resolve("person:not-a-number")


def test_a_cached_profile_follows_new_events_merges_and_unmerges(tp) -> None:
    send(tp, [{"type": "identify", "userId": "u5", "traits": {"plan": "basic"}}])
    person = tp.profiles.resolve("user_id:u5")
    assert tp.profiles.get(person).computed.events == 1
    assert tp.profiles.get(person) is not None  # served from the cache now
    send(tp, [{"type": "identify", "userId": "u5", "traits": {"plan": "premium"}}])
    updated = tp.profiles.get(person)
    assert updated.computed.events == 2
    assert updated.traits["plan"].value == "premium"

    send(tp, [{"type": "page", "anonymousId": "tablet"}])
    tablet = tp.profiles.resolve("anonymous_id:tablet")
    assert tp.profiles.get(tablet).computed.events == 1
    send(tp, [{"type": "track", "event": "Login", "userId": "u5", "anonymousId": "tablet"}])
    assert tp.profiles.resolve(f"person:{tablet}") == person  # the absorbed id resolves
    assert tp.profiles.get(person).computed.events == 4
    assert [m.kind for m in tp.profiles.get(person).merges] == ["merge"]

    sid = tp.identity.sid_of(parse_key("anonymous_id:tablet"))
    tp.identity.detach(sid)
    assert tp.profiles.resolve("anonymous_id:tablet") == tablet
    assert tp.profiles.get(tablet).computed.events == 1
    after = tp.profiles.get(person)
    assert after.computed.events == 3
    assert [m.kind for m in after.merges] == ["merge", "unmerge"]


def test_the_served_json_follows_new_events_merges_unmerges_and_a_rebuild(tp) -> None:
    send(tp, [{"type": "identify", "userId": "u6", "traits": {"plan": "basic"}}])
    person = tp.profiles.resolve("user_id:u6")
    first = tp.profiles.json(person)
    assert orjson.loads(first)["traits"]["plan"]["value"] == "basic"
    assert tp.profiles.cached_json(person) is first  # served from the cache now
    assert tp.profiles.cached_json(person, history=True) is None  # cached per form
    assert "trait_history" in orjson.loads(tp.profiles.json(person, history=True))

    send(tp, [{"type": "identify", "userId": "u6", "traits": {"plan": "premium"}}])
    assert tp.profiles.cached_json(person) is None
    assert tp.profiles.cached_json(person, history=True) is None
    assert orjson.loads(tp.profiles.json(person))["traits"]["plan"]["value"] == "premium"

    send(tp, [{"type": "page", "anonymousId": "tablet-6"}])
    tablet = tp.profiles.resolve("anonymous_id:tablet-6")
    tp.profiles.json(tablet)
    send(tp, [{"type": "track", "event": "Login", "userId": "u6", "anonymousId": "tablet-6"}])
    assert tp.profiles.cached_json(tablet) is None  # the absorbed person's JSON is gone too
    merged = orjson.loads(tp.profiles.json(person))
    assert merged["computed"]["events"] == 4
    assert [m["kind"] for m in merged["merges"]] == ["merge"]

    tp.identity.detach(tp.identity.sid_of(parse_key("anonymous_id:tablet-6")))
    assert orjson.loads(tp.profiles.json(person))["computed"]["events"] == 3
    assert orjson.loads(tp.profiles.json(tablet))["computed"]["events"] == 1

    rebuild(tp.identity)
    assert tp.profiles.cached_json(person) is None
    assert orjson.loads(tp.profiles.json(person)) == tp.profiles.get(person).model_dump(
        mode="json", exclude={"trait_history"}
    )


def test_the_served_json_counts_days_since_the_last_purchase_as_of_each_request(tp) -> None:
    anna(tp)  # last order 2026-04-01T12:00:00Z
    person = tp.profiles.resolve("user_id:u1")

    def days(now: datetime) -> int:
        return orjson.loads(tp.profiles.json(person, now=now))["computed"][
            "days_since_last_purchase"
        ]

    assert days(datetime(2026, 4, 11, 11, 59, tzinfo=UTC)) == 9
    assert tp.profiles.cached_json(person, now=datetime(2026, 4, 11, 11, 59, 59, tzinfo=UTC))
    # The cached JSON goes out of date at the moment the count of whole days ticks over.
    assert tp.profiles.cached_json(person, now=datetime(2026, 4, 11, 12, 0, tzinfo=UTC)) is None
    assert days(datetime(2026, 4, 11, 12, 0, tzinfo=UTC)) == 10
    assert days(datetime(2026, 5, 1, 12, 0, tzinfo=UTC)) == 30
    assert days(datetime(2026, 4, 5, 13, 0, tzinfo=UTC)) == 4  # a clock set back
    profile = tp.profiles.get(person, now=datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    assert profile.computed.days_since_last_purchase == 30


def test_resolving_without_the_database_waits_for_a_dropped_map_to_be_loaded(tp) -> None:
    send(tp, [{"type": "identify", "userId": "u7"}])
    person = tp.profiles.resolve("user_id:u7")
    assert tp.profiles.resolve_cached("user_id:u7") == person
    tp.identity.forget()  # as a rebuild does: the next lookup reads the warehouse
    assert tp.profiles.resolve_cached("user_id:u7") is None
    assert tp.profiles.resolve("user_id:u7") == person  # loads the map
    assert tp.profiles.resolve_cached("user_id:u7") == person
