"""The dashboard in German and in English, in a real browser (Debian's chromium, through
Playwright) against a real server on demo data: a browser that asks for German gets German
texts and German numbers and dates for the same data an English browser sees in English; the
switch on every page changes the language and keeps it; no English text of the catalogs is
left on a German page. Fixtures: tests/conftest.py; helpers: tests/e2e/e2e_browser.py."""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.pofile import read_po
from e2e_browser import admin_key, chart_option, chart_series, page_texts, screenshot, sign_in

from conftest import Server
from touchpoints.web.i18n import catalog_path

pytestmark = pytest.mark.e2e

STAGES_DE = ["Aufmerksamkeit", "Erwägung", "Entscheidung", "Kauf", "Bindung", "Weiterempfehlung"]


def _open(browser: Any, server: Server, locale: str, key: str | None = None) -> tuple[Any, Any]:
    """A browser whose language is ``locale`` (its Accept-Language), signed in."""
    context = browser.new_context(
        locale=locale, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    sign_in(page, server, key or server.read_key)
    page.wait_for_selector("#live-total")
    return context, page


def de_number(n: float, digits: int | None = None) -> str:
    """A number as German writes it: 1.234 and 12,5."""
    text = f"{n:,}" if digits is None else f"{n:,.{digits}f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def de_day(iso: str) -> str:
    return f"{iso[8:10]}.{iso[5:7]}.{iso[:4]}"


def de_moment(iso: str) -> str:
    return f"{de_day(iso)}, {iso[11:16]}"


def _csv(page: Any, link: str) -> list[list[str]]:
    with page.expect_download() as download:
        page.click(link)
    return list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))


def test_the_overview_in_german_and_in_english_shows_the_same_numbers_written_per_language(
    demo_server: Server, browser: Any
) -> None:
    with demo_server.client() as api:
        stages = api.get("/v1/journeys/stages").json()["stages"]
        summary = api.get("/v1/identity/summary").json()
    assert [s["stage"] for s in stages] == [
        "awareness", "consideration", "decision", "purchase", "retention", "advocacy"
    ]  # fmt: skip
    german, de = _open(browser, demo_server, "de-DE")
    english, en = _open(browser, demo_server, "en-US")
    # The login and the overview speak the browser's language.
    assert de.get_attribute("html", "lang") == "de" and en.get_attribute("html", "lang") == "en"
    assert de.inner_text("h1") == "Übersicht" and en.inner_text("h1") == "Overview"
    assert de.locator("nav a").all_inner_texts()[:3] == ["Übersicht", "Journey Map", "Funnels"]
    assert "Abmelden" in de.inner_text("form.logout")
    # The same numbers, written per language: 1.234 in German, 1,234 in English.
    total = int(de.get_attribute("#live-total", "data-total"))
    assert total >= 1000 and int(en.get_attribute("#live-total", "data-total")) == total
    assert de.inner_text("#live-total") == de_number(total)
    assert en.inner_text("#live-total") == f"{total:,}"
    for card in ("persons", "identified", "anonymous"):
        assert de.inner_text(f"#{card}") == de_number(summary[card])
        assert en.inner_text(f"#{card}") == f"{summary[card]:,}"
    # The stage chart: the same figures; the default stages by their German labels.
    expected = [[s["current"] for s in stages], [s["reached"] for s in stages]]
    assert chart_series(de, "stages") == chart_series(en, "stages") == expected
    assert chart_option(de, "stages")["xAxis"][0]["data"] == STAGES_DE
    assert chart_option(en, "stages")["xAxis"][0]["data"] == [s["stage"] for s in stages]
    assert [s["name"] for s in chart_option(de, "stages")["series"]] == [
        "aktuell darin",
        "je erreicht",
    ]
    # The numbers under the chart in German; the CSV as a program reads it, in either
    # language (only its headings are translated).
    de.click("#stages summary")
    assert de.inner_text("#stages summary") == "Zahlen"
    head = de.locator("#stages table.numbers th").all_inner_texts()
    assert head == ["Phase", "aktuell darin", "je erreicht"]
    first = de.locator("#stages table.numbers tbody tr").first.inner_text().split("\t")
    assert first == ["Aufmerksamkeit", de_number(stages[0]["current"]),
                     de_number(stages[0]["reached"])]  # fmt: skip
    rows_de, rows_en = _csv(de, "#stages a.csv"), _csv(en, "#stages a.csv")
    assert rows_de[0] == ["Phase", "aktuell darin", "je erreicht"]
    assert (
        rows_de[1:]
        == rows_en[1:]
        == [[s["stage"], str(s["current"]), str(s["reached"])] for s in stages]
    )
    screenshot(de, "overview-de")
    german.close()
    english.close()


