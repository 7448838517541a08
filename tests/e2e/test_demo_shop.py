"""The demo shop in chromium: Segment's analytics.js and RudderStack's JavaScript SDK, as
published on npm and vendored, send the anonymous visitor's page views and clicks to a real
server; signing in (identify from both) merges the two SDKs' devices into one person; and
the offer the page shows changes when the visitor enters an audience, answered by
``POST /v1/decide`` from the page itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from e2e_browser import admin_key

from conftest import Server

pytestmark = pytest.mark.e2e

AUDIENCE = {
    "key": "configurators",
    "name": "Configured twice",
    "condition": {"event": "Configuration Saved", "at_least": 2},
}
PLACEMENT = {
    "key": "home_hero",
    "name": "Home page hero",
    "default": {"headline": "Welcome to Nordwind"},
    "rules": [
        {
            "key": "test_drive",
            "condition": {"audience": "configurators"},
            "content": {"headline": "Book your test drive", "text": "Your E5 is waiting."},
        }
    ],
}


def _wait(check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)
    return found


def _events(server: Server, anonymous_id: str) -> list[dict[str, Any]]:
    with server.client() as http:
        rows = http.get("/v1/events", params={"limit": 1000, "order": "oldest"}).json()["events"]
    return [e for e in rows if e.get("anonymous_id") == anonymous_id]


def _person(server: Server, key: str) -> str | None:
    with server.client() as http:
        answer = http.get(f"/v1/profiles/{key}")
    return answer.json()["person"] if answer.status_code == 200 else None


def test_both_sdks_send_sign_in_merges_and_the_offer_follows_the_audience(
    server: Server, browser: Any
) -> None:
    with server.client(admin_key(server)) as admin:
        assert admin.post("/v1/audiences", json=AUDIENCE).status_code == 201
        assert admin.post("/v1/placements", json=PLACEMENT).status_code == 201
    assert httpx.get(f"{server.url}/demo/shop?writeKey=nope").status_code == 404
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None,
    )
    page.goto(f"{server.url}/demo/shop?writeKey={server.write_key}&placement=home_hero")
    visitor = page.locator("#visitor")
    page.wait_for_function(
        "() => document.querySelector('#visitor').dataset.segmentAnonymousId"
        " && document.querySelector('#visitor').dataset.rudderstackAnonymousId",
        timeout=60_000,
    )
    segment_id = visitor.get_attribute("data-segment-anonymous-id")
    rudder_id = visitor.get_attribute("data-rudderstack-anonymous-id")
    assert segment_id and rudder_id and segment_id != rudder_id

    # The anonymous visitor's page views arrive from both SDKs, with their libraries.
    segment_events = _wait(lambda: _events(server, segment_id))
    rudder_events = _wait(lambda: _events(server, rudder_id))
    assert segment_events[0]["type"] == "page" and rudder_events[0]["type"] == "page"
    assert _person(server, f"anonymous_id:{segment_id}") != _person(
        server, f"anonymous_id:{rudder_id}"
    )
    # Without consent to personalisation: the default, for that reason.
    page.wait_for_function(
        "() => document.querySelector('#offer').dataset.reason === 'consent'", timeout=30_000
    )
    assert page.locator("#offer-headline").text_content() == "Welcome to Nordwind"

    page.check("#consent")
    page.wait_for_function(
        "() => document.querySelector('#offer').dataset.reason === 'default'", timeout=30_000
    )
    page.click("#configure")
    page.click("#configure")
    # The live evaluation moves the visitor into the audience; the page's next decision
    # shows the rule's content.
    page.wait_for_function(
        "() => document.querySelector('#offer').dataset.rule === 'test_drive'", timeout=60_000
    )
    assert page.locator("#offer-headline").text_content() == "Book your test drive"
    tracked = _wait(
        lambda: [e for e in _events(server, rudder_id) if e.get("event") == "Configuration Saved"]
    )
    assert len(tracked) == 2

    # Signing in: identify from both SDKs; their two devices become one person.
    page.fill("#user-id", "kunde-4711")
    page.fill("#email", "kunde@example.com")
    page.click("#sign-in button[type=submit]")
    user = _wait(lambda: _person(server, "user_id:kunde-4711"))
    _wait(lambda: _person(server, f"anonymous_id:{segment_id}") == user)
    _wait(lambda: _person(server, f"anonymous_id:{rudder_id}") == user)
    assert _person(server, "email:kunde@example.com") == user
    page.wait_for_function("() => !document.querySelector('#signed-in').hidden")
    assert page.locator("#offer").get_attribute("data-rule") == "test_drive"

    libraries = {
        (e.get("context") or {}).get("library", {}).get("name")
        for e in _events(server, segment_id) + _events(server, rudder_id)
    }
    assert len(libraries) == 2, libraries
    assert outside == [], outside  # nothing fetched from a CDN or anywhere else
    assert failed == [], failed
    assert problems == [], problems
    context.close()
