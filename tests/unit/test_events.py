"""EventNormalizer (src/touchpoints/events.py): validation, message ids, times, raw JSON, channel.

Times are written out by hand: 2024-03-05T00:00:00Z is 19,787 days after the epoch
(54 years 1970..2023 with 13 leap days = 19,723 days, plus 31 + 29 + 4 days of 2024),
so 1,709,596,800 s; 2009-02-13T23:31:30Z is the well-known 1,234,567,890 s.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from touchpoints.channels import ChannelDetector, ChannelRule
from touchpoints.events import (
    COLUMNS,
    EventNormalizer,
    EventRow,
    Limits,
    Problem,
    parse_time,
    row_as_dict,
)

S = 1_000_000  # microseconds in a second
MARCH_5_2024 = 1_709_596_800 * S  # 2024-03-05T00:00:00Z
RECEIVED = MARCH_5_2024 + 12 * 3600 * S  # 2024-03-05T12:00:00Z, the server clock
SOURCE = "key_test_source"


@pytest.fixture
def normalizer() -> EventNormalizer:
    return EventNormalizer(ChannelDetector(), Limits())


def run(
    normalizer: EventNormalizer, message: Any, **options: Any
) -> tuple[dict[str, Any] | None, list[Problem]]:
    options.setdefault("received_at", RECEIVED)
    options.setdefault("source", SOURCE)
    row, problems = normalizer.normalize(message, **options)
    if row is None:
        assert problems, "a refused event must say why"
        return None, problems
    assert problems == []
    assert len(row) == len(COLUMNS)
    return row_as_dict(row), problems


def accepted(normalizer: EventNormalizer, message: Any, **options: Any) -> dict[str, Any]:
    row, problems = run(normalizer, message, **options)
    assert row is not None, problems
    return row


def refused(normalizer: EventNormalizer, message: Any, **options: Any) -> list[Problem]:
    row, problems = run(normalizer, message, **options)
    assert row is None
    return problems


def loads(text: str | None) -> Any:
    assert text is not None
    return orjson.loads(text)


def test_the_row_is_an_event_row_read_by_name(normalizer: EventNormalizer) -> None:
    row, problems = normalizer.normalize(
        {"type": "track", "userId": "u-1", "event": "Signed Up", "messageId": "m-named"},
        received_at=RECEIVED,
        source=SOURCE,
    )
    assert problems == []
    assert isinstance(row, EventRow) and isinstance(row, tuple)
    assert EventRow._fields == COLUMNS
    assert (row.message_id, row.type, row.event, row.user_id) == (
        "m-named",
        "track",
        "Signed Up",
        "u-1",
    )
    assert (row.timestamp, row.received_at, row.channel, row.source) == (
        RECEIVED,
        RECEIVED,
        "other",
        SOURCE,
    )
    assert list(row) == list(row_as_dict(row).values())


# -- the six calls -------------------------------------------------------------------------------


def test_track(normalizer: EventNormalizer) -> None:
    row = accepted(
        normalizer,
        {
            "type": "track",
            "userId": "u-1",
            "event": "Order Completed",
            "properties": {"total": 12.5, "currency": "EUR"},
            "messageId": "m-track",
        },
    )
    assert row["type"] == "track"
    assert row["event"] == "Order Completed"
    assert row["user_id"] == "u-1"
    assert row["anonymous_id"] is None
    assert loads(row["properties"]) == {"total": 12.5, "currency": "EUR"}
    assert row["traits"] is None
    assert row["context"] is None
    assert row["message_id"] == "m-track"
    assert row["source"] == SOURCE
    assert row["received_at"] == RECEIVED
    assert row["channel"] == "other"


def test_identify(normalizer: EventNormalizer) -> None:
    row = accepted(
        normalizer,
        {"type": "identify", "userId": "u-1", "traits": {"email": "ada@example.com"}},
    )
    assert row["type"] == "identify"
    assert row["user_id"] == "u-1"
    assert loads(row["traits"]) == {"email": "ada@example.com"}
    assert row["event"] is None


def test_identify_takes_traits_from_context_traits(normalizer: EventNormalizer) -> None:
    # RudderStack's SDKs send identify traits in context.traits only
    row = accepted(
        normalizer,
        {"type": "identify", "anonymousId": "a-1", "context": {"traits": {"plan": "pro"}}},
    )
    assert loads(row["traits"]) == {"plan": "pro"}


def test_only_identify_takes_traits_from_context(normalizer: EventNormalizer) -> None:
    row = accepted(
        normalizer,
        {"type": "track", "userId": "u", "event": "E", "context": {"traits": {"plan": "pro"}}},
    )
    assert row["traits"] is None


def test_page(normalizer: EventNormalizer) -> None:
    row = accepted(
        normalizer,
        {
            "type": "page",
            "anonymousId": "a-1",
            "name": "Home",
            "properties": {"url": "https://shop.example.com/"},
        },
    )
    assert row["type"] == "page"
    assert row["name"] == "Home"
    assert row["anonymous_id"] == "a-1"
    assert row["user_id"] is None
    assert row["channel"] == "web"


def test_screen(normalizer: EventNormalizer) -> None:
    row = accepted(normalizer, {"type": "screen", "anonymousId": "a-1", "name": "Checkout"})
    assert row["type"] == "screen"
    assert row["name"] == "Checkout"
    assert row["channel"] == "mobile_app"


def test_group(normalizer: EventNormalizer) -> None:
    row = accepted(
        normalizer,
        {"type": "group", "userId": "u-1", "groupId": "g-9", "traits": {"name": "ACME"}},
    )
    assert row["type"] == "group"
    assert row["group_id"] == "g-9"
    assert loads(row["traits"]) == {"name": "ACME"}


def test_alias(normalizer: EventNormalizer) -> None:
    row = accepted(normalizer, {"type": "alias", "userId": "u-2", "previousId": "a-1"})
    assert row["type"] == "alias"
    assert row["user_id"] == "u-2"
    assert row["previous_id"] == "a-1"


def test_route_type_applies_when_the_message_has_none(normalizer: EventNormalizer) -> None:
    row = accepted(normalizer, {"userId": "u", "event": "E"}, route_type="track")
    assert row["type"] == "track"


def test_a_type_contradicting_the_route_is_refused(normalizer: EventNormalizer) -> None:
    problems = refused(
        normalizer, {"type": "page", "userId": "u", "event": "E"}, route_type="track"
    )
    assert problems == [Problem("type", "is 'page' but this route takes 'track' calls", None)]


def test_a_batch_event_needs_a_type(normalizer: EventNormalizer) -> None:
    problems = refused(normalizer, {"userId": "u", "event": "E"}, index=2)
    assert problems == [Problem("type", "is required in a batch", 2)]


def test_an_unknown_type_is_refused(normalizer: EventNormalizer) -> None:
    problems = refused(normalizer, {"type": "purchase", "userId": "u"}, index=0)
    assert problems == [
        Problem("type", "'purchase' is not one of alias, group, identify, page, screen, track", 0)
    ]


@pytest.mark.parametrize(
    ("kind", "shown"), [(["track"], "\"['track']\""), ({"call": "track"}, "\"{'call': 'track'}\"")]
)
def test_a_type_that_is_an_array_or_object_is_refused_not_raised(
    normalizer: EventNormalizer, kind: Any, shown: str
) -> None:
    # Both are unhashable: a set lookup raised TypeError, and the collector answered 500.
    problems = refused(normalizer, {"type": kind, "userId": "u", "event": "E"}, index=1)
    assert problems == [
        Problem("type", f"{shown} is not one of alias, group, identify, page, screen, track", 1)
    ]


@pytest.mark.parametrize("message", [[1, 2], "track", 42, None, True])
def test_a_message_that_is_not_an_object_is_refused(
    normalizer: EventNormalizer, message: Any
) -> None:
    problems = refused(normalizer, message, index=4)
    assert len(problems) == 1
    assert problems[0].field == ""
    assert problems[0].index == 4
    assert problems[0].message.startswith("event must be a JSON object, got ")


def test_non_object_message_names_the_json_type(normalizer: EventNormalizer) -> None:
    assert refused(normalizer, [1, 2], index=1) == [
        Problem("", "event must be a JSON object, got array", 1)
    ]


# -- identities ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["track", "identify", "page", "screen", "group"])
def test_user_id_or_anonymous_id_is_required(normalizer: EventNormalizer, kind: str) -> None:
    message = {"type": kind, "event": "E", "groupId": "g"}
    problems = refused(normalizer, message, index=7)
    assert problems == [Problem("userId", "userId or anonymousId is required", 7)]
    assert accepted(normalizer, {**message, "anonymousId": "a"})["anonymous_id"] == "a"
    assert accepted(normalizer, {**message, "userId": "u"})["user_id"] == "u"


def test_blank_ids_count_as_missing(normalizer: EventNormalizer) -> None:
    problems = refused(normalizer, {"type": "track", "event": "E", "userId": "  "}, index=0)
    assert problems == [Problem("userId", "userId or anonymousId is required", 0)]


def test_ids_are_stripped_and_integers_become_text(normalizer: EventNormalizer) -> None:
    row = accepted(
        normalizer, {"type": "track", "event": "E", "userId": 42, "anonymousId": " a-1 "}
    )
    assert row["user_id"] == "42"
    assert row["anonymous_id"] == "a-1"


def test_alias_needs_user_id_and_previous_id(normalizer: EventNormalizer) -> None:
    # an anonymousId is not enough for alias
    problems = refused(normalizer, {"type": "alias", "anonymousId": "a-1"}, index=3)
    assert problems == [
        Problem("userId", "is required for alias", 3),
        Problem("previousId", "is required for alias", 3),
    ]
    assert refused(normalizer, {"type": "alias", "userId": "u"}, index=3) == [
        Problem("previousId", "is required for alias", 3)
    ]
    assert refused(normalizer, {"type": "alias", "previousId": "p", "anonymousId": "a"}) == [
        Problem("userId", "is required for alias", None)
    ]


def test_group_needs_group_id(normalizer: EventNormalizer) -> None:
    assert refused(normalizer, {"type": "group", "userId": "u"}, index=1) == [
        Problem("groupId", "is required for group", 1)
    ]


@pytest.mark.parametrize("event_name", [None, "", "   ", 5, ["E"]])
def test_track_needs_an_event_name(normalizer: EventNormalizer, event_name: Any) -> None:
    message: dict[str, Any] = {"type": "track", "userId": "u"}
    if event_name is not None:
        message["event"] = event_name
    assert refused(normalizer, message, index=0) == [
        Problem("event", "is required for track and must be a non-empty string", 0)
    ]


# -- messageId -----------------------------------------------------------------------------------


def test_a_message_id_is_generated_when_missing(normalizer: EventNormalizer) -> None:
    message = {"type": "track", "userId": "u", "event": "E"}
    first = accepted(normalizer, message)["message_id"]
    second = accepted(normalizer, message)["message_id"]
    assert uuid.UUID(first).version == 4
    assert first != second


def test_the_default_message_id_replaces_a_missing_one(normalizer: EventNormalizer) -> None:
    message = {"type": "track", "userId": "u", "event": "E"}
    row = accepted(normalizer, message, default_message_id="import-abc-0")
    assert row["message_id"] == "import-abc-0"


def test_a_given_message_id_is_kept(normalizer: EventNormalizer) -> None:
    message = {"type": "track", "userId": "u", "event": "E", "messageId": "ajs-next-1234"}
    assert accepted(normalizer, message)["message_id"] == "ajs-next-1234"
    assert (
        accepted(normalizer, message, default_message_id="other")["message_id"] == "ajs-next-1234"
    )


def test_an_integer_message_id_becomes_text(normalizer: EventNormalizer) -> None:
    message = {"type": "track", "userId": "u", "event": "E", "messageId": 12345}
    assert accepted(normalizer, message)["message_id"] == "12345"


def test_a_message_id_of_100_characters_is_accepted(normalizer: EventNormalizer) -> None:
    message = {"type": "track", "userId": "u", "event": "E", "messageId": "m" * 100}
    assert accepted(normalizer, message)["message_id"] == "m" * 100


def test_a_message_id_over_100_characters_is_refused(normalizer: EventNormalizer) -> None:
    message = {"type": "track", "userId": "u", "event": "E", "messageId": "m" * 101}
    assert refused(normalizer, message, index=5) == [
        Problem("messageId", "is 101 characters, more than the limit of 100", 5)
    ]


def test_the_message_id_limit_is_a_setting() -> None:
    normalizer = EventNormalizer(ChannelDetector(), Limits(max_message_id_length=10))
    base = {"type": "track", "userId": "u", "event": "E"}
    assert accepted(normalizer, {**base, "messageId": "0123456789"})["message_id"] == "0123456789"
    assert refused(normalizer, {**base, "messageId": "0123456789a"}) == [
        Problem("messageId", "is 11 characters, more than the limit of 10", None)
    ]


@pytest.mark.parametrize("message_id", ["", "   ", True, 1.5, ["m"], {"id": "m"}])
def test_a_message_id_must_be_a_non_empty_string(
    normalizer: EventNormalizer, message_id: Any
) -> None:
    message = {"type": "track", "userId": "u", "event": "E", "messageId": message_id}
    assert refused(normalizer, message, index=0) == [
        Problem("messageId", "must be a non-empty string", 0)
    ]


# -- JSON types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("properties", [1, 2], "must be an object, got array"),
        ("traits", "vip", "must be an object, got string"),
        ("context", 5, "must be an object, got number"),
        ("integrations", True, "must be an object, got boolean"),
        ("userId", ["u"], "must be a string, got array"),
        ("anonymousId", {"id": "a"}, "must be a string, got object"),
        ("groupId", 1.5, "must be a string, got number"),
        ("previousId", False, "must be a string, got boolean"),
        ("name", 7, "must be a string, got number"),
        ("event", {"name": "E"}, "must be a string, got object"),
    ],
)
def test_wrong_json_types_name_the_field_and_index(
    normalizer: EventNormalizer, field: str, value: Any, message: str
) -> None:
    # a page call: userId is given (unless it is the field under test), event is optional
    base: dict[str, Any] = {"type": "page", "userId": "u", "anonymousId": "a"}
    problems = refused(normalizer, {**base, field: value}, index=3)
    assert Problem(field, message, 3) in problems
    assert all(problem.index == 3 for problem in problems)


def test_every_problem_of_an_event_is_reported_at_once(normalizer: EventNormalizer) -> None:
    message = {
        "type": "track",
        "userId": 5.5,
        "properties": [],
        "messageId": "",
        "timestamp": "yesterday",
        "sentAt": 1709640000,
    }
    problems = refused(normalizer, message, index=9)
    assert {(problem.field, problem.index) for problem in problems} == {
        ("userId", 9),
        ("event", 9),
        ("properties", 9),
        ("messageId", 9),
        ("timestamp", 9),
        ("sentAt", 9),
    }
    assert Problem("userId", "must be a string, got number", 9) in problems
    assert Problem("userId", "userId or anonymousId is required", 9) in problems
    assert Problem("timestamp", "'yesterday' is not an ISO-8601 date-time", 9) in problems


def test_problems_of_a_single_call_have_no_index(normalizer: EventNormalizer) -> None:
    problems = refused(normalizer, {"userId": "u"}, route_type="track")
    assert [problem.index for problem in problems] == [None]
    assert problems[0].as_dict() == {
        "field": "event",
        "message": "is required for track and must be a non-empty string",
    }


def test_problem_as_dict_keeps_index_zero() -> None:
    assert Problem("userId", "is required", 0).as_dict() == {
        "field": "userId",
        "message": "is required",
        "index": 0,
    }


# -- size ----------------------------------------------------------------------------------------


def sized_event(size: int) -> dict[str, Any]:
    """A track event whose compact JSON is exactly ``size`` bytes.

    '{"type":"track","event":"E","userId":"u","properties":{"p":"' is 60 bytes and '"}}' is 3,
    so the padding is size - 63 characters.
    """
    message = {"type": "track", "event": "E", "userId": "u", "properties": {"p": "x" * (size - 63)}}
    assert len(orjson.dumps(message)) == size  # the arithmetic above holds
    return message


def test_an_event_at_the_size_limit_is_accepted() -> None:
    normalizer = EventNormalizer(ChannelDetector(), Limits(max_event_bytes=1024))
    assert accepted(normalizer, sized_event(1024))["event"] == "E"


def test_an_event_over_the_size_limit_is_refused() -> None:
    normalizer = EventNormalizer(ChannelDetector(), Limits(max_event_bytes=1024))
    assert refused(normalizer, sized_event(1025), index=2) == [
        Problem("", "event is 1025 bytes, more than the limit of 1024 bytes", 2)
    ]


def test_the_default_size_limit_is_32_kb(normalizer: EventNormalizer) -> None:
    assert accepted(normalizer, sized_event(32 * 1024))["user_id"] == "u"
    assert refused(normalizer, sized_event(32 * 1024 + 1)) == [
        Problem("", "event is 32769 bytes, more than the limit of 32768 bytes", None)
    ]


# -- raw JSON, context and integrations ----------------------------------------------------------


def test_the_raw_json_keeps_every_field(normalizer: EventNormalizer) -> None:
    message = {
        "type": "track",
        "userId": "u",
        "event": "Configurator Saved",
        "properties": {"model": "Roadster", "extras": [1, 2.5, None, True, {"deep": ["x"]}]},
        "context": {"locale": "de-DE", "custom": {"a": {"b": {"c": 1}}}},
        "integrations": {"All": False, "Mixpanel": True},
        "unknownTopLevel": "kept",
        "version": 2,
        "unicode": "Zürich ✓ 東京",
        "timestamp": "2024-03-05T09:00:00Z",
    }
    row = accepted(normalizer, message)
    assert orjson.loads(row["raw"]) == message


def test_the_raw_json_is_the_message_not_the_batch_merge(normalizer: EventNormalizer) -> None:
    message = {"type": "track", "userId": "u", "event": "E"}
    row = accepted(normalizer, message, batch_context={"ip": "192.0.2.1"})
    assert orjson.loads(row["raw"]) == {"type": "track", "userId": "u", "event": "E"}
    assert loads(row["context"]) == {"ip": "192.0.2.1"}


def test_batch_context_and_integrations_merge_and_the_event_wins(
    normalizer: EventNormalizer,
) -> None:
    message = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "context": {"ip": "198.51.100.7"},
        "integrations": {"Amplitude": False},
    }
    row = accepted(
        normalizer,
        message,
        batch_context={"ip": "192.0.2.1", "library": {"name": "analytics-ios"}},
        batch_integrations={"All": True, "Amplitude": True},
    )
    assert loads(row["context"]) == {"ip": "198.51.100.7", "library": {"name": "analytics-ios"}}
    assert loads(row["integrations"]) == {"All": True, "Amplitude": False}
    # the channel is read from the merged context
    assert row["channel"] == "mobile_app"


def test_the_channel_comes_from_the_detector() -> None:
    rules = [ChannelRule(field="event", channel="phone", equals="Call Started")]
    normalizer = EventNormalizer(ChannelDetector(rules), Limits())
    call = accepted(normalizer, {"type": "track", "userId": "u", "event": "Call Started"})
    mail = accepted(
        normalizer,
        {"type": "track", "userId": "u", "event": "Opened", "context": {"channel": "E-Mail"}},
    )
    assert call["channel"] == "phone"
    assert mail["channel"] == "email"


# -- times ---------------------------------------------------------------------------------------


def test_clock_skew_is_corrected(normalizer: EventNormalizer) -> None:
    # The device says it happened at 09:00:00.250Z (written with +01:00) and was sent at
    # 09:00:03Z: 2.75 s between the two. The server received it at 12:00:00Z, so it happened
    # at 12:00:00 - 2.75 s = 11:59:57.250Z.
    message = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "originalTimestamp": "2024-03-05T10:00:00.250+01:00",
        "sentAt": "2024-03-05T09:00:03Z",
    }
    row = accepted(normalizer, message)
    assert row["original_timestamp"] == MARCH_5_2024 + (9 * 3600) * S + 250_000
    assert row["sent_at"] == MARCH_5_2024 + (9 * 3600 + 3) * S
    assert row["received_at"] == RECEIVED
    assert row["timestamp"] == MARCH_5_2024 + (11 * 3600 + 59 * 60 + 57) * S + 250_000
    assert row["timestamp"] == 1_709_639_997_250_000


def test_clock_skew_with_a_device_clock_in_the_future(normalizer: EventNormalizer) -> None:
    # device clock two days ahead; 10 s between event and send
    message = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "originalTimestamp": "2024-03-07T08:00:00Z",
        "sentAt": "2024-03-07T08:00:10Z",
    }
    assert accepted(normalizer, message)["timestamp"] == RECEIVED - 10 * S


def test_the_clients_timestamp_counts_as_original_timestamp(normalizer: EventNormalizer) -> None:
    message = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "timestamp": "2024-03-05T09:00:00Z",
        "sentAt": "2024-03-05T09:00:30Z",
    }
    row = accepted(normalizer, message)
    assert row["original_timestamp"] == MARCH_5_2024 + 9 * 3600 * S
    assert row["timestamp"] == RECEIVED - 30 * S


def test_original_timestamp_wins_over_timestamp_for_live_events(
    normalizer: EventNormalizer,
) -> None:
    message = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "timestamp": "2024-01-01T00:00:00Z",
        "originalTimestamp": "2024-03-05T09:00:00Z",
        "sentAt": "2024-03-05T09:00:01Z",
    }
    row = accepted(normalizer, message)
    assert row["original_timestamp"] == MARCH_5_2024 + 9 * 3600 * S
    assert row["timestamp"] == RECEIVED - 1 * S


def test_the_batch_sent_at_applies_and_the_events_own_wins(normalizer: EventNormalizer) -> None:
    message = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "originalTimestamp": "2024-03-05T09:00:00Z",
    }
    from_batch = accepted(normalizer, message, batch_sent_at="2024-03-05T09:00:04Z")
    assert from_batch["sent_at"] == MARCH_5_2024 + (9 * 3600 + 4) * S
    assert from_batch["timestamp"] == RECEIVED - 4 * S
    own = {**message, "sentAt": "2024-03-05T09:00:06Z"}
    from_event = accepted(normalizer, own, batch_sent_at="2024-03-05T09:00:04Z")
    assert from_event["timestamp"] == RECEIVED - 6 * S


def test_without_sent_at_the_timestamp_is_kept(normalizer: EventNormalizer) -> None:
    message = {"type": "track", "userId": "u", "event": "E", "timestamp": "2024-03-05T09:00:00Z"}
    row = accepted(normalizer, message)
    assert row["timestamp"] == MARCH_5_2024 + 9 * 3600 * S
    assert row["original_timestamp"] == MARCH_5_2024 + 9 * 3600 * S
    assert row["sent_at"] is None


def test_without_any_time_received_at_is_used(normalizer: EventNormalizer) -> None:
    row = accepted(normalizer, {"type": "track", "userId": "u", "event": "E"})
    assert row["timestamp"] == RECEIVED
    assert row["original_timestamp"] is None
    assert row["sent_at"] is None


def test_sent_at_alone_gives_received_at(normalizer: EventNormalizer) -> None:
    message = {"type": "track", "userId": "u", "event": "E", "sentAt": "2024-03-05T09:00:00Z"}
    row = accepted(normalizer, message)
    assert row["timestamp"] == RECEIVED
    assert row["sent_at"] == MARCH_5_2024 + 9 * 3600 * S


def test_historical_keeps_the_senders_timestamp(normalizer: EventNormalizer) -> None:
    message = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "timestamp": "2019-06-01T08:30:00Z",
        "sentAt": "2024-03-05T09:00:00Z",
    }
    row = accepted(normalizer, message, historical=True)
    # 2019-06-01 is 1,559,347,200 s after the epoch (18,048 days), plus 8.5 hours
    assert row["timestamp"] == (1_559_347_200 + 8 * 3600 + 1800) * S
    live = accepted(normalizer, message)
    assert live["timestamp"] != row["timestamp"]


def test_historical_prefers_timestamp_over_original_timestamp(
    normalizer: EventNormalizer,
) -> None:
    message = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "timestamp": "2009-02-13T23:31:30Z",
        "originalTimestamp": "2009-02-13T23:00:00Z",
        "sentAt": "2009-02-13T23:31:35Z",
    }
    row = accepted(normalizer, message, historical=True)
    assert row["timestamp"] == 1_234_567_890 * S


def test_historical_without_timestamp_uses_original_timestamp(
    normalizer: EventNormalizer,
) -> None:
    message = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "originalTimestamp": "2009-02-13T23:31:30Z",
        "sentAt": "2024-03-05T09:00:00Z",
    }
    assert accepted(normalizer, message, historical=True)["timestamp"] == 1_234_567_890 * S


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timestamp", "yesterday"),
        ("timestamp", 1_709_629_200),
        ("sentAt", "2024-13-01T00:00:00Z"),
        ("sentAt", 1_709_629_200_000),
    ],
)
def test_bad_times_name_the_field(normalizer: EventNormalizer, field: str, value: Any) -> None:
    message = {"type": "track", "userId": "u", "event": "E", field: value}
    problems = refused(normalizer, message, index=6)
    assert [(problem.field, problem.index) for problem in problems] == [(field, 6)]


def test_a_bad_batch_sent_at_names_sent_at(normalizer: EventNormalizer) -> None:
    message = {"type": "track", "userId": "u", "event": "E"}
    problems = refused(normalizer, message, batch_sent_at="soon", index=0)
    assert problems == [Problem("sentAt", "'soon' is not an ISO-8601 date-time", 0)]


def test_a_bad_original_timestamp_names_original_timestamp(normalizer: EventNormalizer) -> None:
    message = {"type": "track", "userId": "u", "event": "E", "originalTimestamp": "garbage"}
    problems = refused(normalizer, message, index=0)
    assert [problem.field for problem in problems] == ["originalTimestamp"]


# -- parse_time ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.000001Z", 1),
        ("2001-09-09T01:46:40Z", 1_000_000_000 * S),
        ("2009-02-13T23:31:30Z", 1_234_567_890 * S),
        ("2009-02-13T23:31:30.123456Z", 1_234_567_890 * S + 123_456),
        ("2009-02-13T23:31:30.5Z", 1_234_567_890 * S + 500_000),
        ("2009-02-13T23:31:30+00:00", 1_234_567_890 * S),
        ("2009-02-14T01:31:30+02:00", 1_234_567_890 * S),
        ("2009-02-13T18:31:30-05:00", 1_234_567_890 * S),
        ("2009-02-14T05:01:30+05:30", 1_234_567_890 * S),
        ("2009-02-13T23:31:30", 1_234_567_890 * S),  # no zone: UTC
        ("2009-02-13", (1_234_567_890 - 84_690) * S),  # midnight UTC, 23:31:30 earlier
        ("  2009-02-13T23:31:30Z  ", 1_234_567_890 * S),
        ("2024-03-05T00:00:00Z", MARCH_5_2024),
        ("2024-02-29T00:00:00Z", MARCH_5_2024 - 5 * 86_400 * S),  # a leap day
    ],
)
def test_parse_time(text: str, expected: int) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "",
        "2024-02-30T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2201-01-01T00:00:00Z",
        "1709629200",  # epoch seconds as text are not ISO-8601
    ],
)
def test_parse_time_refuses_what_is_not_iso_8601(value: str) -> None:
    with pytest.raises(ValueError):
        parse_time(value)


@pytest.mark.parametrize("value", [1_709_629_200, 1_709_629_200.5, None, True, ["2024"]])
def test_parse_time_refuses_epoch_numbers_and_other_types(value: Any) -> None:
    with pytest.raises(ValueError, match="must be an ISO-8601 date-time string"):
        parse_time(value)


def test_parse_time_names_the_range() -> None:
    with pytest.raises(ValueError, match="outside the years 1970 to 2200"):
        parse_time("1900-01-01T00:00:00Z")


def test_parse_time_before_the_epoch_with_a_fraction() -> None:
    # 1970-01-01T00:30:00.250+01:00 is 1969-12-31T23:30:00.250Z: 1,799.75 s before the epoch
    assert parse_time("1970-01-01T00:30:00.250+01:00") == -1_799_750_000


# -- depth: what orjson writes, and what the quarantine writes beyond it ---------------------
def test_orjson_writes_exactly_max_depth_levels() -> None:
    """MAX_DEPTH is orjson's (pinned) limit: if an upgrade changes it, this says so."""
    from touchpoints.events import MAX_DEPTH

    assert orjson.dumps(_deep_list(MAX_DEPTH))
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(_deep_list(MAX_DEPTH + 1))


def _deep_list(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [1, 5, 254, 255, 1023])
def test_json_text_writes_any_depth_as_orjson_reads_it(levels: int) -> None:
    from touchpoints.events import depth, json_text

    value: object = {"a": [1, 'x\u00e9"\\', None, True, 2.5], "b": {}, "c": []}
    for i in range(levels - 1):
        value = {"k": value, "n": i} if i % 2 else [value, i]
    text = json_text(value)
    assert json_text(orjson.loads(text)) == text  # (== on the values would recurse too deep)
    assert depth(value) == levels + 1
    if levels < 250:
        assert text == orjson.dumps(value)
