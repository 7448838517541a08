"""The Audiences and Computed traits pages in a real browser (Debian's chromium, through
Playwright) against a real server on demo data: every number the pages show (sizes, the
size-over-time chart, members, a builder's preview count, persons with a value, the values)
is the one the API gives. Fixtures: tests/conftest.py."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pyarrow.csv as pcsv
import pytest
from e2e_browser import admin_key, chart_series, screenshot, sign_in

from conftest import Server

pytestmark = pytest.mark.e2e

CONFIGURED = {
    "key": "configured_twice",
    "name": "Configured twice, no order",
    "condition": {
        "and": [
            {"event": "Configuration Saved", "at_least": 1},
            {"not": {"event": "Order Completed"}},
        ]
    },
}
VIEWS = {"key": "views", "name": "Product views", "kind": "count", "event": "Product Viewed"}


def _api(server: Server, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=120
    )


def _defined(server: Server) -> None:
    with _api(server, admin_key(server)) as api:
        for path, body in (("/v1/traits/computed", VIEWS), ("/v1/audiences", CONFIGURED)):
            answer = api.post(path, json=body)
            assert answer.status_code in (201, 409), answer.text


def _open(browser: Any, server: Server, key: str, path: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, server, key)
    page.wait_for_selector("h1")
    page.goto(f"{server.url}{path}")
    page.wait_for_selector("h1")
    return context, page


def test_the_audiences_pages_show_the_apis_sizes_chart_and_members(
    demo_server: Server, browser: Any
) -> None:
    _defined(demo_server)
    with _api(demo_server, demo_server.read_key) as api:
        listed = {a["key"]: a["size"] for a in api.get("/v1/audiences").json()["audiences"]}
        sizes = api.get("/v1/audiences/configured_twice/sizes").json()["sizes"]
        members = api.get("/v1/audiences/configured_twice/members", params={"limit": 50}).json()
    assert listed["configured_twice"] > 0
    context, page = _open(browser, demo_server, demo_server.read_key, "/audiences")
    shown = {
        row.get_attribute("data-audience"): int(row.locator("td.size").get_attribute("data-size"))
        for row in page.locator("#audiences tr[data-audience]").all()
    }
    assert shown == listed
    page.click("a[href='/audiences/configured_twice']")
    page.wait_for_selector("#audience-size")
    assert int(page.get_attribute("#audience-size", "data-size")) == members["size"]
    series = chart_series(page, "size-chart")
    assert series[0][-1] == sizes[-1]["size"]
    assert sum(series[1]) == sum(point["entered"] for point in sizes)
    links = page.locator("#members tbody a").all_inner_texts()
    assert links == [m["person"] for m in members["members"]]
    screenshot(page, "audience")
    context.close()


def test_the_builder_previews_the_count_the_api_gives_and_saves(
    demo_server: Server, browser: Any
) -> None:
    admin = admin_key(demo_server)
    condition = {"event": "Product Viewed", "at_least": 2}
    with _api(demo_server, admin) as api:
        expected = api.post("/v1/audiences/preview", json={"condition": condition}).json()
    context, page = _open(browser, demo_server, admin, "/audiences")
    page.fill("#definition", "key: keen_viewers\nname: Keen viewers\ncondition:\n  ")
    page.focus("#definition")
    page.keyboard.press("End")
    page.click("button.snippet[data-snippet^='event:']")
    text = page.input_value("#definition")
    assert "  event: Configuration Saved\n  at_least: 2" in text
    page.fill(
        "#definition",
        "key: keen_viewers\nname: Keen viewers\ncondition:\n  event: Product Viewed\n"
        "  at_least: 2\n",
    )
    page.click("#preview")
    page.wait_for_selector("#preview-count")
    assert int(page.get_attribute("#preview-count", "data-size")) == expected["size"]
    page.fill("#definition", "key: broken\nname: b\ncondition:\n  event: X\n  at_least: -1\n")
    page.click("#preview")
    page.wait_for_selector("#preview-error")
    assert "condition.event.at_least" in page.inner_text("#preview-error")
    page.fill(
        "#definition",
        "key: keen_viewers\nname: Keen viewers\ncondition:\n  event: Product Viewed\n"
        "  at_least: 2\n",
    )
    page.click("#builder-form button[type=submit]")
    page.wait_for_selector("#audience-notice")
    assert int(page.get_attribute("#audience-size", "data-size")) == expected["size"]
    context.close()


def test_the_computed_traits_page_shows_the_apis_counts_and_values(
    demo_server: Server, browser: Any
) -> None:
    _defined(demo_server)
    with _api(demo_server, demo_server.read_key) as api:
        traits = {t["key"]: t["persons"] for t in api.get("/v1/traits/computed").json()["traits"]}
        values = api.get("/v1/traits/computed/views/values", params={"limit": 20}).json()
    context, page = _open(browser, demo_server, demo_server.read_key, "/traits")
    shown = {
        row.get_attribute("data-trait"): int(
            row.locator("td.persons").get_attribute("data-persons")
        )
        for row in page.locator("#traits tr[data-trait]").all()
    }
    assert shown == traits
    page.click("a[href='/traits?show=views']")
    page.wait_for_selector("#values")
    rows = page.locator("#values tbody tr").all()
    assert [r.locator("td").nth(0).inner_text() for r in rows] == [
        v["person"] for v in values["values"]
    ]
    assert [int(r.locator("td").nth(1).inner_text()) for r in rows] == [
        v["value"] for v in values["values"]
    ]
    person = values["values"][0]["person"]
    page.goto(f"{demo_server.url}/people/{person}")
    page.wait_for_selector("#computed-traits")
    cell = page.locator("#computed-traits tr[data-trait=views] td.value")
    assert int(cell.get_attribute("data-value")) == values["values"][0]["value"]
    screenshot(page, "traits")
    context.close()


def test_an_admin_links_a_file_export_and_the_server_writes_the_members(
    demo_server: Server, browser: Any, tmp_path: Any
) -> None:
    """Linked on the audience's page, run at once and again with Export now: the real
    server's delivery worker writes the file, whose rows are the members the API counts."""
    _defined(demo_server)
    out = tmp_path / "exports"
    out.mkdir()
    admin = admin_key(demo_server)
    with _api(demo_server, admin) as api:
        made = api.post(
            "/v1/destinations",
            json={"kind": "file", "name": "call-centre", "config": {"directory": str(out)}},
        ).json()["destination"]["id"]
    context, page = _open(browser, demo_server, admin, "/audiences/configured_twice")
    page.select_option("#destinations select[name=destination]", str(made))
    page.select_option("#destinations select[name=mode]", "file")
    page.fill("#destinations input[name=schedule]", "daily at 06:00")
    page.click("#destinations form.inline-form button[type=submit]")
    page.wait_for_selector("#audience-notice")
    row = page.locator(f"#destinations tr[data-destination='{made}']")
    assert "daily at 06:00" in row.inner_text()
    row.locator("form[action$='/export-now'] button").click()
    page.wait_for_selector("#audience-notice")
    context.close()
    with _api(demo_server, demo_server.read_key) as api:
        audience = api.get("/v1/audiences/configured_twice").json()
    (link,) = [d for d in audience["destinations"] if d["destination"] == made]
    assert link["mode"] == "file" and link["sent"] == 2 and link["schedule"] == "daily at 06:00"
    assert link["rows"] == audience["size"] > 0  # no consent purposes: every member
    path = out / "configured_twice.csv"
    with _api(demo_server, admin) as api:
        for _ in range(600):
            found = api.get("/v1/destinations/messages", params={"destination": made}).json()
            if len(found["messages"]) == 2 and all(
                m["state"] == "delivered" for m in found["messages"]
            ):
                break
            time.sleep(0.1)
    table = pcsv.read_csv(path)
    assert table.num_rows == link["rows"]
    assert table.column_names == [
        "user_id", "anonymous_id", "email", "member_since", "audience_key"
    ]  # fmt: skip
    assert set(table.column("audience_key").to_pylist()) == {"configured_twice"}
