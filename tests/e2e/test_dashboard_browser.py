"""The dashboard in a real browser (Debian's chromium, driven by Playwright) against a real
server on demo data: no page without a login, an http-only session cookie, and the overview
and journey map showing the numbers the API gives. Fixtures: tests/conftest.py."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_browser import admin_key, chart_series, screenshot, sign_in

from conftest import Server

pytestmark = pytest.mark.e2e


def test_no_page_without_a_login_and_the_session_cookie_is_http_only(
    demo_server: Server, browser: Any
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{demo_server.url}/")
    assert page.url.endswith("/login?next=/")
    screenshot(page, "login")
    # A stranger's key, then a write key: refused, with the reason.
    sign_in(page, demo_server, "tp_read_00000000000000000000000000000000")
    assert "not valid" in page.inner_text("p.error")
    sign_in(page, demo_server, demo_server.write_key)
    assert "only sends events" in page.inner_text("p.error")
    # No session: only the sign-in form's CSRF cookie (http-only, for /login alone).
    [form_cookie] = context.cookies()
    assert (form_cookie["name"], form_cookie["httpOnly"], form_cookie["path"]) == (
        "tp_login",
        True,
        "/login",
    )
    # A read key opens the overview; the cookie cannot be read by scripts and stays on site.
    sign_in(page, demo_server, demo_server.read_key)
    page.wait_for_selector("h1:text('Overview')")
    [cookie] = context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (
        "tp_session",
        True,
        "Strict",
    )
    assert demo_server.read_key not in cookie["value"]
    assert page.evaluate("document.cookie") == ""
    # Pages, fragments and CSV need the cookie: without it, the login.
    bare = httpx.get(f"{demo_server.url}/?csv=stages", follow_redirects=False)
    assert bare.status_code == 303 and bare.headers["location"].startswith("/login")
    # Signing out ends the session for good: the old cookie opens nothing.
    page.click("text=Sign out")
    page.wait_for_url("**/login")
    again = httpx.get(
        f"{demo_server.url}/", cookies={"tp_session": cookie["value"]}, follow_redirects=False
    )
    assert again.status_code == 303
    context.close()


def test_a_revoked_key_ends_its_sessions(demo_server: Server, browser: Any) -> None:
    admin = {"Authorization": f"Bearer {admin_key(demo_server)}"}
    with httpx.Client(base_url=demo_server.url, headers=admin) as api:
        made = api.post("/v1/keys", json={"role": "read", "name": "browser test"}).json()
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, demo_server, made["secret"])
        page.wait_for_selector("h1:text('Overview')")
        assert api.delete(f"/v1/keys/{made['id']}").status_code == 200
    page.goto(f"{demo_server.url}/")
    assert "/login" in page.url
    context.close()


def test_the_overview_shows_what_the_api_says(demo_server: Server, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    sign_in(page, demo_server, demo_server.read_key)
    page.wait_for_selector("h1:text('Overview')")
    with demo_server.client() as api:
        summary = api.get("/v1/identity/summary").json()
        stages = api.get("/v1/journeys/stages").json()["stages"]
        stats = api.get("/v1/events/stats").json()
    assert summary["persons"] > 100 and 0 < summary["identified"] < summary["persons"]
    shown = {name: page.inner_text(f"#{name}") for name in ("persons", "identified", "anonymous")}
    assert shown == {name: f"{summary[name]:,}" for name in shown}
    assert page.inner_text("#channels") == str(len(stats["by_channel"]))
    # The stage chart draws the API's figures: now in each stage, and ever entered.
    assert chart_series(page, "stages") == [
        [s["current"] for s in stages],
        [s["reached"] for s in stages],
    ]
    assert chart_series(page, "channels-chart") == [list(stats["by_channel"].values())]
    # The numbers under the chart, and its CSV download, are the same.
    page.click("#stages summary")
    cells = page.locator("#stages table.numbers tbody tr").all_inner_texts()
    assert cells[0].split("\t") == [stages[0]["stage"], f"{stages[0]['current']:,}",
                                    f"{stages[0]['reached']:,}"]  # fmt: skip
    with page.expect_download() as download:
        page.click("#stages a.csv")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows == [["stage", "now in it", "ever entered"]] + [
        [s["stage"], str(s["current"]), str(s["reached"])] for s in stages
    ]
    screenshot(page, "overview")
    # The live counter follows events as they arrive.
    before = int(page.get_attribute("#live-total", "data-total"))
    sent = httpx.post(
        f"{demo_server.url}/v1/track",
        json={"anonymousId": "browser-test", "event": "Brochure Downloaded"},
        auth=(demo_server.write_key, ""),
    )
    assert sent.is_success
    page.wait_for_function(
        "n => Number(document.querySelector('#live-total').dataset.total) > n", arg=before
    )
    assert int(page.get_attribute("#live-total", "data-total")) == before + 1
    context.close()


def test_the_journey_map_draws_the_api_map_and_takes_a_date_range(
    demo_server: Server, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    sign_in(page, demo_server, demo_server.read_key)
    page.wait_for_selector("h1:text('Overview')")
    page.click("nav >> text=Journey map")
    page.wait_for_selector("h1:text('Journey map')")
    with demo_server.client() as api:
        whole = api.get("/v1/journeys/map").json()
        ranged = api.get("/v1/journeys/map", params={"since": "2026-07-01"}).json()
    steps = whole["stages"]
    assert chart_series(page, "stages") == [
        [s["reached"] for s in steps],
        [s["went_on"] for s in steps],
    ]
    assert chart_series(page, "pain-points") == [[p["relative_risk"] for p in whole["pain_points"]]]
    order = {s["stage"]: i for i, s in enumerate(steps)}

    def links(figure: str) -> dict[tuple[str, str], int]:
        page.wait_for_selector(f"#{figure} .chart[data-drawn=true]")
        found = page.evaluate(
            "id => echarts.getInstanceByDom(document.querySelector(`#${id} .chart`))"
            ".getOption().series[0].links",
            figure,
        )
        return {(link["source"], link["target"]): link["value"] for link in found}

    # The stage Sankey draws the moves forward (a Sankey has no cycles); the table has all.
    assert links("stage-sankey") == {
        (t["source"], t["target"]): t["persons"]
        for t in whole["stage_transitions"]
        if order[t["target"]] > order[t["source"]]
    }
    assert len(links("stage-sankey")) >= 5
    assert links("channel-sankey") == {
        (f"{t['source']} →", f"→ {t['target']}"): t["count"] for t in whole["channel_transitions"]
    }
    page.click("#stage-sankey summary")
    rows = page.locator("#stage-sankey table.numbers tbody tr").count()
    assert rows == len(whole["stage_transitions"])
    screenshot(page, "journey-map")
    # A date range: the page shows the map of what happened from 1 July.
    page.fill("input[name=since]", "2026-07-01")
    page.click("form.filters button")
    page.wait_for_url("**/journeys/map?since=2026-07-01*")
    reached = [s["reached"] for s in ranged["stages"]]
    assert chart_series(page, "stages")[0] == reached
    assert reached != [s["reached"] for s in steps]
    # Of the persons who used the store, in the same range: the API's map for them.
    page.select_option("select[name=channel]", "store")
    page.click("form.filters button")
    page.wait_for_url("**channel=store*")
    with demo_server.client() as api:
        store = api.get("/v1/journeys/map", params={"since": "2026-07-01", "channel": "store"})
    expected = [s["reached"] for s in store.json()["stages"]]
    assert chart_series(page, "stages")[0] == expected
    assert 0 < expected[0] < reached[0]
    # The CSV is of the question on the page, not of whole journeys.
    with page.expect_download() as download:
        page.click("#stages a.csv")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert [int(row[1]) for row in rows[1:]] == expected
    # A segment: the persons whose latest city is Hamburg (typed as a trait and a value).
    page.goto(f"{demo_server.url}/journeys/map")
    page.fill("input[name=segment]", "city=Hamburg")
    page.click("form.filters button")
    page.wait_for_url("**segment=city%3DHamburg*")
    with demo_server.client() as api:
        found = api.get("/v1/journeys/map", params={"segment": "city=Hamburg"}).json()
    hamburg = [s["reached"] for s in found["stages"]]
    assert chart_series(page, "stages")[0] == hamburg
    assert 0 < hamburg[0] < steps[0]["reached"]
    # A range the wrong way round: the reason, on the page.
    page.goto(f"{demo_server.url}/journeys/map?since=2026-07-01&until=2026-06-01")
    assert page.inner_text("p.error") == "until: give a moment after since"
    context.close()


@pytest.mark.parametrize(("width", "name"), [(1280, "laptop"), (800, "tablet")])
def test_every_page_fits_a_laptop_and_a_tablet(
    demo_server: Server, browser: Any, width: int, name: str
) -> None:
    """Each page in the navigation opens and needs no sideways scrolling of the page (wide
    tables scroll inside their box)."""
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    sign_in(page, demo_server, demo_server.read_key)
    page.wait_for_selector("h1:text('Overview')")
    links = page.eval_on_selector_all("nav a", "links => links.map(a => a.getAttribute('href'))")
    assert len(links) >= 9, links  # overview, journey map, analyses, people, sources
    for link in links:
        response = page.goto(f"{demo_server.url}{link}")
        assert response is not None and response.status == 200, link
        page.wait_for_selector("h1")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{link} is {overflow}px too wide for a {name} ({width}px)"
    context.close()