def test_an_analysis_page_in_german_labels_stages_and_writes_german_decimals_and_days(
    demo_server: Server, browser: Any
) -> None:
    with demo_server.client() as api:
        whole = api.get("/v1/journeys/map").json()
        weekly = api.post("/v1/journeys/retention", json={}).json()
    context, page = _open(browser, demo_server, "de-DE")
    page.click("nav >> text=Journey Map")
    page.wait_for_selector("h1:text('Journey Map')")
    steps = whole["stages"]
    assert chart_series(page, "stages") == [
        [s["reached"] for s in steps],
        [s["went_on"] for s in steps],
    ]
    assert chart_option(page, "stages")["xAxis"][0]["data"] == STAGES_DE
    # The table: the conversion with a decimal comma, the channels by their labels.
    page.click("#stages summary")
    rows = [r.split("\t") for r in page.locator("#stages table.numbers tbody tr").all_inner_texts()]
    first = steps[0]
    assert rows[0][0] == "Aufmerksamkeit"
    assert rows[0][5] == de_number(round(100 * first["conversion"], 1), 1)
    assert "," in rows[0][5] and "." not in rows[0][5]
    labels = {"web": "Web", "mobile_app": "Mobile App", "email": "E-Mail", "store": "Filiale",
              "social": "Social Media", "phone": "Telefon", "other": "Sonstige"}  # fmt: skip
    top = [c["channel"] for c in first["top_channels"][:3]]
    assert rows[0][8] == ", ".join(labels.get(c, c) for c in top)
    # The filter keeps the channel's name as its value and shows its label.
    option = page.locator("select[name=channel] option[value=mobile_app]")
    assert option.inner_text() == "Mobile App"
    # Retention: the cohorts' days and sizes as German writes them; the same shares.
    page.click("nav >> text=Wiederkehr")
    page.wait_for_selector("h1:text('Wiederkehr')")
    option = chart_option(page, "cohorts")
    cohorts = weekly["cohorts"]
    assert option["xAxis"][0]["data"][:2] == ["Woche 0", "Woche 1"]
    assert option["yAxis"][0]["data"] == [
        f"{de_day(c['cohort'])} · {de_number(c['size'])}" for c in cohorts
    ]
    cells = {(c, r): v for c, r, v in option["series"][0]["data"]}
    assert cells[(0, 0)] == round(100 * cohorts[0]["share"][0], 2)
    # The heat map's cells are written by the page's language too (app.js: Intl).
    drawn = page.evaluate(
        "() => echarts.getInstanceByDom(document.querySelector('#cohorts .chart'))"
        ".getOption().series[0].label.formatter({value: [0, 0, 12.5]})"
    )
    assert drawn == "12,5"
    hint = page.inner_text("p.hint")
    assert f"nach dem {de_day(weekly['as_of'])}, dem jüngsten Ereignis" in hint
    context.close()


