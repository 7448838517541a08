"""The funnels page in a real browser against a real server on demo data: the example funnel
pre-filled, autocomplete from the event names in the data, the bars and tables equal to the
API's funnel (per person and per device) for the same question, a drop-off's people listed
as the API lists them, the CSV equal to the table, and a question asked wrongly refused on
the page with the analysis's own words. Fixtures: tests/conftest.py."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from e2e_browser import chart_series, screenshot, sign_in

from conftest import Server
from touchpoints.web.pages.funnels import duration

pytestmark = pytest.mark.e2e

EXAMPLE = ["Product Viewed", "Configuration Saved", "Order Completed"]


def _percent(share: float | None) -> str:
    return "" if share is None else str(round(100 * share, 1))


def _open(browser: Any, server: Server) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    sign_in(page, server, server.read_key)
    page.wait_for_selector("h1:text('Overview')")
    page.click("nav >> text=Funnels")
    page.wait_for_selector("h1:text('Funnels')")
    return context, page


def _csv(page: Any, link: str) -> list[list[str]]:
    with page.expect_download() as download:
        page.click(link)
    return list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))


def test_the_step_autocomplete_offers_the_event_names_of_the_data(
    demo_server: Server, browser: Any
) -> None:
    context, page = _open(browser, demo_server)
    assert [i.input_value() for i in page.locator("input[name=step]").all()] == EXAMPLE
    options = page.eval_on_selector_all("#event-names option", "os => os.map(o => o.value)")
    assert set(EXAMPLE) <= set(options)
    for step in page.locator("input[name=step]").all():
        assert step.get_attribute("list") == "event-names"
    with demo_server.client() as api:
        counts = [
            api.get("/v1/events/count", params={"event": name}).json()["count"] for name in options
        ]
        tracked = api.get("/v1/events/stats").json()["by_type"]["track"]
    # Every name is in the data, most frequent first, and together they are every named event.
    assert all(n > 0 for n in counts) and counts == sorted(counts, reverse=True)
    assert sum(counts) == tracked
    # "Add step" gives another input with the same autocomplete.
    page.click("#add-step")
    added = page.locator("input[name=step]").nth(3)
    assert added.input_value() == "" and added.get_attribute("list") == "event-names"
    context.close()


def test_the_funnel_draws_the_api_funnel_per_person_and_per_device(
    demo_server: Server, browser: Any
) -> None:
    context, page = _open(browser, demo_server)
    # A question of our own through the form: a 30-day window, broken down by channel.
    page.fill("input[name=window]", "30d")
    page.fill("input[name=breakdown]", "channel")
    page.click("form.funnel-form button[type=submit]")
    page.wait_for_url("**/journeys/funnels?*window=30d*breakdown=channel*")
    spec = {
        "steps": [{"event": e} for e in EXAMPLE],
        "window": 30 * 86400,
        "breakdown": "channel",
        "compare_units": True,
    }
    with demo_server.client() as api:
        answer = api.post("/v1/journeys/funnels", json=spec)
        assert answer.status_code == 200, answer.text
        both = answer.json()
    person, device = both["person"], both["device"]
    assert person["steps"][0]["units"] > 100
    assert person["steps"][0]["units"] != device["steps"][0]["units"]  # stitching shows
    assert chart_series(page, "funnel") == [
        [s["units"] for s in person["steps"]],
        [s["units"] for s in device["steps"]],
    ]
    assert chart_series(page, "time-to-convert") == [
        [b["units"] for b in person["time_to_convert"]["histogram"]],
        [b["units"] for b in device["time_to_convert"]["histogram"]],
    ]
    groups = person["groups"]
    assert len(groups) >= 2
    assert chart_series(page, "breakdown") == [[s["units"] for s in g["steps"]] for g in groups]
    # Conversion per step, from step 1 and from the previous one, in the table and its CSV.
    rows = page.locator("#funnel table.numbers tbody tr").all_inner_texts()
    assert [r.split("\t")[:6] for r in rows] == [
        [str(s["step"]), s["event"], f"{s['units']:,}", f"{100 * s['conversion']:.1f}",
         f"{100 * s['from_previous']:.1f}", f"{s['dropped']:,}"]
        for s in person["steps"]
    ]  # fmt: skip
    table = _csv(page, "#funnel a.csv")
    # The download is the table on the page (which writes 1,234 for 1234).
    assert [[c.replace(",", "") for c in r.split("\t")] for r in rows] == table[1:]
    assert table[0][:6] == ["step", "event", "persons", "% of step 1", "% of previous",
                            "dropped before"]  # fmt: skip
    assert [r[:6] + r[7:] for r in table[1:]] == [
        [str(s["step"]), s["event"], str(s["units"]), _percent(s["conversion"]),
         _percent(s["from_previous"]), str(s["dropped"]), str(d["units"]),
         _percent(d["conversion"])]
        for s, d in zip(person["steps"], device["steps"], strict=True)
    ]  # fmt: skip
    assert _csv(page, "#breakdown a.csv")[1:] == [
        [g["value"] or "(none)", str(s["step"]), s["event"], str(s["units"]),
         _percent(s["conversion"]), _percent(s["from_previous"]), str(s["dropped"]),
         *_csv_durations(s["median_seconds"], g["time_to_convert"]["median_seconds"])]
        for g in groups
        for s in g["steps"]
    ]  # fmt: skip
    assert page.inner_text("#converted") == f"{person['steps'][-1]['units']:,}"

    # A drop-off: reached "Product Viewed", not "Configuration Saved". The people listed are
    # the API's, a page of 25 at a time.
    page.click("#funnel a.drop-off[data-step='1']")
    page.wait_for_selector("#drop-offs")
    del spec["compare_units"]
    with demo_server.client() as api:
        first = api.post("/v1/journeys/funnels/drop-offs?step=1&limit=25", json=spec).json()
        second = api.post(
            "/v1/journeys/funnels/drop-offs?step=1&limit=25&offset=25", json=spec
        ).json()
    assert first["total"] == person["steps"][1]["dropped"] > 25
    assert page.inner_text("#drop-off-total") == f"{first['total']:,}"

    def listed() -> list[str]:
        return page.locator("#drop-offs tbody a").all_inner_texts()

    assert listed() == [f"person:{u['person']}" for u in first["units"]]
    link = page.locator("#drop-offs tbody a").first
    assert link.get_attribute("href") == f"/people/person:{first['units'][0]['person']}"
    assert _csv(page, "#drop-offs a.csv") == [
        ["person", "entered at", "reached step 1 at"],
        *[[f"person:{u['person']}", u["entered_at"], u["reached_at"]] for u in first["units"]],
    ]
    screenshot(page, "funnels")
    page.click("#drop-offs a[rel=next]")
    page.wait_for_url("**offset=25*")
    assert listed() == [f"person:{u['person']}" for u in second["units"]]
    context.close()


def _csv_durations(*seconds: float | None) -> list[str]:
    return [duration(s) for s in seconds]


@pytest.mark.parametrize(
    ("query", "spec"),
    [
        ("step=Product+Viewed", {"steps": [{"event": "Product Viewed"}]}),
        (
            "step=Product+Viewed&step=Order+Completed&breakdown=planet",
            {
                "steps": [{"event": "Product Viewed"}, {"event": "Order Completed"}],
                "breakdown": "planet",
            },
        ),  # fmt: skip
        (
            "step=Product+Viewed&step=Order+Completed&window=" + quote("two weeks"),
            {
                "steps": [{"event": "Product Viewed"}, {"event": "Order Completed"}],
                "window": "two weeks",
            },
        ),  # fmt: skip
    ],
)
def test_a_funnel_asked_wrongly_shows_the_reason_on_the_page(
    demo_server: Server, browser: Any, query: str, spec: dict[str, Any]
) -> None:
    with demo_server.client() as api:
        refused = api.post("/v1/journeys/funnels", json=spec)
    assert refused.status_code == 422
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, demo_server, demo_server.read_key)
    page.wait_for_selector("h1:text('Overview')")
    response = page.goto(f"{demo_server.url}/journeys/funnels?{query}")
    assert response.status == 422
    assert page.inner_text("p.error") == refused.json()["detail"]
    assert "Traceback" not in page.content()
    # The form keeps the question, to be put right.
    assert page.locator("input[name=step]").first.input_value() == "Product Viewed"
    context.close()
