"""The event model: the Segment spec's six calls, validated and turned into warehouse rows.

Validation is hand-written rather than a pydantic model because it runs on the ingest hot path
(about 3 µs an event here against 15 µs for a model); every problem names the field and why,
and all problems of an event are reported at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from pydantic import Field

from touchpoints.answers import Answer
from touchpoints.channels import ChannelDetector
from touchpoints.times import UtcTime

EVENT_TYPES: frozenset[str] = frozenset({"track", "identify", "page", "screen", "group", "alias"})


class EventRow(NamedTuple):
    """One event as the warehouse stores it: its columns, in the order of ``COLUMNS``.

    A tuple, so the write-ahead log writes it as one JSON array and Arrow batches are built by
    zipping rows; read it by name (``row.message_id``), never by position.
    """

    message_id: str
    type: str
    event: str | None
    name: str | None
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    group_id: str | None
    properties: str | None  # the JSON documents, as text
    traits: str | None
    context: str | None
    integrations: str | None
    timestamp: int  # epoch microseconds, UTC
    original_timestamp: int | None
    sent_at: int | None
    received_at: int
    channel: str
    source: str
    raw: str  # the event as sent


# Column order of a row; the warehouse schema and the write-ahead log use the same order.
COLUMNS: tuple[str, ...] = EventRow._fields

_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")


def event_name(row: EventRow) -> str:
    """An event's name as journeys and triggers read it: ``coalesce(event, name, type)``
    (a track's event, a page's or screen's name, else its type)."""
    if row.event is not None:
        return row.event
    return row.name if row.name is not None else row.type


def any_named(rows: Iterable[EventRow], names: frozenset[str]) -> bool:
    """Whether one of ``rows`` bears one of ``names`` (see :func:`event_name`)."""
    return bool(names) and any(event_name(row) in names for row in rows)


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason an event was refused: which event (index in the batch), which field, why."""

    field: str
    message: str
    index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.index is not None:
            out["index"] = self.index
        return out


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int = 32 * 1024
    max_message_id_length: int = 100


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The moments an event may have: its times are parsed within these years, and clock-skew
# correction must not take it out of them.
FIRST_YEAR, LAST_YEAR = 1970, 2200
_LAST_MICROS = (
    int((datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds()) * 1_000_000 - 1
)
# The deepest JSON orjson (pinned) writes: 254 nested arrays and objects. orjson reads up to
# 1,024, so a deeper event parses but could not be stored; it is refused with its depth.
MAX_DEPTH = 254


def micros(moment: datetime) -> int:
    """Microseconds since the epoch, UTC: the form times take in rows and in the log."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Integer arithmetic throughout: exact, also before 1970 (no float rounding toward zero).
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def now_micros() -> int:
    return micros(datetime.now(UTC))


def parse_time(value: Any) -> int:
    """ISO-8601 text (``Z`` or an offset; no zone means UTC) → epoch microseconds.

    Raises ValueError with a message fit to show the sender.
    """
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO-8601 date-time string, got {type(value).__name__}")
    return _parse_text_time(value)


@lru_cache(maxsize=8192)  # a batch's sentAt, and SDK timestamps, repeat
def _parse_text_time(value: str) -> int:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not an ISO-8601 date-time") from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"{value[:40]!r} is outside the years {FIRST_YEAR} to {LAST_YEAR}")
    return micros(moment)


def depth(value: Any) -> int:
    """How many arrays and objects ``value`` nests (0 for a scalar), counted with a stack of
    its own rather than recursion (a parsed value may nest 1,024 deep)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def json_text(value: Any) -> bytes:
    """The JSON text of a parsed value however deep it nests: orjson's for what it writes
    (up to :data:`MAX_DEPTH` levels), else written with a stack of its own (the quarantine
    keeps a refused deep event as it was sent)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        pass
    out: list[bytes] = []
    stack: list[Any] = [value]  # values to write, and bytes to write as they are
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, dict):
            out.append(b"{")
            stack.append(b"}")
            for number, (key, child) in enumerate(reversed(item.items())):
                stack.append(child)
                stack.append(orjson.dumps(str(key)) + b":")
                if number < len(item) - 1:
                    stack.append(b",")
        elif isinstance(item, list):
            out.append(b"[")
            stack.append(b"]")
            for number, child in enumerate(reversed(item)):
                stack.append(child)
                if number < len(item) - 1:
                    stack.append(b",")
        else:
            out.append(orjson.dumps(item))
    return b"".join(out)


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type: problems speak the sender's language."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


