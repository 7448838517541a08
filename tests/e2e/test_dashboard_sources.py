"""The Sources and keys page in a real browser (Debian's chromium, through Playwright)
against a real server on demo data: events per source and the keys list as the API gives
them, a write key created in the page that sends (through the page's own snippets) until it
is revoked in the page, and no change at all from a read session or a form without its
token. Fixtures: tests/conftest.py."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_browser import admin_key, chart_series, screenshot, sign_in

from conftest import Server

pytestmark = pytest.mark.e2e


def _open_sources(browser: Any, server: Server, key: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    sign_in(page, server, key)
    page.wait_for_selector("h1:text('Overview')")
    page.click("nav >> text=Sources and keys")
    page.wait_for_selector("h1:text('Sources and keys')")
    return context, page


def _api_keys(server: Server) -> list[dict[str, Any]]:
    with server.client(admin_key(server)) as api:
        return api.get("/v1/keys").json()["keys"]


def _when(iso: str | None) -> str:
    return "" if iso is None else iso[:16].replace("T", " ") + " UTC"


def _shown_keys(page: Any) -> list[list[str]]:
    rows = page.locator("#keys table.list tbody tr[data-key]")
    return [
        [cell.strip() for cell in row.locator("td").all_inner_texts()[:6]] for row in rows.all()
    ]


def _expected_keys(keys: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            k["id"],
            k["role"],
            k["name"] or "",
            f"{k['prefix']}…",
            _when(k["created_at"]),
            _when(k["revoked_at"]),
        ]
        for k in keys
    ]


def _session(context: Any, page: Any) -> tuple[dict[str, str], str]:
    """The browser session's cookie and form token, for requests made outside the page."""
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    return cookies, page.get_attribute("form.logout input[name=csrf]", "value")


def _source_count(server: Server, source: str, expected: int) -> int:
    deadline = time.monotonic() + 15
    with server.client() as api:
        while True:
            n = api.get("/v1/events/count", params={"source": source}).json()["count"]
            if n >= expected or time.monotonic() > deadline:
                return n
            time.sleep(0.1)


def test_a_read_session_sees_sources_and_snippets_as_the_api_gives_them_but_no_keys(
    demo_server: Server, browser: Any
) -> None:
    context, page = _open_sources(browser, demo_server, demo_server.read_key)
    with demo_server.client() as api:
        by_source = api.get("/v1/events/stats").json()["by_source"]
    assert sum(by_source.values()) > 1000
    assert chart_series(page, "sources-chart") == [list(by_source.values())]
    # The numbers under the chart and their CSV: the same, each stored key with its name.
    page.click("#sources-chart summary")
    shown = page.locator("#sources-chart table.numbers tbody tr td:first-child").all_inner_texts()
    assert shown == list(by_source)
    with page.expect_download() as download:
        page.click("#sources-chart a.csv")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["source", "key name", "key role", "events"]
    assert {r[0]: int(r[3]) for r in rows[1:]} == by_source
    # The keys list needs an admin session, as the keys API does.
    assert page.locator("#keys").count() == 0
    assert "needs an admin session" in page.inner_text("#keys-admin-only")
    listed = page.request.get(f"{demo_server.url}/sources?csv=keys")
    assert listed.status == 403
    html = page.content()
    assert demo_server.read_key not in html and demo_server.write_key not in html
    # No forms that change keys; the snippets point at this server, with a placeholder key.
    assert page.locator("form#create-key, form.revoke").count() == 0
    assert "needs an admin session" in page.inner_text(".sources-top")
    website = page.inner_text("#snippet-website")
    host = demo_server.url.removeprefix("http://")
    assert f'apiHost: "{host}/v1", protocol: "http"' in website
    assert 'writeKey: "<your write key>"' in website
    assert f'analytics.host = "{demo_server.url}"' in page.inner_text("#snippet-segment")
    assert f"{demo_server.url}/v1/track" in page.inner_text("#snippet-curl")
    context.close()


