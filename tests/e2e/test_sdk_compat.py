"""Segment's and RudderStack's official Python SDKs, unchanged, against a real server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from conftest import Server

pytestmark = pytest.mark.e2e

SDKS = {"segment": SegmentClient, "rudderstack": RudderClient}


def _send_every_call(client: Any, tag: str) -> None:
    when = datetime(2026, 5, 4, 10, 30, tzinfo=UTC)
    client.identify(f"{tag}-user", {"email": f"{tag}@example.com", "plan": "gold"})
    client.track(
        f"{tag}-user",
        "Configuration Saved",
        {"model": "Nordwind E5", "price": 48900},
        context={"campaign": {"source": "newsletter", "medium": "email"}},
        timestamp=when,
    )
    client.page(f"{tag}-user", category="cars", name="Modelle", properties={"path": "/modelle"})
    client.screen(f"{tag}-user", name="Fahrzeug", properties={"tab": "klima"})
    client.group(f"{tag}-user", f"{tag}-fleet", {"name": "Fleet GmbH"})
    client.alias(f"{tag}-old", f"{tag}-user")
    client.track(anonymous_id=f"{tag}-anon", event="Brochure Downloaded", properties={"n": 1})
    client.flush()


def _events_of(server: Server, tag: str) -> list[dict[str, Any]]:
    with server.client() as http:
        rows = http.get("/v1/events", params={"limit": 1000, "order": "oldest"}).json()
    return [
        e
        for e in rows["events"]
        if tag in f"{e.get('user_id')}{e.get('anonymous_id')}{e.get('previous_id')}"
    ]


@pytest.mark.parametrize("sdk", sorted(SDKS))
def test_official_sdk_calls_arrive_once_with_their_fields(server: Server, sdk: str) -> None:
    errors: list[Exception] = []
    client = SDKS[sdk](
        server.write_key,
        host=server.url,
        sync_mode=True,
        gzip=True,
        on_error=lambda error, _batch: errors.append(error),
    )
    _send_every_call(client, sdk)
    assert errors == []
    server.wait_for_count(7)
    events = _events_of(server, sdk)
    assert sorted(e["type"] for e in events) == sorted(
        ["identify", "track", "page", "screen", "group", "alias", "track"]
    )
    by_type = {e["type"]: e for e in events if e["type"] != "track"}
    assert by_type["identify"]["traits"] == {"email": f"{sdk}@example.com", "plan": "gold"}
    assert by_type["page"]["name"] == "Modelle"
    assert by_type["screen"]["name"] == "Fahrzeug"
    assert by_type["screen"]["channel"] == "mobile_app"
    assert by_type["group"]["group_id"] == f"{sdk}-fleet"
    assert by_type["alias"]["previous_id"] == f"{sdk}-old"
    assert by_type["alias"]["user_id"] == f"{sdk}-user"

    tracks = {e["event"]: e for e in events if e["type"] == "track"}
    saved = tracks["Configuration Saved"]
    assert saved["properties"] == {"model": "Nordwind E5", "price": 48900}
    assert saved["channel"] == "email"  # the campaign medium says where the contact came from
    # The SDK sends timestamp and sentAt; with a correct clock the stored time is the event's.
    stored = datetime.fromisoformat(saved["timestamp"].removesuffix("Z")).replace(tzinfo=UTC)
    assert abs((stored - datetime(2026, 5, 4, 10, 30, tzinfo=UTC)).total_seconds()) < 5
    assert saved["raw"]["event"] == "Configuration Saved"
    assert tracks["Brochure Downloaded"]["anonymous_id"] == f"{sdk}-anon"
    assert tracks["Brochure Downloaded"]["user_id"] is None
    assert all(e["source"] != "" for e in events)


@pytest.mark.parametrize("sdk", sorted(SDKS))
def test_a_batch_resent_by_an_sdk_is_stored_once(server: Server, sdk: str) -> None:
    client = SDKS[sdk](server.write_key, host=server.url, sync_mode=True)
    for n in range(5):
        client.track("resend-user", "Trip Completed", {"km": n}, message_id=f"{sdk}-trip-{n}")
    # Retrying the same messages (as an SDK does after a timeout) must not double them.
    for n in range(5):
        client.track("resend-user", "Trip Completed", {"km": n}, message_id=f"{sdk}-trip-{n}")
    client.flush()
    server.wait_idle()
    with server.client() as http:
        count = http.get("/v1/events/count", params={"user_id": "resend-user"}).json()["count"]
    assert count == 5
