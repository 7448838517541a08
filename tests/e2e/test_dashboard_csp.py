"""The dashboard works under its Content-Security-Policy (no inline script or style, no
eval, no framing): in a real browser every page loads, draws its charts and runs its
controls, and the browser reports no violation of the policy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from e2e_browser import admin_key, sign_in

from conftest import Server

pytestmark = pytest.mark.e2e

# Each violation the browser reports is kept where the test can read it.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", e => window.__violations.push(
  `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def _person(server: Server) -> str:
    with server.client() as http:
        events = http.get("/v1/events", params={"limit": 200}).json()["events"]
    return next(f"user_id:{e['user_id']}" for e in events if e["user_id"])


def test_every_page_runs_under_the_csp_without_a_violation(
    demo_server: Server, browser: Any
) -> None:
    policy = httpx.get(f"{demo_server.url}/login").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    context = browser.new_context()
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    sign_in(page, demo_server, admin_key(demo_server))
    page.wait_for_selector("h1")
    pages = [
        "/",
        "/journeys/map",
        "/journeys/funnels",
        "/journeys/paths",
        "/journeys/retention",
        "/journeys/channel-mix",
        "/journeys/attribution",
        "/people",
        f"/people/{_person(demo_server)}",
        "/sources",
    ]
    for path in pages:
        page.goto(f"{demo_server.url}{path}")
        charts = page.locator(".chart")
        for chart in charts.all():
            chart.locator("xpath=self::*[@data-drawn='true']").wait_for(timeout=15_000)
            box = chart.bounding_box()
            assert box is not None and box["height"] >= 100, (path, box)  # data-height set
        # Page styles load from their files: e.g. the forms and panels are laid out.
        assert page.evaluate("document.styleSheets.length") >= 1, path
        assert page.evaluate("window.__violations") == [], path
    # A control that needs the script: another funnel step.
    page.goto(f"{demo_server.url}/journeys/funnels")
    before = page.locator("#steps li").count()
    page.click("#add-step")
    assert page.locator("#steps li").count() == before + 1
    # The profile's bars and dots are SVG, drawn without style attributes.
    page.goto(f"{demo_server.url}/people/{_person(demo_server)}")
    assert page.locator("svg.dot circle").count() >= 1
    assert page.evaluate("window.__violations") == []
    violations = [line for line in console if "Content Security Policy" in line]
    assert violations == [], violations
    assert not [line for line in console if line.startswith("pageerror")], console
    context.close()


def test_the_dashboard_cannot_be_framed(demo_server: Server) -> None:
    response = httpx.get(f"{demo_server.url}/login")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