def test_the_profile_in_german(demo_server: Server, browser: Any) -> None:
    with demo_server.client() as api:
        key = next(
            k
            for k in api.get("/v1/profiles", params={"trait": "city", "value": "Hamburg"}).json()[
                "persons"
            ]
            if api.get(f"/v1/profiles/{k}").json()["traits"]
        )
        profile = api.get(f"/v1/profiles/{key}").json()
        timeline = api.get(f"/v1/profiles/{key}/timeline", params={"limit": 25}).json()
    context, page = _open(browser, demo_server, "de-DE")
    page.goto(f"{demo_server.url}/people/{key}")
    page.wait_for_selector("h1#person")
    assert page.inner_text("#traits h2") == "Merkmale"
    assert page.locator("#traits th").all_inner_texts() == [
        "Merkmal",
        "Wert",
        "Quelle",
        "Zeit (UTC)",
    ]
    rows = [r.split("\t") for r in page.locator("#traits tbody tr").all_inner_texts()]
    assert rows == [
        [name, str(t["value"]), t["source"], de_moment(t["timestamp"])]
        for name, t in profile["traits"].items()
    ]
    # The timeline: moments to the second, channels by their labels, events as they are.
    first = page.locator("#timeline tbody tr").first.inner_text().split("\t")
    event = timeline["events"][0]
    assert first[0] == de_moment(event["timestamp"]) + event["timestamp"][16:19]
    assert first[1] == {"web": "Web", "email": "E-Mail", "mobile_app": "Mobile App"}.get(
        event["channel"], first[1]
    )
    counts = profile["computed"]["events"]
    assert page.inner_text("p.figures").startswith(
        f"{de_number(counts)} {'Ereignis' if counts == 1 else 'Ereignisse'}"
    )
    context.close()


