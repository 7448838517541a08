"""Channel mix: which channels each age group uses, as a heat map of age band × channel
(the share of a band's people using each channel, or each channel's share of its contacts),
with the people per band."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from touchpoints.errors import InvalidRequest, TouchpointsError, status_of
from touchpoints.journeys.queries import ChannelMixQuery
from touchpoints.journeys.results import ChannelMix
from touchpoints.web.app import Table, csv_response
from touchpoints.web.charts import heatmap, percent
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 60
NAV = (("/journeys/channel-mix", "Channel mix"),)
MEASURES = {
    "people_share": "Share of the band's people using each channel (%)",
    "contact_share": "Share of the band's contacts on each channel (%)",
}


def routes(dashboard: Dashboard) -> list[Route]:
    async def channel_mix(request: Request, session: Session) -> Response:
        from touchpoints.journeys.ages import DEFAULT_BANDS

        params = request.query_params
        measure = params.get("measure") or "people_share"
        context: dict[str, Any] = {
            "form": {
                "bands": params.get("bands") or ", ".join(DEFAULT_BANDS),
                "as_of": params.get("as_of", ""),
                "measure": measure,
            },
            "measures": MEASURES,
            "error": None,
        }
        try:
            bands, as_of = _question(params.get("bands", ""), params.get("as_of", ""), measure)
            found = await dashboard.ask(ChannelMixQuery, {"bands": bands, "as_of": as_of})
        except TouchpointsError as exc:
            context["error"] = str(exc)
            return dashboard.render(
                request,
                "channel_mix.html",
                session,
                status_code=status_of(exc),
                tables={},
                **context,
            )
        data = _view(found, measure)
        if (wanted := params.get("csv")) is not None:
            return csv_response(data["tables"], wanted, "channel-mix")
        return dashboard.render(request, "channel_mix.html", session, **context, **data)

    return [Route("/journeys/channel-mix", dashboard.page(channel_mix))]


def _question(bands: str, as_of: str, measure: str) -> tuple[list[str] | None, date | None]:
    """The bands (comma-separated; none: the service's) and the day of the ages."""
    if measure not in MEASURES:
        raise InvalidRequest(f"measure: {measure!r} is not one of {', '.join(MEASURES)}")
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise InvalidRequest(f"as_of: {as_of!r} is not a date; give one as YYYY-MM-DD") from None
    if not bands.strip():
        return None, day
    return [band.strip() for band in bands.split(",")], day


def _view(found: ChannelMix, measure: str) -> dict[str, Any]:
    """Both share matrices as tables, the chosen one as a heat map, and the people per band."""
    bands, channels = found.bands, found.channels
    tables = {
        name: Table(
            name,
            title,
            ["age band", "people", "contacts", *channels],
            [
                [band, found.people[band], found.contacts[band], *[percent(v) for v in row]]
                for band, row in zip(bands, found.matrix(name), strict=True)
            ],
        )  # fmt: skip
        for name, title in MEASURES.items()
    }
    chart = heatmap(
        channels,
        [f"{band} · {found.people[band]:,}" for band in bands],
        [[percent(v) for v in row] for row in found.matrix(measure)],
        label=MEASURES[measure],
    )
    chart["series"][0]["label"] |= {"formatter": "{@[2]}", "fontSize": 11}
    chart["visualMap"] |= {"text": ["%", ""], "itemHeight": 160}
    chart["xAxis"]["axisLabel"] = {"interval": 0, "rotate": 30}
    chart["grid"]["bottom"] = 84  # room for the colour scale under the axis labels
    return {
        "tables": tables,
        "table": tables[measure],
        "mix_chart": chart,
        "height": max(280, 170 + 34 * len(bands)),
        "as_of": found.as_of.isoformat(),
        "people": found.people,
        "contacts": found.contacts,
        "other": next(name for name in MEASURES if name != measure),
    }
