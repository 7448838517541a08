"""The Retention, Channel mix and Attribution pages in a real browser (Debian's chromium,
driven by Playwright) against a real server on demo data: each chart draws the numbers the
API gives for the same question, the tables and CSV downloads hold the same, and a question
asked wrongly shows the service's reason. Fixtures: tests/conftest.py."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from e2e_browser import chart_option, chart_series, screenshot, sign_in

from conftest import Server

pytestmark = pytest.mark.e2e


@pytest.fixture
def page(demo_server: Server, browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    sign_in(opened, demo_server, demo_server.read_key)
    opened.wait_for_selector("h1:text('Overview')")
    yield opened
    context.close()


def pct(share: float | None) -> float | None:
    return None if share is None else round(100 * share, 2)


def table_cells(page: Any, figure: str) -> list[list[str]]:
    """The numbers table under ``#figure``, header included, cell by cell as shown."""
    return page.eval_on_selector_all(
        f"#{figure} table.numbers tr",
        "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))",
    )


def downloaded(page: Any, link: str) -> list[list[str]]:
    with page.expect_download() as download:
        page.click(link)
    return list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))


def shown(cell: str) -> str:
    """A CSV cell as the page's number filter writes it (thousands, one decimal)."""
    if re.fullmatch(r"-?\d+", cell):
        return f"{int(cell):,}"
    if re.fullmatch(r"-?\d+\.\d+", cell):
        return f"{float(cell):,.1f}"
    return cell


def assert_csv_is_the_table(page: Any, figure: str) -> list[list[str]]:
    rows = downloaded(page, f"#{figure} a.csv")
    assert [[shown(cell) for cell in row] for row in rows] == table_cells(page, figure)
    return rows


def heat_cells(page: Any, figure: str) -> tuple[list[str], list[str], dict[tuple[int, int], float]]:
    """The heat map's columns, rows and drawn cells ({(column, row): value})."""
    option = chart_option(page, figure)
    cells = {(c, r): v for c, r, v in option["series"][0]["data"]}
    return option["xAxis"][0]["data"], option["yAxis"][0]["data"], cells


def test_retention_draws_the_api_cohorts_and_leaves_unknown_periods_empty(
    demo_server: Server, page: Any
) -> None:
    page.click("nav >> text=Retention")
    page.wait_for_selector("h1:text('Retention')")
    with demo_server.client() as api:
        weekly = api.post("/v1/journeys/retention", json={}).json()
        monthly = api.post(
            "/v1/journeys/retention",
            json={"period": "month", "periods": 4, "return_event": "Order Completed"},
        ).json()
        refused = api.post("/v1/journeys/retention", json={"period": "day"})
    cohorts = weekly["cohorts"]
    columns, rows, cells = heat_cells(page, "cohorts")
    assert columns == [f"week {n}" for n in range(weekly["periods"] + 1)]
    assert rows == [f"{c['cohort']} · {c['size']:,}" for c in cohorts]
    assert cells == {
        (o, r): pct(s)
        for r, c in enumerate(cohorts)
        for o, s in enumerate(c["share"])
        if s is not None
    }
    # The last cohorts have periods that begin after the latest event: null in the API,
    # no cell in the heat map and an empty one in the table (not 0).
    unknown = [(o, r) for r, c in enumerate(cohorts) for o, s in enumerate(c["share"]) if s is None]
    assert unknown and not set(unknown) & set(cells)
    table = table_cells(page, "cohorts")
    last = cohorts[-1]
    assert table[-1][:4] == [last["cohort"], f"{last['size']:,}", str(last["returned"][0]),
                             f"{pct(last['share'][0]):.1f}"]  # fmt: skip
    rows_csv = assert_csv_is_the_table(page, "cohorts")
    for o, r in unknown:
        assert (
            table[1 + r][2 + 2 * o : 4 + 2 * o]
            == rows_csv[1 + r][2 + 2 * o : 4 + 2 * o]
            == [
                "",
                "",
            ]
        )
    assert "0" in [cell for row in table[1:] for cell in row]  # a known 0 stays 0
    screenshot(page, "retention")
    # Another question through the form: months, four periods, returns by an order.
    page.select_option("select[name=period]", "month")
    page.fill("input[name=periods]", "4")
    page.fill("input[name=return_event]", "Order Completed")
    page.click("form.filters button")
    page.wait_for_url("**/journeys/retention?period=month&periods=4*")
    _, rows, cells = heat_cells(page, "cohorts")
    assert rows == [f"{c['cohort']} · {c['size']:,}" for c in monthly["cohorts"]]
    assert cells == {
        (o, r): pct(s)
        for r, c in enumerate(monthly["cohorts"])
        for o, s in enumerate(c["share"])
        if s is not None
    }
    assert any(s is None for c in monthly["cohorts"] for s in c["share"])
    # The CSV link keeps the question: monthly cohorts, not the default weekly ones.
    assert assert_csv_is_the_table(page, "cohorts")[0][2] == "month 0 returned"
    # A period the service does not know: its reason, on the page, with 422.
    assert refused.status_code == 422
    answer = page.goto(f"{demo_server.url}/journeys/retention?period=day")
    assert answer.status == 422
    assert page.inner_text("p.error") == refused.json()["detail"]
    assert "period: Input should be 'week' or 'month'" in page.inner_text("p.error")