class EventNormalizer:
    """Validates one Segment message and builds its warehouse row (an ``EventRow``).

    Each Segment rule is one small function below, and ``normalize`` runs them in a fixed
    order, as rudder-server's gateway chains small validators. Unlike that chain, a rule that
    finds a problem does not stop the others: every problem of an event is reported at once,
    in the order of the rules. Later rules take what earlier ones derived (the type, the ids),
    so the chain is written out rather than looped over a list.
    """

    def __init__(self, detector: ChannelDetector, limits: Limits | None = None) -> None:
        self._detector = detector
        self._limits = limits or Limits()

    def normalize(
        self,
        message: Any,
        *,
        received_at: int,
        source: str,
        route_type: str | None = None,
        batch_context: Mapping[str, Any] | None = None,
        batch_integrations: Mapping[str, Any] | None = None,
        batch_sent_at: Any = None,
        index: int | None = None,
        default_message_id: str | None = None,
        historical: bool = False,
    ) -> tuple[EventRow | None, list[Problem]]:
        """Return ``(row, [])`` for a valid message, or ``(None, problems)``.

        ``received_at`` is the server's clock in epoch microseconds; ``route_type`` is the type a
        single-call route implies (``/v1/track`` → track); batch-level context, integrations and
        sentAt apply to every message of a batch, the message's own values winning.
        ``default_message_id`` replaces a missing messageId (importers derive it from content so
        a re-import stores nothing twice); otherwise a random one is made. ``historical``
        (bulk imports) takes a given ``timestamp`` as it is, without clock-skew correction.
        """
        if not isinstance(message, dict):
            return None, [_not_an_object(message, index)]
        problems: list[Problem] = []
        limits = self._limits
        raw = _raw_json(message, limits.max_event_bytes, problems, index)
        kind = _event_type(message.get("type"), route_type, problems, index)
        user_id = _identifier(message.get("userId"), "userId", problems, index)
        anonymous_id = _identifier(message.get("anonymousId"), "anonymousId", problems, index)
        previous_id = _identifier(message.get("previousId"), "previousId", problems, index)
        group_id = _identifier(message.get("groupId"), "groupId", problems, index)
        _required_identifiers(kind, user_id, anonymous_id, previous_id, group_id, problems, index)
        event_name = _event_name(kind, message.get("event"), problems, index)
        name = _name(message.get("name"), problems, index)
        properties, traits, context, integrations = _objects(
            message, batch_context, batch_integrations, problems, index
        )
        message_id = _message_id(
            message.get("messageId"),
            default_message_id,
            limits.max_message_id_length,
            problems,
            index,
        )
        timestamp, original_us, sent_at_us = _times(
            message, batch_sent_at, received_at, historical, problems, index
        )
        if problems:
            return None, problems
        traits = _identify_traits(kind, traits, context)
        # The row in COLUMNS order. The documents are dumped here rather than by a helper, and
        # the EventRow is made by tuple.__new__ rather than by its constructor, which binds 19
        # arguments in Python (0.5 µs more an event). The named row still costs about 4 % (a
        # tuple subclass is allocated and freed the slow way); the rule chain, measured alone,
        # costs nothing. Together: 0 to 5 % slower on a mix of events than the one 166-line
        # function they replaced, up to 8 % on identifies alone (4.1 to 4.8 µs an event;
        # benchmarks/normalize.py --against 366bca3, figures in benchmarks/RESULTS.md).
        row = _new_row(
            EventRow,
            (
                message_id,
                kind,
                event_name,
                name,
                user_id,
                anonymous_id,
                previous_id,
                group_id,
                None if properties is None else _dumps(properties).decode(),
                None if traits is None else _dumps(traits).decode(),
                None if context is None else _dumps(context).decode(),
                None if integrations is None else _dumps(integrations).decode(),
                timestamp,
                original_us,
                sent_at_us,
                received_at,
                self._detector.detect_parts(kind, context, message),  # the channel rules
                source,
                raw.decode(),
            ),
        )
        return row, []


_dumps = orjson.dumps  # a global, not an attribute lookup, for each of five uses an event
_new_row = tuple.__new__


# -- the rules, in the order normalize runs them ---------------------------------------------
# Each takes plain positional arguments and appends its problems to the event's list. On the
# hot path a call costs about as much as one of these checks (40 to 50 ns here), so no rule
# object or state is built per event, and a rule's usual case is tested first.


def too_deep(value: Any, what: str) -> str:
    """The reason a value nesting deeper than :data:`MAX_DEPTH` is refused."""
    return (
        f"{what} nests {depth(value)} levels deep (objects and arrays); at most {MAX_DEPTH} "
        "can be stored"
    )


def _not_an_object(message: Any, index: int | None) -> Problem:
    """An event is a JSON object; anything else (a string, an array) cannot be read at all."""
    return Problem("", f"event must be a JSON object, got {_json_type(message)}", index)


