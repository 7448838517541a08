"""Bounded fuzzing, in ``make test`` (marked ``fuzz`` and ``slow``: not in ``make test-fast``):
schemathesis against the app's own OpenAPI, and hypothesis against the collector, both
through the server's app in process (tests/conftest.py ``start_app``, its writer running).
The one property: no answer is a 5xx; and the collector stores the valid events of a batch
whatever else the batch holds. Each part keeps well under a minute (``max_examples``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from conftest import AppServer, start_app

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz, pytest.mark.slow]

BOUNDED = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure is reproducible
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    found = start_app(tmp_path_factory.mktemp("fuzz") / "data")
    yield found
    found.stop()


# -- the API, from its OpenAPI -----------------------------------------------------------------
def test_no_api_operation_answers_5xx(fuzzed: AppServer) -> None:
    """Every operation of the OpenAPI with generated parameters and bodies, as an admin (so
    the routes are reached, not refused at the key): never a server error. (Operations are
    walked here: schemathesis's pytest plugin does not run on pytest 9.)"""
    headers = {"Authorization": f"Bearer {fuzzed.admin_key()}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20

    for operation in operations:

        @BOUNDED
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        check()


# -- the collector, with hypothesis ------------------------------------------------------------
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_FIELDS = ["type", "userId", "anonymousId", "event", "properties", "traits", "timestamp",
           "sentAt", "context", "messageId", "previousId", "groupId", "name"]  # fmt: skip
# Events with Segment's field names and values of any type: wrong types, missing fields.
_junk_events = st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=6) | _json


def _nested(depth: int) -> str:
    return '{"x":' * depth + "1" + "}" * depth


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A batch's JSON text, and the messageIds of the valid events in it."""
    ids: list[str] = []
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["valid", "junk", "deep", "huge"]))
        if kind == "valid":
            message_id = f"fuzz-{uuid.uuid4()}"
            ids.append(message_id)
            props = draw(st.dictionaries(st.text(max_size=8), _scalars, max_size=3))
            event = {"type": "track", "userId": "u", "event": "E", "messageId": message_id}
            parts.append(json.dumps({**event, "properties": props}))
        elif kind == "junk":
            parts.append(json.dumps(draw(_junk_events)))
        elif kind == "deep":
            depth = draw(st.sampled_from([255, 1000, 10_000]))
            parts.append('{"type": "track", "userId": "u", "event": "E", "properties": ')
            parts[-1] += _nested(depth) + "}"
        else:
            size = draw(st.sampled_from([33_000, 600_000]))
            parts.append(json.dumps({"type": "track", "userId": "u", "event": "x" * size}))
    # A batch's own context and integrations (valid: a wrong one refuses every event, as
    # each event would be refused for it; the junk events above try wrong types).
    extra = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "context": st.dictionaries(st.text(max_size=8), _scalars, max_size=3),
                "integrations": st.dictionaries(st.text(max_size=8), st.booleans(), max_size=3),
            },
        )
    )
    text = '{"batch": [' + ", ".join(parts) + "]"
    if extra:
        text += ", " + json.dumps(extra)[1:-1]
    return text + "}", ids


@settings(BOUNDED, max_examples=40)
@given(body=_bodies())
def test_the_collector_never_answers_5xx_and_stores_the_valid_events(
    fuzzed: AppServer, body: tuple[str, list[str]]
) -> None:
    text, ids = body
    response = fuzzed.post(
        "/v1/batch",
        content=text.encode(),
        auth=(fuzzed.write_key, ""),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code < 500, response.text[:500]
    assert response.status_code in (200, 400, 413), response.text[:500]
    if response.status_code == 413 or not ids:
        return
    if response.status_code == 400:  # the whole body refused: only for what is not events
        assert not json.loads(response.text).get("rejected"), response.text[:500]
        return
    fuzzed.wait_idle()
    placeholders = ", ".join("?" for _ in ids)
    stored = fuzzed.tp.warehouse.scalar(
        f"SELECT count(DISTINCT message_id) FROM events WHERE message_id IN ({placeholders})", ids
    )
    assert stored == len(ids), response.text[:500]


@settings(BOUNDED, max_examples=40)
@given(event=_junk_events, route=st.sampled_from(["track", "identify", "page", "alias", "t"]))
def test_single_event_routes_never_answer_5xx(fuzzed: AppServer, event: Any, route: str) -> None:
    response = fuzzed.post(
        f"/v1/{route}",
        content=json.dumps(event).encode(),
        auth=(fuzzed.write_key, ""),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code < 500, response.text[:500]


def test_json_nested_10000_deep_everywhere_is_not_5xx(fuzzed: AppServer, tmp_path: Path) -> None:
    deep = _nested(10_000)
    bodies = [
        deep,
        '{"batch": ' + deep + "}",
        '{"batch": [], "context": ' + deep + "}",
        "[" * 10_000 + "]" * 10_000,
    ]
    for text in bodies:
        for route in ("batch", "track"):
            response = fuzzed.post(
                f"/v1/{route}", content=text.encode(), auth=(fuzzed.write_key, "")
            )
            assert response.status_code < 500, (route, response.text[:300])