def test_channel_mix_draws_both_matrices_and_takes_bands_and_a_day(
    demo_server: Server, page: Any
) -> None:
    page.click("nav >> text=Channel mix")
    page.wait_for_selector("h1:text('Channel mix')")
    bands = ["18-29", "30-49", "50+"]
    with demo_server.client() as api:
        mix = api.get("/v1/journeys/channel-mix").json()
        custom = api.get(
            "/v1/journeys/channel-mix", params={"bands": bands, "as_of": "2026-06-30"}
        ).json()
        refused = api.get("/v1/journeys/channel-mix", params={"bands": ["30-20"]})

    def expected(found: dict[str, Any], measure: str) -> dict[tuple[int, int], float]:
        return {(c, r): pct(v) for r, row in enumerate(found[measure]) for c, v in enumerate(row)}

    columns, rows, cells = heat_cells(page, "mix")
    assert columns == mix["channels"]
    assert rows == [f"{band} · {mix['people'][band]:,}" for band in mix["bands"]]
    assert cells == expected(mix, "people_share")
    people = page.eval_on_selector_all(
        "#people-per-band tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert people == [[b, f"{n:,}", f"{mix['contacts'][b]:,}"] for b, n in mix["people"].items()]
    assert_csv_is_the_table(page, "mix")
    # The other matrix is offered too, for the same question.
    other = downloaded(page, "#other-csv")
    assert other[0] == ["age band", "people", "contacts", *mix["channels"]]
    assert [[float(v) for v in row[3:]] for row in other[1:]] == [
        [pct(v) for v in row] for row in mix["contact_share"]
    ]
    screenshot(page, "channel-mix")
    # Switching the measure draws the share of contacts (a row adds up to 100 %).
    page.check("input[value=contact_share]")
    page.click("form.filters button")
    page.wait_for_url("**measure=contact_share*")
    assert heat_cells(page, "mix")[2] == expected(mix, "contact_share")
    # Bands of one's own and ages on another day.
    page.fill("input[name=bands]", ", ".join(bands))
    page.fill("input[name=as_of]", "2026-06-30")
    page.check("input[value=people_share]")
    page.click("form.filters button")
    page.wait_for_url("**as_of=2026-06-30*")
    _, rows, cells = heat_cells(page, "mix")
    assert rows == [f"{band} · {custom['people'][band]:,}" for band in [*bands, "unknown"]]
    assert cells == expected(custom, "people_share")
    rows_csv = assert_csv_is_the_table(page, "mix")
    assert [row[0] for row in rows_csv[1:]] == [*bands, "unknown"]
    # A band that ends before it starts: the service's reason, with 422.
    answer = page.goto(f"{demo_server.url}/journeys/channel-mix?bands=18-24,30-20")
    assert answer.status == 422
    assert refused.status_code == 422
    assert page.inner_text("p.error") == "bands[1]: '30-20' ends before it starts"
    assert refused.json()["detail"] == "bands[0]: '30-20' ends before it starts"


def test_attribution_draws_the_chosen_model_and_tables_every_model(
    demo_server: Server, page: Any
) -> None:
    page.click("nav >> text=Attribution")
    page.wait_for_selector("h1:text('Attribution')")
    with demo_server.client() as api:
        found = api.get("/v1/journeys/attribution").json()
        campaigns = api.get(
            "/v1/journeys/attribution", params={"by": "campaign", "lookback_days": 60}
        ).json()
    credits = found["credits"]

    def bars(figure: str) -> dict[str, float]:
        labels = chart_option(page, figure)["yAxis"][0]["data"]
        [values] = chart_series(page, figure)
        return dict(zip(labels, values, strict=True))

    def credited(credits: list[dict[str, Any]], measure: str, model: str) -> dict[str, float]:
        return {c["key"]: round(c[measure][model], 2) for c in credits}

    # Markov by default; the summary is the API's.
    assert bars("conversions-chart") == credited(credits, "conversions", "markov")
    assert bars("value-chart") == credited(credits, "value", "markov")
    summary = {key: page.inner_text(f"#{key}") for key in
               ("conversions", "converting-paths", "unattributed", "null-paths")}  # fmt: skip
    assert summary == {
        "conversions": f"{found['conversions']:,}",
        "converting-paths": f"{found['converting_paths']:,}",
        "unattributed": f"{found['unattributed_conversions']:,}",
        "null-paths": f"{found['null_paths']:,}",
    }
    effects = page.eval_on_selector_all(
        "#removal-effects li", "items => items.map(li => [...li.children].map(s => s.textContent))"
    )
    assert effects == [
        [c["key"], f"{100 * c['removal_effect']:.1f} %"]
        for c in sorted(credits, key=lambda c: (-c["removal_effect"], c["key"]))
    ]
    # Every model side by side in the table, and the CSV is that table.
    rows = assert_csv_is_the_table(page, "conversions-chart")
    assert rows[0] == ["channel", "touchpoints", "first_touch", "last_touch", "linear",
                       "time_decay", "position_based", "markov", "removal effect %"]  # fmt: skip
    assert {row[0]: float(row[4]) for row in rows[1:]} == credited(credits, "conversions", "linear")
    assert_csv_is_the_table(page, "value-chart")
    screenshot(page, "attribution")
    # Another model: the bars become that model's numbers.
    for model in ("first_touch", "time_decay"):
        page.select_option("select[name=model]", model)
        page.click("form.filters button")
        page.wait_for_url(f"**model={model}*")
        drawn = bars("conversions-chart")
        assert drawn == credited(credits, "conversions", model)
        assert drawn != credited(credits, "conversions", "markov")
        assert list(drawn.values()) == sorted(drawn.values(), reverse=True)
        assert bars("value-chart") == credited(credits, "value", model)
    # By campaign, with a longer lookback.
    page.select_option("select[name=by]", "campaign")
    page.fill("input[name=lookback_days]", "60")
    page.click("form.filters button")
    page.wait_for_url("**by=campaign*")
    assert bars("conversions-chart") == credited(campaigns["credits"], "conversions", "time_decay")
    assert page.inner_text("#unattributed") == f"{campaigns['unattributed_conversions']:,}"
    assert downloaded(page, "#value-chart a.csv")[0][0] == "campaign"
    # Questions that cannot be answered: the service's reason on the page, with 422.
    for query, reason in (
        ("lookback_days=0", "lookback_days: Input should be greater than 0"),
        ("by=medium", "by: Input should be 'channel' or 'campaign'"),
        ("half_life_days=soon", "half_life_days: 'soon' is not a number of days"),
        ("model=best", "model: 'best' is not one of first_touch, last_touch, linear, "
                       "time_decay, position_based, markov"),
    ):  # fmt: skip
        answer = page.goto(f"{demo_server.url}/journeys/attribution?{query}")
        assert answer.status == 422
        assert page.inner_text("p.error") == reason
