"""The quarantine: refused events are held with reasons, listed, shown, replayed and deleted."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from touchpoints.config import Settings, load_settings
from touchpoints.core import Touchpoints
from touchpoints.events import Problem, micros

HELD_AT = datetime(2026, 5, 1, 12, 0)


def hold(tp: Touchpoints, payload: dict[str, Any], route: str = "batch") -> list[int]:
    """What the collector does with a request: judge it and quarantine what it refused."""
    outcome = tp.judge(payload, route, source="key_web", received_at=micros(HELD_AT))
    if outcome.body_problems:
        return [
            tp.quarantine.hold_body(
                orjson.dumps(payload),
                outcome.body_problems,
                source="key_web",
                route=route,
                received_at=HELD_AT,
            )
        ]
    if outcome.rows:
        tp.write_rows(outcome.rows)
    return tp.quarantine.hold_events(
        outcome.rejected,
        source="key_web",
        route=route,
        envelope=outcome.envelope,
        received_at=HELD_AT,
    )


def stored(tp: Touchpoints) -> list[tuple[str, str | None, str]]:
    return tp.warehouse.fetchall("SELECT message_id, event, channel FROM events ORDER BY seq")


NO_EVENT = {"type": "track", "userId": "u1", "messageId": "m-no-event"}
LONG_ID = {"type": "track", "userId": "u1", "event": "Viewed", "messageId": "order-12345"}
GOOD = {"type": "track", "userId": "u1", "event": "Viewed", "messageId": "m-good"}


@pytest.fixture
def strict(tmp_path: Path) -> Settings:
    """A data directory whose settings allow messageIds of at most 8 characters."""
    return load_settings(tmp_path / "data", max_message_id_length=8)


def test_refused_events_are_held_with_their_reasons(tp: Touchpoints) -> None:
    ids = hold(tp, {"batch": [GOOD, NO_EVENT, {"type": "wink", "userId": 7}], "context": {"a": 1}})
    assert ids == [1, 2]
    assert stored(tp) == [("m-good", "Viewed", "other")]
    assert tp.quarantine.count() == 2

    first, second = tp.quarantine.list()
    assert first.model_dump(mode="json") == {
        "id": 1,
        "received_at": "2026-05-01T12:00:00.000Z",
        "source": "key_web",
        "route": "batch",
        "kind": "event",
        "reasons": [
            {
                "field": "event",
                "message": "is required for track and must be a non-empty string",
                "index": 1,
            }
        ],
        "status": "held",
        "replayed_at": None,
        "raw": orjson.dumps(NO_EVENT).decode(),
        "envelope": {"context": {"a": 1}},
    }
    assert second.reasons == [
        {
            "field": "type",
            "message": "'wink' is not one of alias, group, identify, page, screen, track",
            "index": 2,
        }
    ]
    assert orjson.loads(second.raw) == {"type": "wink", "userId": 7}
    # The API's page of items is the same items, with their count.
    page = tp.quarantine.page()
    assert (page.count, page.items) == (2, [first, second])


def test_an_event_whose_type_is_an_array_is_held_and_its_batch_stored(tp: Touchpoints) -> None:
    wrong = {"type": ["track"], "userId": "u1", "event": "Viewed", "messageId": "m-array"}
    assert hold(tp, {"batch": [GOOD, wrong]}) == [1]
    assert stored(tp) == [("m-good", "Viewed", "other")]
    (held,) = tp.quarantine.list()
    assert held.reasons == [
        {
            "field": "type",
            "message": "\"['track']\" is not one of alias, group, identify, page, screen, track",
            "index": 1,
        }
    ]


def test_a_body_that_is_not_events_is_held_whole(tp: Touchpoints) -> None:
    item_id = tp.quarantine.hold_body(
        b'{"batch": [',
        [Problem("", "body is not valid JSON: unexpected end")],
        source="key_web",
        route="batch",
        received_at=HELD_AT,
    )
    assert item_id == 1
    item = tp.quarantine.get(1)
    assert item is not None
    assert (item.kind, item.raw, item.envelope, item.status) == (
        "body",
        '{"batch": [',
        None,
        "held",
    )
    assert item.reasons == [{"field": "", "message": "body is not valid JSON: unexpected end"}]

    # Replay cannot help a body that is not JSON: it stays held with today's reason.
    result = tp.replay_quarantine()
    assert (result.replayed, result.still_held, result.events_stored) == (0, 1, 0)
    item = tp.quarantine.get(1)
    assert item is not None
    assert item.status == "held"
    ((reason,),) = [item.reasons]
    assert reason["field"] == ""
    assert reason["message"].startswith("body is not valid JSON: ")


def test_ids_count_up_from_one_in_the_order_held(tp: Touchpoints) -> None:
    assert hold(tp, {"batch": [NO_EVENT, NO_EVENT]}) == [1, 2]
    assert hold(tp, NO_EVENT, route="track") == [3]
    assert hold(tp, {"batch": "nope"}) == [4]
    assert [item.id for item in tp.quarantine.list()] == [1, 2, 3, 4]
    assert [item.kind for item in tp.quarantine.list()] == ["event", "event", "event", "body"]
    assert [item.id for item in tp.quarantine.list(limit=2)] == [1, 2]
    assert tp.quarantine.get(5) is None


def test_replay_after_the_limit_was_raised(strict: Settings) -> None:
    with Touchpoints(strict) as tp:
        assert hold(tp, {"batch": [LONG_ID], "context": {"channel": "email"}}) == [1]
        (item,) = tp.quarantine.list()
        assert item.reasons == [
            {
                "field": "messageId",
                "message": "is 11 characters, more than the limit of 8",
                "index": 0,
            }
        ]
        # Same rules, same result: still held, nothing stored.
        result = tp.replay_quarantine()
        assert (result.replayed, result.still_held, result.events_stored) == (0, 1, 0)
        assert tp.events.count() == 0
        held = tp.quarantine.get(1)
        assert held is not None and held.status == "held"
        assert held.reasons == [
            {"field": "messageId", "message": "is 11 characters, more than the limit of 8"}
        ]

    with Touchpoints(load_settings(strict.data_dir)) as tp:  # the default limit: 100
        result = tp.replay_quarantine()
        assert (result.replayed, result.still_held, result.events_stored) == (1, 0, 1)
        # The batch context it came with is applied, the source and receipt time are kept.
        (event,) = tp.events.list()
        assert (event["message_id"], event["channel"], event["source"]) == (
            "order-12345",
            "email",
            "key_web",
        )
        assert event["received_at"] == HELD_AT
        assert orjson.loads(event["context"]) == {"channel": "email"}

        item = tp.quarantine.get(1)
        assert item is not None
        assert item.status == "replayed"
        assert item.replayed_at is not None and item.replayed_at > HELD_AT
        assert tp.quarantine.list() == []
        assert [i.id for i in tp.quarantine.list("replayed")] == [1]
        assert (tp.quarantine.count(), tp.quarantine.count("replayed")) == (0, 1)
        assert tp.quarantine.count(None) == 1

        # Nothing is held any more: a second replay does nothing.
        again = tp.replay_quarantine()
        assert (again.replayed, again.still_held, again.events_stored) == (0, 0, 0)
        assert tp.events.count() == 1


def test_replay_of_some_ids_only(strict: Settings) -> None:
    with Touchpoints(strict) as tp:
        hold(tp, {"batch": [LONG_ID, {**LONG_ID, "messageId": "order-67890"}, NO_EVENT]})
    with Touchpoints(load_settings(strict.data_dir)) as tp:
        result = tp.replay_quarantine([2, 3, 99])
        assert (result.replayed, result.still_held, result.events_stored) == (1, 1, 1)
        assert stored(tp) == [("order-67890", "Viewed", "other")]
        assert [(i.id, i.status) for i in tp.quarantine.list(None)] == [
            (1, "held"),
            (2, "replayed"),
            (3, "held"),
        ]
        # A replayed item named again is skipped.
        result = tp.replay_quarantine([2])
        assert (result.replayed, result.still_held, result.events_stored) == (0, 0, 0)


def test_events_without_a_messageid_get_a_deterministic_one(tmp_path: Path) -> None:
    small = load_settings(tmp_path / "data", max_event_bytes=1024)
    big = {"type": "track", "userId": "u1", "event": "Big", "properties": {"text": "x" * 1500}}
    with Touchpoints(small) as tp:
        assert hold(tp, {"batch": [GOOD, big]}) == [1]
        (item,) = tp.quarantine.list()
        assert item.reasons[0]["field"] == ""
        assert item.reasons[0]["message"].endswith("more than the limit of 1024 bytes")

    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        result = tp.replay_quarantine()
        assert (result.replayed, result.events_stored) == (1, 1)
        assert stored(tp) == [("m-good", "Viewed", "other"), ("quarantine-1-0", "Big", "other")]
        # Replay stores, then marks; a crash in between leaves the item held. Replaying it
        # again must not store the event a second time.
        tp.warehouse.run("UPDATE quarantine SET status = 'held', replayed_at = NULL")
        result = tp.replay_quarantine()
        assert (result.replayed, result.still_held, result.events_stored) == (1, 0, 0)
        assert tp.events.count() == 2


def test_a_held_body_is_replayed_as_its_events(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "data", max_batch_events=2)
    body = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "A"},
            {"type": "track", "userId": "u1", "event": "B", "messageId": "given"},
            {"type": "identify", "userId": "u1", "traits": {"city": "Kiel"}},
        ],
        "context": {"channel": "sms"},
    }
    with Touchpoints(settings) as tp:
        assert hold(tp, body) == [1]
        item = tp.quarantine.get(1)
        assert item is not None
        assert item.kind == "body"
        assert item.reasons == [
            {
                "field": "batch",
                "message": "has 3 events, more than the limit of 2; split it into smaller batches",
            }
        ]
        assert orjson.loads(item.raw) == body
        # Replay splits the body without the batch limit (the batch was accepted as a whole
        # by the sender's SDK): the events are stored with deterministic ids.
        result = tp.replay_quarantine()
        assert (result.replayed, result.still_held, result.events_stored) == (1, 0, 3)
        assert stored(tp) == [
            ("quarantine-1-0", "A", "sms"),
            ("given", "B", "sms"),
            ("quarantine-1-2", None, "sms"),
        ]


def test_items_that_still_fail_stay_held_with_todays_reasons(tp: Touchpoints) -> None:
    body = {"batch": [GOOD, NO_EVENT], "sentAt": 12}
    assert hold(tp, body) == [1, 2]  # both events refused: sentAt is not a date-time
    result = tp.replay_quarantine()
    assert (result.replayed, result.still_held, result.events_stored) == (0, 2, 0)
    first, second = tp.quarantine.list()
    assert first.reasons == [
        {"field": "sentAt", "message": "must be an ISO-8601 date-time string, got int"}
    ]
    assert second.reasons == [
        {"field": "event", "message": "is required for track and must be a non-empty string"},
        {"field": "sentAt", "message": "must be an ISO-8601 date-time string, got int"},
    ]
    assert tp.events.count() == 0


def test_delete(tp: Touchpoints) -> None:
    assert hold(tp, {"batch": [NO_EVENT, NO_EVENT, NO_EVENT]}) == [1, 2, 3]
    assert tp.quarantine.delete(2) is True
    assert tp.quarantine.get(2) is None
    assert tp.quarantine.delete(2) is False
    assert tp.quarantine.delete(42) is False
    assert [item.id for item in tp.quarantine.list(None)] == [1, 3]
    # A deleted id is not handed out again.
    assert hold(tp, NO_EVENT, route="track") == [4]
    assert tp.quarantine.count() == 3
