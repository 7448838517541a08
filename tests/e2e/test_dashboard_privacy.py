"""The Privacy page in a real browser (Debian's chromium, through Playwright) against a real
server: an export downloaded from the page holds the person's events; an erasure needs the key
typed twice and the confirmation, then the person is gone from the API and their identifiers
suppressed; lifting the suppression accepts their events again; the register of requests shows
all of it. A session without the privacy permission gets no Privacy page, and a form without
its token changes nothing. The consent section of the profile page shows the person's choices.
Fixtures: tests/conftest.py."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import orjson
import pytest
from e2e_browser import admin_key, screenshot, sign_in

from conftest import Server

pytestmark = pytest.mark.e2e

CARLA = [
    {"type": "identify", "userId": "u-carla", "anonymousId": "laptop-carla",
     "traits": {"email": "Carla@Example.com", "name": "Carla"}, "messageId": "p1",
     "context": {"consent": {"categoryPreferences": {"analytics": True, "marketing": False}}}},
    {"type": "track", "userId": "u-carla", "event": "Order Completed", "messageId": "p2",
     "properties": {"revenue": 100}},
]  # fmt: skip
KEY = "email:carla@example.com"


def _send(server: Server, batch: list[dict[str, Any]]) -> None:
    response = server.post("/v1/batch", json={"batch": batch}, auth=(server.write_key, ""))
    assert response.status_code == 200, response.text


def _open_privacy(browser: Any, server: Server, key: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    sign_in(page, server, key)
    page.wait_for_selector("nav")
    page.click("nav >> text=Privacy")
    page.wait_for_selector("h1:text('Privacy')")
    return context, page


def _profile_status(server: Server, admin: str) -> int:
    with server.client(admin) as api:
        return api.get(f"/v1/profiles/{KEY}").status_code


def test_export_erase_and_lift_from_the_page(server: Server, browser: Any) -> None:
    _send(server, CARLA)
    server.wait_for_count(2)
    admin = admin_key(server)
    context, page = _open_privacy(browser, server, admin)
    try:
        assert page.inner_text("#open-requests") == "0"

        # Export: the download is the archive the API gives.
        page.fill("#export-key", KEY)
        with page.expect_download() as download:
            page.click("#export-form button[type=submit]")
        archive = zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes()))
        events = orjson.loads(archive.read("tables/events.json"))
        assert {event["message_id"] for event in events} == {"p1", "p2"}

        # Erasure: the key typed twice, or nothing happens.
        page.goto(f"{server.url}/privacy")
        page.fill("#erase-key", KEY)
        page.fill("#erase-confirm", "email:someone-else@example.com")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#erase-form button[type=submit]")
        assert "type the key a second time" in page.inner_text("#erase-error")
        assert _profile_status(server, admin) == 200

        # A dismissed confirmation sends nothing.
        page.fill("#erase-confirm", KEY)
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click("#erase-form button[type=submit]")
        assert _profile_status(server, admin) == 200

        page.fill("#erase-confirm", KEY)
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#erase-form button[type=submit]")
        page.wait_for_selector("#erasure-done")
        removed = dict(
            (row.locator("td").nth(0).inner_text(), row.locator("td").nth(1).inner_text())
            for row in page.locator("#erasure-done tbody tr").all()
        )
        assert removed["events"] == "2"
        assert _profile_status(server, admin) == 404
        # The laptop, the user id and the e-mail: three identifiers suppressed.
        assert page.inner_text("#suppressed") == "3"
        screenshot(page, "privacy")

        # Later events with an erased identifier are dropped, and counted.
        _send(server, [{"type": "track", "userId": "u-carla", "event": "X", "messageId": "p3"}])
        server.wait_idle()
        with server.client(admin) as api:
            assert api.get("/v1/events/count").json()["count"] == 0
        page.goto(f"{server.url}/privacy")
        assert page.inner_text("#dropped") == "1"

        # The register: the export and the erasure, done; the erasure's counts on its page.
        rows = page.locator("#requests tbody tr[data-request]")
        assert rows.count() == 2
        cells = [row.locator("td").all_inner_texts() for row in rows.all()]
        assert [c[1] for c in cells] == ["erasure", "export"]
        assert all(c[3].startswith("done") for c in cells)
        erasure_id = page.get_attribute("#requests tbody tr[data-request] >> nth=0", "data-request")
        page.click(f"#requests a[href='/privacy?request={erasure_id}']")
        detail = page.inner_text("#request-detail")
        assert "rows events" in detail and "carla" not in detail.lower()

        # Lifting the suppression: events with the identifiers are stored again.
        page.goto(f"{server.url}/privacy")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click(f"tr[data-request='{erasure_id}'] button")
        page.wait_for_selector("#lifted")
        assert page.inner_text("#suppressed") == "0"
        _send(server, [{"type": "track", "userId": "u-carla", "event": "X", "messageId": "p4"}])
        assert server.wait_for_count(1) == 1
    finally:
        context.close()


def test_a_session_without_the_permission_and_a_form_without_its_token(
    server: Server, browser: Any
) -> None:
    _send(server, CARLA)
    server.wait_for_count(2)
    admin = admin_key(server)

    # A read key signs in, but the Privacy page is neither offered nor opened.
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, server, server.read_key)
        page.wait_for_selector("nav")
        assert page.locator("nav >> text=Privacy").count() == 0
        assert page.goto(f"{server.url}/privacy").status == 403
    finally:
        context.close()

    # An admin session's erasure form posted without the form token changes nothing.
    context, page = _open_privacy(browser, server, admin)
    try:
        cookies = {c["name"]: c["value"] for c in context.cookies()}
        response = httpx.post(
            f"{server.url}/privacy/erase",
            data={"key": KEY, "confirm": KEY},
            cookies=cookies,
            follow_redirects=False,
        )
        assert response.status_code == 403
        assert _profile_status(server, admin) == 200

        # The profile page shows the person's consent, chosen and defaulted.
        page.goto(f"{server.url}/people/{KEY}")
        granted = {
            row.get_attribute("data-consent"): row.get_attribute("data-granted")
            for row in page.locator("#consent tr[data-consent]").all()
        }
        assert granted["analytics"] == "true"
        assert granted["marketing"] == "false"
        with server.client(admin) as api:
            consent = api.get(f"/v1/profiles/{KEY}/consent").json()["consent"]
        assert granted == {k: str(v["granted"]).lower() for k, v in consent.items()}
    finally:
        context.close()