def test_the_switch_changes_the_language_and_it_sticks_across_pages(
    demo_server: Server, browser: Any
) -> None:
    # A German browser switches to English on the overview: the same page, in English …
    context, page = _open(browser, demo_server, "de-DE")
    assert page.inner_text("#languages a[aria-current]") == "DE"
    page.click("#languages a[data-lang=en]")
    page.wait_for_selector("h1:text('Overview')")
    assert page.url == f"{demo_server.url}/"
    assert page.get_attribute("html", "lang") == "en"
    [cookie] = [c for c in context.cookies() if c["name"] == "tp_lang"]
    assert (cookie["value"], cookie["httpOnly"], cookie["sameSite"]) == ("en", True, "Strict")
    assert 360 * 86400 < cookie["expires"] - time.time() <= 365 * 86400
    # … and on the next pages, though the browser still asks for German.
    page.click("nav >> text=People")
    page.wait_for_selector("h1:text('People')")
    page.goto(f"{demo_server.url}/journeys/funnels?step=Product+Viewed&step=Order+Completed")
    assert page.inner_text("h1") == "Funnels" and page.inner_text("#add-step") == "Add step"
    # Back to German, on the page it was chosen on, with the question kept.
    page.click("#languages a[data-lang=de]")
    page.wait_for_selector("#add-step:text('Schritt hinzufügen')")
    assert page.url.endswith("/journeys/funnels?step=Product+Viewed&step=Order+Completed")
    assert [i.input_value() for i in page.locator("input[name=step]").all()] == [
        "Product Viewed",
        "Order Completed",
    ]
    context.close()
    # An English browser chooses German on the login page: the login, then every page.
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(f"{demo_server.url}/")
    assert page.inner_text("h1") == "Sign in"
    page.click("#languages a[data-lang=de]")
    page.wait_for_selector("h1:text('Anmelden')")
    assert "/login?next=" in page.url
    page.fill("#key", "tp_read_00000000000000000000000000000000")
    page.click("#key-login button[type=submit]")
    assert page.inner_text("p.error") == (
        "Dieser Schlüssel ist nicht gültig (unbekannt oder widerrufen)."
    )
    sign_in(page, demo_server, demo_server.read_key)
    page.wait_for_selector("h1:text('Übersicht')")
    # A switch can only go back to this site.
    answer = httpx.get(
        f"{demo_server.url}/language/de?next=//evil.example/", follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    context.close()


def _english_of_the_catalog() -> tuple[set[str], list[str]]:
    """From the German catalog: the English messages without placeholders that German
    writes otherwise (a heading, a button), and the pieces of two words or more of every
    message German writes otherwise (between its placeholders and markup). The labels of
    names (a context: "channel", "stage") are left to the other tests: their English is the
    name itself, which a page shows as data too (the identifier type "email")."""
    with catalog_path("de").open("rb") as po:
        catalog = read_po(po, locale="de")
    everything_german = {
        text.replace("%%", "%")
        for m in catalog
        if m.id
        for text in (m.string if isinstance(m.string, tuple) else (m.string,))
    }
    whole: set[str] = set()
    pieces: set[str] = set()
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        german = " ".join(strings)
        for english in ids:
            text = english.replace("%%", "%")
            if english in strings or text in everything_german:
                continue  # German writes it so too ("CSV", "Name", "linear")
            if "%(" not in text and "<" not in text and message.context is None:
                whole.add(text)
            for piece in re.split(r"%\(\w+\)[sd]|<[^>]+>", text):
                piece = " ".join(piece.split()).strip(" .,:;()“”'")
                if piece.count(" ") >= 1 and len(piece) >= 8 and piece not in german:
                    pieces.add(piece)
    return whole, sorted(pieces)


def test_no_english_text_of_the_catalogs_is_left_on_a_german_page(
    demo_server: Server, browser: Any
) -> None:
    whole, pieces = _english_of_the_catalog()
    assert "Show" in whole and "dropped before" in pieces
    admin = admin_key(demo_server)
    with httpx.Client(
        base_url=demo_server.url, headers={"Authorization": f"Bearer {admin}"}
    ) as api:
        assert api.post("/v1/identity/match", timeout=120).status_code == 200
        linked = api.get("/v1/identity/links", params={"limit": 1}).json()["links"][0]["person"]
    context, page = _open(browser, demo_server, "de-DE", key=admin)
    addresses = page.eval_on_selector_all(
        "nav a", "links => links.map(a => a.getAttribute('href'))"
    )
    addresses += [
        "/journeys/funnels?step=Product+Viewed&step=Configuration+Saved&breakdown=channel"
        "&dropoffs=1",
        "/journeys/paths?step=channel&anchor=before&event=Order+Completed",
        "/journeys/attribution?by=campaign&lookback_days=60",
        "/journeys/channel-mix?measure=contact_share",
        "/journeys/map?channel=store&since=2026-06-01",
        "/journeys/retention?period=month&start_event=Product+Viewed",
        "/people?q=city%3DHamburg",
        f"/people/{linked}",
        "/journeys/paths?depth=many",  # a form error of the page's own
    ]
    found: dict[str, list[str]] = {}
    for address in addresses:
        page.goto(f"{demo_server.url}{address}")
        page.wait_for_selector("h1")
        texts = page_texts(page)
        left = [p for p in pieces if p in texts["all"]]
        left += [t for t in texts["labels"] if t in whole]
        if left:
            found[address] = left
        assert page.get_attribute("html", "lang") == "de"
    assert not found, found
    context.close()


def test_every_german_page_fits_a_tablet(demo_server: Server, browser: Any) -> None:
    """German words are longer: each page still needs no sideways scrolling at 800 pixels."""
    context = browser.new_context(locale="de-DE", viewport={"width": 800, "height": 1000})
    page = context.new_page()
    sign_in(page, demo_server, demo_server.read_key)
    page.wait_for_selector("h1:text('Übersicht')")
    links = page.eval_on_selector_all("nav a", "links => links.map(a => a.getAttribute('href'))")
    for link in [*links, "/login"]:
        page.goto(f"{demo_server.url}{link}")
        page.wait_for_selector("h1")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{link} is {overflow}px too wide in German"
    context.close()
