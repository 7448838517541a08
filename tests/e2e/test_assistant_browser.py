"""The service assistant as a customer meets it, in a real browser (Debian's chromium,
through Playwright) against a real server: on the demo site with the chat widget an
anonymous visitor asks for the opening hours in German and gets them; signs in; asks
"Wo ist meine Bestellung?" and gets their own order's state; asks for a person. In a second
browser context an agent signed in to the dashboard sees the conversation beside the
customer's profile in the console and replies; the visitor sees the reply in the widget;
the agent closes the conversation and the widget asks the visitor for a rating.
The conversation is then in the person's timeline, and the journey map counts the
handover as a pain point. Fixtures: tests/conftest.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_browser import admin_key, screenshot, sign_in

from conftest import Server, start_server

pytestmark = pytest.mark.e2e

SECRET = "a-secret-of-the-demo-site-42"
ORDER = "NW-E2E00001"
ERIKA = [
    {"type": "identify", "userId": "u-erika", "messageId": "e1",
     "traits": {"first_name": "Erika", "last_name": "Muster", "email": "erika@example.com",
                "city": "Hamburg"},
     "context": {"consent": {"categoryPreferences": {"analytics": True}}}},
    {"type": "track", "userId": "u-erika", "event": "Order Completed", "messageId": "e2",
     "timestamp": "2026-11-20T09:00:00Z",
     "properties": {"order_id": ORDER, "revenue": 89.0, "currency": "EUR",
                    "products": [{"name": "Ladekabel Typ 2"}]}},
    {"type": "track", "userId": "u-erika", "event": "Order Shipped", "messageId": "e3",
     "timestamp": "2026-11-24T15:00:00Z",
     "properties": {"order_id": ORDER, "carrier": "DHL", "expected_delivery": "2026-11-27"}},
]  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("assistant-site") / "data"
    env = {
        "TOUCHPOINTS_ASSISTANT_IDENTITY_SECRET": SECRET,
        "TOUCHPOINTS_ASSISTANT_DEMO_SITE": "true",
        "TOUCHPOINTS_ASSISTANT_WARM": "true",  # as a site's server: ready before the customer
    }
    server = start_server(data_dir, extra_env=env)
    response = server.post("/v1/batch", json={"batch": ERIKA}, auth=(server.write_key, ""))
    assert response.status_code == 200, response.text
    server.wait_for_count(3)
    yield server
    server.stop()


def _ask(page: Any, text: str, author: str = "assistant", timeout: float = 60_000) -> str:
    """Type ``text`` into the widget and wait for the next message of ``author``."""
    before = page.locator(f".tp-assistant-message[data-author={author}]").count()
    page.fill(".tp-assistant-input", text)
    page.click(".tp-assistant-send")
    found = page.locator(f".tp-assistant-message[data-author={author}]").nth(before)
    found.wait_for(timeout=timeout)
    return str(found.inner_text())


def test_the_customer_scenario_across_the_widget_and_the_agent_console(
    site: Server, browser: Any
) -> None:
    visitor = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
    agent = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = visitor.new_page()
        page.goto(f"{site.url}/assistant/demo")
        page.click(".tp-assistant-open")
        page.wait_for_selector(".tp-assistant-panel:not([hidden])")
        hours = _ask(page, "Wann habt ihr geöffnet?")
        assert "Mo–Fr 08:00-20:00" in hours and "Sa 09:00-16:00" in hours

        # Signing in on the site: the widget goes on with the same conversation, now proven.
        page.fill("#demo-user", "u-erika")
        page.click("#demo-sign-in button[type=submit]")
        page.wait_for_selector("#demo-signed-in")
        page.click(".tp-assistant-open")
        page.wait_for_selector(".tp-assistant-message[data-author=customer]")
        order = _ask(page, "Wo ist meine Bestellung?")
        assert ORDER in order and "24.11.2026 mit DHL verschickt" in order
        handover = _ask(page, "Ich möchte mit einem Menschen sprechen")
        assert "Ich verbinde Sie mit unserem Team" in handover
        screenshot(page, "assistant-widget")

        console = agent.new_page()
        sign_in(console, site, admin_key(site))
        console.wait_for_selector("nav")
        console.goto(f"{site.url}/assistant")
        row = console.locator("#conversations tr[data-conversation]").first
        row.wait_for()
        assert console.locator('#queues tr[data-team="support"] .waiting').inner_text() == "1"
        row.locator("a").click()
        console.wait_for_selector("#conversation")
        assert console.inner_text("#summary-who").startswith("Erika Muster")
        assert ORDER in console.inner_text("#summary-order")
        assert "Hamburg" in console.inner_text("#profile-traits")
        assert "Wo ist meine Bestellung?" in console.inner_text("#messages")
        console.fill("#reply-text", "Hallo Frau Muster, das Kabel ist morgen bei Ihnen.")
        console.click("#reply-form button[type=submit]")
        console.wait_for_selector("#messages .message[data-author=agent]")
        screenshot(console, "assistant-console")

        reply = page.locator(".tp-assistant-message[data-author=agent]").first
        reply.wait_for(timeout=40_000)
        assert "das Kabel ist morgen bei Ihnen" in reply.inner_text()

        # The agent closes the conversation; the widget asks the customer for a rating at
        # once (the waiting poll answers on closing) and the figures count it.
        console.click("#close-form button[type=submit]")
        console.wait_for_selector("#closed-notice")
        rating = page.locator(".tp-assistant-rating")
        rating.wait_for(timeout=20_000)
        assert "Wie zufrieden waren Sie?" in rating.inner_text()
        assert page.locator(".tp-assistant-star").count() == 5
        page.click('.tp-assistant-star[data-rating="4"]')
        page.locator(".tp-assistant-notice", has_text="Danke für Ihre Bewertung!").wait_for()
        assert page.locator(".tp-assistant-rating").count() == 0
        console.goto(f"{site.url}/assistant")
        assert re.search(r"satisfaction 4(\.0)? of 5 \(1 ratings\)", console.inner_text("main"))
    finally:
        visitor.close()
        agent.close()

    site.wait_idle()
    with site.client(admin_key(site)) as api:
        timeline = api.get("/v1/profiles/user_id:u-erika/timeline", params={"limit": 100}).json()
        chat = [e for e in timeline["events"] if e["channel"] == "chat"]
        names = {e["event"] for e in chat}
        assert {"Live Chat Message Sent", "Live Chat Message Received", "Chatbot Handover"} <= names
        journey = api.get("/v1/journeys/map").json()
        pains = {p["name"]: p["persons"] for p in journey["pain_points"]}
        assert pains["chatbot handover"] >= 1
        figures = api.get("/v1/assistant/figures").json()
        assert (figures["ratings"], figures["satisfaction"]) == (1, 4.0)
