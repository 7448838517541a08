"""What a destination is told when the identity map moves persons: a merge never leaves a
receiver with a stale ``true`` for the merged person's identifiers, an unmerge tells each
side what holds for it, and a person merged away is sent nothing (their identifiers are the
other person's now)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints


@pytest.fixture
def tp(tmp_path: Path) -> Any:
    with Touchpoints.open(load_settings(tmp_path / "data")) as found:
        yield found


def _send(tp: Touchpoints, *messages: dict[str, Any]) -> None:
    outcome = tp.judge({"batch": list(messages)}, "batch", source="messages-test")
    assert not outcome.rejected, outcome.rejected
    tp.write_rows(outcome.rows)
    tp.evaluation.catch_up()


def _calls(tp: Touchpoints) -> list[dict[str, Any]]:
    rows = tp.warehouse.fetchall("SELECT payload FROM outbox ORDER BY seq")
    return [orjson.loads(payload) for (payload,) in rows]


def _said(calls: list[dict[str, Any]], key: str) -> list[tuple[str | None, str | None, bool]]:
    return [(c.get("userId"), c.get("anonymousId"), c["traits"][key]) for c in calls]


def test_a_merge_tells_the_receiver_the_merged_persons_state(tp: Touchpoints) -> None:
    tp.audiences.create(
        {"key": "never_viewed", "name": "n", "condition": {"not": {"event": "Viewed"}}}
    )
    hook = tp.destinations.create("webhook", "crm", {"url": "https://example.com/h"}, [])
    _send(
        tp,
        {"type": "track", "anonymousId": "d1", "event": "Viewed", "messageId": "m1"},
        {"type": "identify", "userId": "u1", "anonymousId": "d2", "messageId": "m2"},
    )
    tp.audiences.link("never_viewed", hook.destination.id)
    assert _said(_calls(tp), "never_viewed") == [("u1", "d2", True)]
    # d1 (who viewed) signs in as u1: the merged person viewed, so is no member any more.
    _send(tp, {"type": "identify", "userId": "u1", "anonymousId": "d1", "messageId": "m3"})
    assert tp.audiences.get("never_viewed").size == 0
    (*_, last) = _calls(tp)
    assert last["userId"] == "u1" and last["traits"]["never_viewed"] is False
    assert len(_calls(tp)) == 2  # the person merged away is sent nothing


def test_an_unmerge_tells_each_side_what_holds_for_it(tp: Touchpoints) -> None:
    tp.audiences.create({"key": "viewers", "name": "v", "condition": {"event": "Viewed"}})
    hook = tp.destinations.create("webhook", "crm", {"url": "https://example.com/h"}, [])
    _send(
        tp,
        {"type": "track", "anonymousId": "d1", "event": "Viewed", "messageId": "m1"},
        {"type": "identify", "userId": "u1", "anonymousId": "d1", "messageId": "m2"},
    )
    tp.audiences.link("viewers", hook.destination.id, "track")
    (first,) = _calls(tp)
    assert (first["event"], first["userId"], first["anonymousId"]) == (
        "Audience Entered",
        "u1",
        "d1",
    )
    tp.identity.unmerge("anonymous_id:d1")  # d1 and its view go their own way
    tp.evaluation.catch_up()
    assert tp.audiences.get("viewers").size == 1
    assert _receiver(_calls(tp)) == {"u1": False, "d1": True}


def _receiver(calls: list[dict[str, Any]]) -> dict[str, bool]:
    """What a receiver that keys by userId and anonymousId believes, after every call."""
    state: dict[str, bool] = {}
    for call in calls:
        member = call["event"] == "Audience Entered"
        for name in ("userId", "anonymousId"):
            if name in call:
                state[call[name]] = member
    return state
