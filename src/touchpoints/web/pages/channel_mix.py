"""Channel mix: which channels each age group uses, as a heat map of age band × channel
(the share of a band's people using each channel, or each channel's share of its contacts),
with the people per band."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from touchpoints.errors import TouchpointsError, status_of
from touchpoints.journeys.queries import ChannelMixQuery
from touchpoints.journeys.results import ChannelMix
from touchpoints.web import labels
from touchpoints.web.app import FormError, Shown, Table, csv_response
from touchpoints.web.charts import heatmap, percent
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 60
NAV = (("/journeys/channel-mix", N_("Channel mix")),)
PERMISSION = "analytics"  # aggregate figures (access/roles.py)
MEASURES = {
    "people_share": N_("Share of the band's people using each channel (%%)"),
    "contact_share": N_("Share of the band's contacts on each channel (%%)"),
}


def routes(dashboard: Dashboard) -> list[Route]:
    async def channel_mix(request: Request, session: Session) -> Response:
        from touchpoints.journeys.ages import DEFAULT_BANDS

        language = dashboard.language(request)
        params = request.query_params
        measure = params.get("measure") or "people_share"
        context: dict[str, Any] = {
            "form": {
                "bands": params.get("bands") or ", ".join(DEFAULT_BANDS),
                "as_of": params.get("as_of", ""),
                "measure": measure,
            },
            "measures": {name: language.translate(title) for name, title in MEASURES.items()},
            "error": None,
        }
        try:
            bands, as_of = _question(params.get("bands", ""), params.get("as_of", ""), measure)
            found = await dashboard.ask(ChannelMixQuery, {"bands": bands, "as_of": as_of})
        except TouchpointsError as exc:
            context["error"] = language.explain(exc)
            return dashboard.render(
                request,
                "channel_mix.html",
                session,
                status_code=status_of(exc),
                tables={},
                **context,
            )
        data = _view(found, measure, language)
        if (wanted := params.get("csv")) is not None:
            return csv_response(data["tables"], wanted, "channel-mix", language)
        return dashboard.render(request, "channel_mix.html", session, **context, **data)

    return [Route("/journeys/channel-mix", dashboard.page(channel_mix, PERMISSION))]


def _question(bands: str, as_of: str, measure: str) -> tuple[list[str] | None, date | None]:
    """The bands (comma-separated; none: the service's) and the day of the ages."""
    if measure not in MEASURES:
        raise FormError(
            N_("measure: %(measure)s is not one of %(known)s"),
            measure=repr(measure),
            known=", ".join(MEASURES),
        )
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise FormError(
            N_("as_of: %(as_of)s is not a date; give one as YYYY-MM-DD"), as_of=repr(as_of)
        ) from None
    if not bands.strip():
        return None, day
    return [band.strip() for band in bands.split(",")], day


def _view(found: ChannelMix, measure: str, language: Language) -> dict[str, Any]:
    """Both share matrices as tables, the chosen one as a heat map, and the people per band
    (channels and the band of people without an age by their labels)."""
    _ = language.gettext
    bands, channels = found.bands, found.channels

    def band(name: str) -> Shown:
        return Shown(name, labels.label(language, "age group", name))

    tables = {
        name: Table(
            name,
            language.translate(title),
            [
                _("age band"),
                _("people"),
                _("contacts"),
                *[labels.channel(language, c) for c in channels],
            ],
            [
                [band(b), found.people[b], found.contacts[b], *[percent(v) for v in row]]
                for b, row in zip(bands, found.matrix(name), strict=True)
            ],
        )  # fmt: skip
        for name, title in MEASURES.items()
    }
    chart = heatmap(
        [labels.channel(language, c) for c in channels],
        [f"{band(b).text} · {language.number(found.people[b])}" for b in bands],
        [[percent(v) for v in row] for row in found.matrix(measure)],
        label=language.translate(MEASURES[measure]),
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
        "as_of": found.as_of,
        "people": found.people,
        "contacts": found.contacts,
        "other": next(name for name in MEASURES if name != measure),
    }