def _raw_json(
    message: dict[str, Any], max_bytes: int, problems: list[Problem], index: int | None
) -> bytes:
    """The event as sent (kept in ``raw``), measured against the size limit while at hand;
    an event nesting deeper than can be stored is refused with its depth."""
    try:
        raw = _dumps(message)
    except orjson.JSONEncodeError:
        problems.append(Problem("", too_deep(message, "event"), index))
        return b"{}"
    if len(raw) > max_bytes:
        problems.append(
            Problem(
                "",
                f"event is {len(raw)} bytes, more than the limit of {max_bytes} bytes",
                index,
            )
        )
    return raw


def _event_type(
    kind: Any, route_type: str | None, problems: list[Problem], index: int | None
) -> str | None:
    """A single-call route (``/v1/track``) implies the type and refuses a contradicting one;
    in a batch each event must name one of the six calls. None when it names none (refused
    here; the later rules then skip what depends on the type)."""
    if route_type is not None:
        if kind is not None and kind != route_type:
            problems.append(
                Problem("type", f"is {kind!r} but this route takes {route_type!r} calls", index)
            )
        return route_type
    if kind is None:
        problems.append(Problem("type", "is required in a batch", index))
        return None
    # A str test first: an array or object is unhashable and must be refused, not raise.
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        problems.append(
            Problem(
                "type",
                f"{str(kind)[:40]!r} is not one of {', '.join(sorted(EVENT_TYPES))}",
                index,
            )
        )
        return None
    return kind


def _identifier(value: Any, field: str, problems: list[Problem], index: int | None) -> str | None:
    """Segment ids are strings; integers are taken as their decimal text (some SDKs send them)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    problems.append(
        Problem(field, f"must be a string, got {_json_type(value)}", index),
    )
    return None


def _required_identifiers(
    kind: str | None,
    user_id: str | None,
    anonymous_id: str | None,
    previous_id: str | None,
    group_id: str | None,
    problems: list[Problem],
    index: int | None,
) -> None:
    """Every call says whose it is; alias joins two ids, so it needs both, and group names one.

    Only for a known type: an unknown or missing one is already refused by the type rule.
    """
    if kind == "alias":
        if user_id is None:
            problems.append(Problem("userId", "is required for alias", index))
        if previous_id is None:
            problems.append(Problem("previousId", "is required for alias", index))
    elif user_id is None and anonymous_id is None and kind in EVENT_TYPES:
        problems.append(Problem("userId", "userId or anonymousId is required", index))
    if kind == "group" and group_id is None:
        problems.append(Problem("groupId", "is required for group", index))


def _event_name(
    kind: str | None, value: Any, problems: list[Problem], index: int | None
) -> str | None:
    """A track is its event name; other calls may carry one, but only as text."""
    if kind == "track":
        if not isinstance(value, str) or not value.strip():
            problems.append(
                Problem("event", "is required for track and must be a non-empty string", index)
            )
    elif value is not None and not isinstance(value, str):
        problems.append(Problem("event", f"must be a string, got {_json_type(value)}", index))
    return value if isinstance(value, str) else None


def _name(value: Any, problems: list[Problem], index: int | None) -> str | None:
    """The page or screen name (any call may have one) is text when present."""
    if value is not None and not isinstance(value, str):
        problems.append(Problem("name", f"must be a string, got {_json_type(value)}", index))
        return None
    return value


def _objects(
    message: dict[str, Any],
    batch_context: Mapping[str, Any] | None,
    batch_integrations: Mapping[str, Any] | None,
    problems: list[Problem],
    index: int | None,
) -> tuple[Any, Any, Any, Any]:
    """properties, traits, context and integrations are objects when present; a batch's
    context and integrations are the defaults of each event's own (its keys win)."""
    properties = message.get("properties")
    traits = message.get("traits")
    context = message.get("context")
    integrations = message.get("integrations")
    # One test for the usual case (all four fine) instead of a loop: 0.13 µs less an event.
    if not (
        (properties is None or isinstance(properties, dict))
        and (traits is None or isinstance(traits, dict))
        and (context is None or isinstance(context, dict))
        and (integrations is None or isinstance(integrations, dict))
    ):
        properties, traits, context, integrations = _only_objects(
            (properties, traits, context, integrations), problems, index
        )
    if batch_context:
        context = {**batch_context, **(context or {})}
    if batch_integrations:
        integrations = {**batch_integrations, **(integrations or {})}
    return properties, traits, context, integrations


def _only_objects(
    values: tuple[Any, Any, Any, Any], problems: list[Problem], index: int | None
) -> tuple[Any, Any, Any, Any]:
    """The four values with each one that is not an object refused (and dropped)."""
    kept = []
    for field, value in zip(_OBJECT_FIELDS, values, strict=True):
        if value is not None and not isinstance(value, dict):
            problems.append(Problem(field, f"must be an object, got {_json_type(value)}", index))
            value = None
        kept.append(value)
    return kept[0], kept[1], kept[2], kept[3]


