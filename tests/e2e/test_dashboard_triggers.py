"""The Triggers page in a real browser (Debian's chromium, through Playwright) against a
real server on demo data: an admin writes a trigger with a mistake and sees its place, puts
it right and sees it listed with the figures the API gives. Fixtures: tests/conftest.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from e2e_browser import admin_key, screenshot, sign_in

from conftest import Server

pytestmark = pytest.mark.e2e

WRONG = """\
key: browsing_again
name: Browsing again
when:
  event: Product Viewed
steps:
  - delay: 5 minutes
limit: {times: 1, per: 1d}
"""


def test_an_admin_writes_a_trigger_in_the_browser(demo_server: Server, browser: Any) -> None:
    key = admin_key(demo_server)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, demo_server, key)
    page.wait_for_selector("h1")
    page.goto(f"{demo_server.url}/triggers")
    page.wait_for_selector("#editor")
    page.fill("#definition", WRONG)
    page.click("#trigger-form button[type=submit]")
    page.wait_for_selector("#trigger-error")
    assert "steps[0].delay: give a duration" in page.inner_text("#trigger-error")
    assert page.input_value("#definition") == WRONG  # what was written is kept
    page.fill("#definition", WRONG.replace("5 minutes", "5m"))
    page.click("#trigger-form button[type=submit]")
    page.wait_for_selector("#trigger-notice")
    row = page.locator("#triggers tr[data-trigger='browsing_again']")
    assert "Product Viewed" in row.inner_text()
    with httpx.Client(
        base_url=demo_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as api:
        shown = api.get("/v1/triggers/browsing_again").json()
        assert int(row.locator("td.fired").get_attribute("data-fired")) <= shown["fired"]
        assert shown["summary"] == "event Product Viewed → wait 5m (at most 1 per 1d)"
        assert api.delete("/v1/triggers/browsing_again").status_code == 204
    screenshot(page, "triggers")
    context.close()
