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
    page.click("button[type=submit]")


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