def test_a_read_session_or_a_form_without_its_token_changes_nothing(
    demo_server: Server, browser: Any
) -> None:
    before = _api_keys(demo_server)
    live = next(k for k in before if k["role"] == "write" and k["revoked_at"] is None)
    url = demo_server.url
    # A read session, even with its own form token, may neither create nor revoke.
    context, page = _open_sources(browser, demo_server, demo_server.read_key)
    cookies, csrf = _session(context, page)
    assert csrf
    with httpx.Client(base_url=url, cookies=cookies, follow_redirects=False) as http:
        made = http.post("/sources/keys", data={"csrf": csrf, "name": "forged"})
        assert made.status_code == 403
        gone = http.post(f"/sources/keys/{live['id']}/revoke", data={"csrf": csrf})
        assert gone.status_code == 403
    context.close()
    # An admin session, but a form without its token (another site's forged post).
    context, page = _open_sources(browser, demo_server, admin_key(demo_server))
    cookies, csrf = _session(context, page)
    with httpx.Client(base_url=url, cookies=cookies, follow_redirects=False) as http:
        for form in ({"name": "forged"}, {"name": "forged", "csrf": "guessed"}):
            made = http.post("/sources/keys", data=form)
            assert made.status_code == 403 and "out of date" in made.text
        assert http.post(f"/sources/keys/{live['id']}/revoke", data={}).status_code == 403
        # With its token, a key without a name is refused with the reason.
        nameless = http.post("/sources/keys", data={"csrf": csrf, "name": "  "})
        assert nameless.status_code == 422 and "give the key a name" in nameless.text
    # And without any session: the login.
    bare = httpx.post(f"{url}/sources/keys", data={"name": "x"}, follow_redirects=False)
    assert bare.status_code == 303 and bare.headers["location"].startswith("/login")
    context.close()
    assert _api_keys(demo_server) == before
    sent = httpx.post(f"{url}/v1/track", json={"anonymousId": "a", "event": "Still Live"},
                      auth=(demo_server.write_key, ""))  # fmt: skip
    assert sent.status_code == 200


def test_an_admin_creates_a_write_key_sends_with_its_snippets_and_revokes_it(
    demo_server: Server, browser: Any
) -> None:
    context, page = _open_sources(browser, demo_server, admin_key(demo_server))
    page.fill("#key-name", "Shop <website> & app")
    page.click("#create-key button[type=submit]")
    page.wait_for_selector("#new-secret")
    secret = page.inner_text("#new-secret").strip()
    assert secret.startswith("tp_write_")
    made = next(k for k in _api_keys(demo_server) if k["name"] == "Shop <website> & app")
    assert made["role"] == "write" and secret.startswith(made["prefix"])
    assert page.url == f"{demo_server.url}/sources"  # a reload does not post the form again
    # The snippets are filled in with the new key and this server's address.
    snippets = {
        name: page.inner_text(f"#snippet-{name}")
        for name in ("website", "segment", "rudderstack", "curl")
    }
    assert all(secret in text for text in snippets.values())
    assert f'apiHost: "{demo_server.url.removeprefix("http://")}/v1"' in snippets["website"]
    assert f'analytics.host = "{demo_server.url}"' in snippets["segment"]
    assert f'dataPlaneUrl = "{demo_server.url}"' in snippets["rudderstack"]
    # The key sends: plain HTTP, then the page's own Python and curl snippets, run as shown.
    sent = httpx.post(
        f"{demo_server.url}/v1/track",
        json={"userId": "sources-test", "event": "Key Tried"},
        auth=(secret, ""),
    )
    assert sent.status_code == 200 and sent.json()["success"] is True
    for name in ("segment", "rudderstack"):
        run = subprocess.run([sys.executable, "-c", snippets[name]], capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        assert run.returncode == 0, run.stderr
    run = subprocess.run(["bash", "-c", snippets["curl"]], capture_output=True, text=True,
                         timeout=30)  # fmt: skip
    assert run.returncode == 0 and '"success":true' in run.stdout.replace(" ", ""), run.stdout
    assert _source_count(demo_server, made["id"], 6) == 6  # 1 + 2 + 2 + 1
    # After a reload: counted for its source, named in the chart; the secret is gone.
    page.reload()
    page.wait_for_selector("h1:text('Sources and keys')")
    assert page.locator("#new-secret").count() == 0 and secret not in page.content()
    with demo_server.client() as api:
        by_source = api.get("/v1/events/stats").json()["by_source"]
    assert by_source[made["id"]] == 6
    assert chart_series(page, "sources-chart") == [list(by_source.values())]
    labels = page.evaluate(
        "() => echarts.getInstanceByDom(document.querySelector('#sources-chart .chart'))"
        ".getOption().yAxis[0].data"
    )
    assert f"Shop <website> & app ({made['id']})" in labels
    row = page.locator(f"tr[data-key={made['id']}]")
    assert row.locator("td.num").inner_text() == "6"
    # Revoking asks first: dismissed, nothing changes; accepted, the key stops sending.
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.locator("button.danger").click()
    assert row.locator("form.revoke").count() == 1
    assert next(k for k in _api_keys(demo_server) if k["id"] == made["id"])["revoked_at"] is None
    messages: list[str] = []

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.locator("button.danger").click()
    page.wait_for_selector("#revoked-notice")
    assert made["id"] in messages[0] and "refused" in messages[0]
    assert row.locator("form.revoke").count() == 0
    assert "is-revoked" in (row.get_attribute("class") or "")
    keys = _api_keys(demo_server)
    assert next(k for k in keys if k["id"] == made["id"])["revoked_at"] is not None
    assert _shown_keys(page) == _expected_keys(keys)
    refused = httpx.post(
        f"{demo_server.url}/v1/track",
        json={"userId": "sources-test", "event": "Key Tried Again"},
        auth=(secret, ""),
    )
    assert refused.status_code == 401
    screenshot(page, "sources")  # the key is revoked: no live secret in the picture
    context.close()
