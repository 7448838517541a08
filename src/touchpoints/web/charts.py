"""Apache ECharts options for the dashboard's charts, built from the same numbers as the
tables under them. Each function returns a plain dict (JSON), drawn by ``static/app.js``."""

from __future__ import annotations

from typing import Any


def bars(
    labels: list[str], series: dict[str, list[Any]], horizontal: bool = False
) -> dict[str, Any]:
    """A bar chart: one bar series per entry of ``series``, in the order of ``labels``."""
    category = {"type": "category", "data": labels, "axisLabel": {"interval": 0}}
    value = {"type": "value"}
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"show": len(series) > 1, "top": 0},
        "grid": {"left": 8, "right": 24, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": value if horizontal else category,
        "yAxis": {**category, "inverse": True} if horizontal else value,
        "series": [{"name": name, "type": "bar", "data": data} for name, data in series.items()],
    }


def lines(
    labels: list[Any], series: dict[str, list[Any]], diagonal: bool = False
) -> dict[str, Any]:
    """A line chart: one line per entry of ``series`` over the categories ``labels``;
    ``diagonal`` draws the values' own line as a dashed one (perfect calibration, where the
    labels are the predicted values themselves)."""
    drawn = [
        {"name": name, "type": "line", "data": data, "symbolSize": 7}
        for name, data in series.items()
    ]
    if diagonal:
        drawn.append(
            {
                "name": "",
                "type": "line",
                "data": list(labels),
                "symbol": "none",
                "lineStyle": {"type": "dashed", "opacity": 0.5},
                "tooltip": {"show": False},
            }
        )
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"show": len(series) > 1, "top": 0, "data": list(series)},
        "grid": {"left": 8, "right": 24, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": labels, "axisLabel": {"interval": 0}},
        "yAxis": {"type": "value"},
        "series": drawn,
    }


def sankey(nodes: list[str] | None, links: list[tuple[str, str, int]]) -> dict[str, Any]:
    """A Sankey diagram (the links must not form a cycle); ``nodes`` in order, else the
    names the links use."""
    names = nodes if nodes is not None else sorted({n for a, b, _ in links for n in (a, b)})
    used = {n for a, b, _ in links for n in (a, b)}
    return {
        "tooltip": {"trigger": "item"},
        "series": [
            {
                "type": "sankey",
                "layoutIterations": 0 if nodes is not None else 32,
                "emphasis": {"focus": "adjacency"},
                "nodeAlign": "left",
                "data": [{"name": n} for n in names if n in used],
                "links": [{"source": a, "target": b, "value": v} for a, b, v in links],
                "lineStyle": {"color": "gradient", "curveness": 0.5, "opacity": 0.35},
            }
        ],
    }


def heatmap(
    columns: list[str], rows: list[str], cells: list[list[float | None]], label: str = ""
) -> dict[str, Any]:
    """A heat map: ``cells[r][c]`` for row ``rows[r]`` and column ``columns[c]`` (None: no
    value, drawn empty). ``label`` names the measure in the tooltip."""
    data = [
        [c, r, value]
        for r, row in enumerate(cells)
        for c, value in enumerate(row)
        if value is not None
    ]
    values = [v for _c, _r, v in data]
    return {
        "tooltip": {"position": "top"},
        "grid": {"left": 8, "right": 8, "top": 8, "bottom": 64, "containLabel": True},
        "xAxis": {"type": "category", "data": columns, "splitArea": {"show": True}},
        "yAxis": {"type": "category", "data": rows, "inverse": True, "splitArea": {"show": True}},
        "visualMap": {
            "min": min(values, default=0),
            "max": max(values, default=1),
            "calculable": True,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
        },
        "series": [
            {
                "name": label,
                "type": "heatmap",
                "data": data,
                "label": {"show": True},
                "emphasis": {"itemStyle": {"shadowBlur": 6}},
            }
        ],
    }


def days(seconds: float | None) -> float | None:
    """Seconds as days with one decimal (None stays None)."""
    return None if seconds is None else round(seconds / 86400, 1)


def percent(share: float | None, digits: int = 2) -> float | None:
    """A share as a percentage, rounded to ``digits`` after the point (2 keeps the API's four
    decimals of a share); None stays None."""
    return None if share is None else round(100 * share, digits)
