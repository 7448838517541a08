"""The paths page in a real browser against a real server on demo data: the top paths before
an end event as the API lists them (table, CSV, and a Sankey diagram whose nodes carry their
position, so it has no cycles), the journey variants as the API counts them, and a question
asked wrongly refused on the page with the analysis's own words. Fixtures: tests/conftest.py."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from e2e_browser import chart_option, chart_series, screenshot, sign_in

from conftest import Server

pytestmark = pytest.mark.e2e


def _open(browser: Any, server: Server) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    sign_in(page, server, server.read_key)
    page.wait_for_selector("h1:text('Overview')")
    page.click("nav >> text=Paths")
    page.wait_for_selector("h1:text('Paths')")
    return context, page


def _csv(page: Any, link: str) -> list[list[str]]:
    with page.expect_download() as download:
        page.click(link)
    return list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))


def test_the_paths_before_an_end_event_are_the_api_paths(demo_server: Server, browser: Any) -> None:
    context, page = _open(browser, demo_server)
    # The example: paths after the first "Product Viewed"; the event field autocompletes.
    assert page.input_value("input[name=event]") == "Product Viewed"
    options = page.eval_on_selector_all("#event-names option", "os => os.map(o => o.value)")
    assert {"Product Viewed", "Order Completed", "Configurator Started"} <= set(options)
    # Our own question through the form: the 4 steps before the first order, steps under
    # 10 % of the buyers grouped.
    page.select_option("select[name=anchor]", "before")
    page.fill("input[name=event]", "Order Completed")
    page.fill("input[name=depth]", "4")
    page.fill("input[name=rare]", "10")
    page.click("form.paths-form button[type=submit]")
    page.wait_for_url("**/journeys/paths?anchor=before&event=Order+Completed&depth=4*")
    params = {"end": "Order Completed", "depth": 4, "min_share": 0.1}
    with demo_server.client() as api:
        answer = api.get("/v1/journeys/paths", params=params)
        assert answer.status_code == 200, answer.text
        report = answer.json()
        variants = api.get("/v1/journeys/variants").json()
    paths = report["paths"]
    assert report["people"] > 20 and len(paths) >= 3
    assert any("(other)" in p["steps"] for p in paths)
    # The table lists the API's paths, in its order, with people and share; so does its CSV.
    rows = [r.split("\t") for r in page.locator("#top-paths tbody tr").all_inner_texts()]
    assert [(r[0], r[2], r[3]) for r in rows] == [
        (str(k), f"{p['people']:,}", f"{100 * p['share']:.1f}") for k, p in enumerate(paths, 1)
    ]
    table = _csv(page, "#top-paths a.csv")
    assert table == [["path", "people", "share %"]] + [
        [" → ".join(p["steps"]) or "(no step)", str(p["people"]), str(round(100 * p["share"], 1))]
        for p in paths
    ]
    assert [r[1].replace("→", " → ") for r in rows] == [r[0] for r in table[1:]]

    # The Sankey: each step named with its position before the end ("−1 · …" right before
    # it), people summed over the listed paths; no node links back to an earlier position.
    expected: dict[tuple[str, str], int] = {}
    for p in paths:
        n = len(p["steps"])
        nodes = [f"−{n - k} · {s}" for k, s in enumerate(p["steps"])] + ["Order Completed"]
        for pair in zip(nodes, nodes[1:], strict=False):
            expected[pair] = expected.get(pair, 0) + p["people"]
    drawn = chart_option(page, "paths-sankey")["series"][0]
    links = {(link["source"], link["target"]): link["value"] for link in drawn["links"]}
    assert links == expected and len(links) >= 5
    names = {node["name"] for node in drawn["data"]}
    assert names == {n for pair in links for n in pair}
    assert all(a != b for a, b in links)
    into_end = sum(v for (_a, b), v in links.items() if b == "Order Completed")
    assert into_end == sum(p["people"] for p in paths if p["steps"])
    page.click("#paths-sankey summary")
    assert _csv(page, "#paths-sankey a.csv")[1:] == [[a, b, str(v)] for (a, b), v in links.items()]

    # Journey variants: the API's stage sequences, drawn and listed.
    assert chart_series(page, "variants") == [[v["people"] for v in variants["variants"]]]
    assert chart_option(page, "variants")["yAxis"][0]["data"] == [
        " → ".join(v["steps"]) for v in variants["variants"]
    ]
    assert _csv(page, "#variants a.csv")[1:] == [
        [" → ".join(v["steps"]), str(v["people"]), str(round(100 * v["share"], 1))]
        for v in variants["variants"]
    ]
    screenshot(page, "paths")
    context.close()


def test_the_paths_after_a_start_event_begin_at_it(demo_server: Server, browser: Any) -> None:
    context, page = _open(browser, demo_server)
    with demo_server.client() as api:
        report = api.get("/v1/journeys/paths", params={"start": "Product Viewed"}).json()
    drawn = chart_option(page, "paths-sankey")["series"][0]
    links = {(link["source"], link["target"]): link["value"] for link in drawn["links"]}
    from_start = {b: v for (a, b), v in links.items() if a == "Product Viewed"}
    firsts: dict[str, int] = {}
    for p in report["paths"]:
        if p["steps"]:
            firsts[f"1 · {p['steps'][0]}"] = firsts.get(f"1 · {p['steps'][0]}", 0) + p["people"]
    assert from_start == firsts
    assert page.locator("#top-paths tbody tr").count() == len(report["paths"])
    context.close()


def test_a_paths_question_asked_wrongly_shows_the_reason(demo_server: Server, browser: Any) -> None:
    with demo_server.client() as api:
        refused = api.get("/v1/journeys/paths")  # neither a start nor an end
    assert refused.status_code == 422
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, demo_server, demo_server.read_key)
    page.wait_for_selector("h1:text('Overview')")
    response = page.goto(f"{demo_server.url}/journeys/paths?anchor=after&event=")
    assert response.status == 422
    assert page.inner_text("p.error") == refused.json()["detail"]
    response = page.goto(f"{demo_server.url}/journeys/paths?event=Product+Viewed&depth=many")
    assert response.status == 422
    assert page.inner_text("p.error") == "depth: give a whole number, not 'many'"
    response = page.goto(f"{demo_server.url}/journeys/paths?event=Product+Viewed&depth=0")
    assert page.inner_text("p.error") == "depth: Input should be greater than or equal to 1"
    assert "Traceback" not in page.content()
    context.close()