def _message_id(
    value: Any, default: str | None, max_length: int, problems: list[Problem], index: int | None
) -> Any:
    """The deduplication key: given (text, or an integer taken as its text), derived by an
    importer, or made up; bounded in length because every stored event keeps it."""
    if isinstance(value, str):  # the usual case first
        if not value.strip():
            problems.append(Problem("messageId", "must be a non-empty string", index))
    elif value is None:
        value = default or str(uuid.uuid4())
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    else:
        problems.append(Problem("messageId", "must be a non-empty string", index))
    if isinstance(value, str) and len(value) > max_length:
        problems.append(
            Problem(
                "messageId",
                f"is {len(value)} characters, more than the limit of {max_length}",
                index,
            )
        )
    return value


def _times(
    message: dict[str, Any],
    batch_sent_at: Any,
    received_at: int,
    historical: bool,
    problems: list[Problem],
    index: int | None,
) -> tuple[int, int | None, int | None]:
    """When the event happened, when the device says it happened, and when the device says it
    sent it (epoch µs; the last two None when not given).

    ``originalTimestamp`` is the device's own clock; ``timestamp`` stands in for it when it is
    missing, and wins in a historical import, where it is the moment as recorded. Segment's
    clock-skew correction: the device clock may be wrong, but the difference between when it
    says the event happened and when it says it sent it is right, so that difference is taken
    back from when the server received it. Without a device time, the event happened then.
    """
    original, original_field = message.get("originalTimestamp"), "originalTimestamp"
    if original is None or (historical and message.get("timestamp") is not None):
        original, original_field = message.get("timestamp"), "timestamp"
    sent_at = message.get("sentAt", batch_sent_at)
    original_us = None if original is None else _time(original, original_field, problems, index)
    sent_at_us = None if sent_at is None else _time(sent_at, "sentAt", problems, index)
    if original_us is None:
        return received_at, None, sent_at_us
    if sent_at_us is None or historical:
        return original_us, original_us, sent_at_us
    corrected = received_at - (sent_at_us - original_us)
    if not 0 <= corrected <= _LAST_MICROS:
        # Refused, not clamped: a clamped time would be made up; held in the quarantine, the
        # event can be replayed once the device's clock is understood (Segment-like).
        problems.append(
            Problem(
                original_field,
                f"corrected for clock skew (the time received less sentAt − {original_field}) "
                f"falls outside the years {FIRST_YEAR} to {LAST_YEAR}: {original_field} and "
                "sentAt must come from the same clock",
                index,
            )
        )
    return corrected, original_us, sent_at_us


def _time(value: Any, field: str, problems: list[Problem], index: int | None) -> int | None:
    """One of the event's date-times (present), in epoch µs, or its problem."""
    try:
        # Text goes straight to the cached parser; parse_time explains any other type.
        return _parse_text_time(value) if isinstance(value, str) else parse_time(value)
    except ValueError as exc:
        problems.append(Problem(field, str(exc), index))
        return None


def _identify_traits(kind: str | None, traits: Any, context: Any) -> Any:
    """RudderStack's SDKs send identify traits in context.traits only, so an identify without
    its own traits takes those."""
    if traits is None and kind == "identify" and context is not None:
        context_traits = context.get("traits")
        return context_traits if isinstance(context_traits, dict) else None
    return traits


def row_as_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(COLUMNS, row, strict=True))


_JSON_COLUMNS = frozenset({"properties", "traits", "context", "integrations", "raw"})


class StoredEvent(Answer):
    """An event as stored: the call's fields, its documents parsed, its times (event time
    after clock-skew correction, as sent, sent at, received at) and its channel and source."""

    seq: int = Field(description="Its place in arrival order")
    message_id: str
    type: str
    event: str | None = None
    name: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    group_id: str | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    timestamp: UtcTime
    original_timestamp: UtcTime | None = None
    sent_at: UtcTime | None = None
    received_at: UtcTime
    channel: str
    source: str = Field(
        description="The source of the key that sent it: the one it was made for, else its id"
    )
    raw: dict[str, Any] = Field(description="The message as it came (without a writeKey)")


class EventPage(Answer):
    events: list[StoredEvent]


class EventCount(Answer):
    count: int


def stored_event(row: Mapping[str, Any]) -> StoredEvent:
    """A stored event's row (a ``SELECT *`` of the events table) as its answer."""
    fields = {
        key: orjson.loads(value) if key in _JSON_COLUMNS and isinstance(value, str) else value
        for key, value in row.items()
        if key != "id_hash"
    }
    return StoredEvent(**fields)
