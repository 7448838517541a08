"""Helpers for the dashboard's browser tests; the fixtures ``demo_server`` (a server on 300
simulated people, one per test module) and ``browser`` (Debian's chromium through Playwright)
are in tests/conftest.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from conftest import Server

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"


def sign_in(page: Any, server: Server, key: str) -> None:
    """Open the dashboard and sign in with ``key`` (lands on the login form first)."""
    page.goto(f"{server.url}/")
    page.fill("#key", key)
    page.click("#key-login button[type=submit]")


def chart_series(page: Any, figure: str) -> list[list[Any]]:
    """The data of each series of the chart drawn in ``#figure``, read from ECharts itself."""
    page.wait_for_selector(f"#{figure} .chart[data-drawn=true]")
    return page.evaluate(
        "id => echarts.getInstanceByDom(document.querySelector(`#${id} .chart`))"
        ".getOption().series.map(s => s.data)",
        figure,
    )


def chart_option(page: Any, figure: str) -> dict[str, Any]:
    """The whole ECharts option of the chart drawn in ``#figure``."""
    page.wait_for_selector(f"#{figure} .chart[data-drawn=true]")
    return page.evaluate(
        "id => JSON.parse(JSON.stringify(echarts.getInstanceByDom("
        "document.querySelector(`#${id} .chart`)).getOption()))",
        figure,
    )


def admin_key(server: Server) -> str:
    """The running server's in-memory admin token (from the file the CLI finds it by)."""
    return json.loads((server.data_dir / "server.json").read_text())["token"]


def screenshot(page: Any, name: str) -> None:
    """Save the page as docs/screenshots/<name>.png when TOUCHPOINTS_SCREENSHOTS=1, once
    every chart on it is drawn to the end."""
    if os.environ.get("TOUCHPOINTS_SCREENSHOTS") == "1":
        for chart in page.locator(".chart").all():
            chart.locator("xpath=self::*[@data-drawn='true']").wait_for()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# The texts a reader meets on a page beyond its visible text: what the attributes say (a
# field's placeholder, a link's title, a confirmation) and what the charts name.
_PAGE_TEXTS = """() => {
  const own = el => [...el.childNodes].filter(n => n.nodeType === 3)
    .map(n => n.textContent).join(" ").replace(/\\s+/g, " ").trim();
  const body = document.body.cloneNode(true);
  body.querySelectorAll("script, style, pre").forEach(el => el.remove());
  const texts = [document.title, body.textContent];
  const names = ["placeholder", "title", "aria-label", "data-confirm", "data-copied",
                 "data-selected", "data-step-label"];
  document.querySelectorAll("*").forEach(el => names.forEach(name => {
    if (el.hasAttribute(name)) texts.push(el.getAttribute(name));
  }));
  document.querySelectorAll(".chart[data-option]").forEach(el => {
    const option = JSON.parse(el.dataset.option);
    (option.series || []).forEach(s => texts.push(s.name || ""));
    [].concat(option.visualMap || []).forEach(v => texts.push((v.text || []).join(" ")));
  });
  const labels = [...document.querySelectorAll(
    "h1, h2, h3, th, button, label, legend, summary, option, a, span.label, span.note, p"
  )].filter(el => !el.matches(".brand")).map(own).filter(Boolean);
  return {all: texts.join("\\n").replace(/\\s+/g, " "), labels: labels};
}"""


def page_texts(page: Any) -> dict[str, Any]:
    """``{"all": every text of the page in one line, "labels": the own text of each heading,
    button, label, link, option and paragraph}``: what a test of the page's language reads."""
    return page.evaluate(_PAGE_TEXTS)
