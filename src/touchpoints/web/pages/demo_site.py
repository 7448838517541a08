"""The demo website: a shop page served by touchpoints that loads the real browser SDKs,
Segment's analytics.js (``@segment/analytics-next``, its standalone bundle) and RudderStack's
JavaScript SDK (``@rudderstack/analytics-js``), both vendored under ``static/vendor``, sends
page, track and identify calls to this server with the write key given in its address
(``/demo/shop?writeKey=…&placement=home_hero``), and shows the content ``POST /v1/decide``
answers for the visitor. It shows nothing without a live write key; it is open (a website's
visitor has no dashboard session), like the collector.

analytics.js asks its CDN for the source's settings (``/v1/projects/{writeKey}/settings``)
and loads its lazy chunks from ``{cdn}/analytics-next/bundles/``: this module is that CDN
(``/sdk/segment``), pointing the SDK's ``apiHost`` back at this server's collector.
RudderStack's SDK takes its source configuration from the page (``getSourceConfig``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from touchpoints.activate.audiences.conditions import valid_key

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 1000
NAV: tuple[tuple[str, str], ...] = ()  # a website's page, not the dashboard's
PERMISSION = "admin"
SEGMENT_CDN = "/sdk/segment"
_BUNDLES = Path(__file__).parents[1] / "static" / "vendor" / "segment" / "analytics-next"


def routes(dashboard: Dashboard) -> list[BaseRoute]:
    keys = dashboard.tp.keys

    def live_write_key(secret: str) -> bool:
        key = keys.verify(secret) if secret else None
        return key is not None and key.allows("collect")

    async def shop(request: Request) -> Response:
        write_key = request.query_params.get("writeKey", "")
        placement = request.query_params.get("placement", "home_hero")
        known = live_write_key(write_key)
        return dashboard.render(
            request,
            "demo_shop.html",
            None,
            status_code=200 if known else 404,
            write_key=write_key if known else "",
            placement=placement if valid_key(placement) else "home_hero",
        )

    async def segment_settings(request: Request) -> Response:
        """The source's settings as Segment's CDN answers them: this server is the API."""
        if not live_write_key(request.path_params["write_key"]):
            return JSONResponse({"error": "no such write key"}, status_code=404)
        return JSONResponse(
            {
                "integrations": {
                    "Segment.io": {
                        "apiKey": request.path_params["write_key"],
                        "apiHost": f"{request.url.netloc}/v1",
                        "protocol": request.url.scheme,
                    }
                },
                "plan": {"track": {"__default": {"enabled": True}}},
                "metrics": {"sampleRate": 0},
                "enabledMiddleware": {},
                "remotePlugins": [],
            },
            headers={"Cache-Control": "no-store"},
        )

    return [
        Route("/demo/shop", shop),
        Route(f"{SEGMENT_CDN}/v1/projects/{{write_key}}/settings", segment_settings),
        Mount(f"{SEGMENT_CDN}/analytics-next", StaticFiles(directory=str(_BUNDLES))),
    ]
