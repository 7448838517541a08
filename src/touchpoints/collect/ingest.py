"""From a parsed request body to rows and rejections: the collector's logic without HTTP.

The HTTP routes, the quarantine replay and the bulk importer all come through here, so an event
is judged by the same rules whichever door it used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from touchpoints.events import EventNormalizer, EventRow, Problem, too_deep

SINGLE_ROUTES: frozenset[str] = frozenset({"track", "identify", "page", "screen", "group", "alias"})
# /v1/import is /v1/batch for historical data: a given timestamp is kept as it is.
BATCH_ROUTES: frozenset[str] = frozenset({"batch", "import"})


@dataclass
class Rejected:
    """One refused event: its place in the request, its messageId if any, and every problem."""

    index: int | None
    event: Any
    problems: list[Problem]
    message_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"errors": [p.as_dict() for p in self.problems]}
        if self.index is not None:
            out["index"] = self.index
        if self.message_id is not None:
            out["messageId"] = self.message_id
        return out


@dataclass
class Outcome:
    rows: list[EventRow] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    # A problem with the request as a whole (not an object, batch not a list, too many events):
    body_problems: list[Problem] = field(default_factory=list)
    envelope: dict[str, Any] = field(default_factory=dict)


def split_request(
    payload: Any,
    route: str,
    normalizer: EventNormalizer,
    *,
    received_at: int,
    source: str,
    max_batch_events: int | None,
    default_id_prefix: str | None = None,
) -> Outcome:
    """Validate a request body for ``route`` ("batch", "import" or one of the six call types).

    ``default_id_prefix`` gives events without a messageId a deterministic one
    (``{prefix}-{index}``), so that replaying the same stored body cannot store them twice.
    """
    outcome = Outcome()
    if not isinstance(payload, dict):
        outcome.body_problems.append(
            Problem("", f"request body must be a JSON object, got {type(payload).__name__}")
        )
        return outcome

    if route in SINGLE_ROUTES:
        events: list[Any] = [payload]
        route_type: str | None = route
        envelope: dict[str, Any] = {}
    else:
        batch = payload.get("batch")
        if not isinstance(batch, list):
            outcome.body_problems.append(
                Problem("batch", "is required and must be an array of events")
            )
            return outcome
        if max_batch_events is not None and len(batch) > max_batch_events:
            outcome.body_problems.append(
                Problem(
                    "batch",
                    f"has {len(batch)} events, more than the limit of {max_batch_events}; "
                    "split it into smaller batches",
                )
            )
            return outcome
        if not batch:
            outcome.body_problems.append(Problem("batch", "is empty"))
            return outcome
        events, route_type = batch, None
        envelope = {
            key: payload[key] for key in ("context", "integrations", "sentAt") if key in payload
        }
        for key in ("context", "integrations"):
            if key in envelope and not isinstance(envelope[key], dict):
                outcome.body_problems.append(Problem(key, "must be an object"))
            elif key in envelope and not _writable(envelope[key]):
                # Merged into every event's own: each would be refused for it.
                outcome.body_problems.append(Problem(key, too_deep(envelope[key], key)))
        if outcome.body_problems:
            return outcome
    outcome.envelope = envelope
    outcome.rows, outcome.rejected = normalize_events(
        events,
        normalizer,
        route_type=route_type,
        envelope=envelope,
        received_at=received_at,
        source=source,
        default_id_prefix=default_id_prefix,
        indexed=route_type is None,
        historical=route == "import",
    )
    return outcome


def _writable(value: Any) -> bool:
    """Whether orjson writes ``value`` (it writes at most ``MAX_DEPTH`` levels)."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


def normalize_events(
    events: list[Any],
    normalizer: EventNormalizer,
    *,
    route_type: str | None,
    envelope: Mapping[str, Any],
    received_at: int,
    source: str,
    default_id_prefix: str | None = None,
    indexed: bool = True,
    first_index: int = 0,
    historical: bool = False,
) -> tuple[list[EventRow], list[Rejected]]:
    rows: list[EventRow] = []
    rejected: list[Rejected] = []
    context = envelope.get("context")
    integrations = envelope.get("integrations")
    sent_at = envelope.get("sentAt")
    for offset, event in enumerate(events):
        position = first_index + offset
        index = position if indexed else None
        row, problems = normalizer.normalize(
            event,
            received_at=received_at,
            source=source,
            route_type=route_type,
            batch_context=context,
            batch_integrations=integrations,
            batch_sent_at=sent_at,
            index=index,
            default_message_id=f"{default_id_prefix}-{position}" if default_id_prefix else None,
            historical=historical,
        )
        if row is not None:
            rows.append(row)
        else:
            message_id = event.get("messageId") if isinstance(event, dict) else None
            rejected.append(
                Rejected(
                    index, event, problems, message_id if isinstance(message_id, str) else None
                )
            )
    return rows, rejected
