"""Every API route and every dashboard page names the permission it needs, and the table of
:mod:`touchpoints.access.roles` alone decides who holds it: a route added without a
permission, or with another one than this table says, fails here (change the table
deliberately, with docs/access.md)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route

import touchpoints.api
from touchpoints.access.roles import ALL, KEY_PERMISSIONS, USER_PERMISSIONS, checked
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.web.app import Dashboard

# (method, path) → the permission its dependency requires. Two analytics routes answer
# some questions with persons and ask for ``profiles`` as well, inside: a person's stages
# (/v1/journeys/stages/{key}) and a funnel's drop-offs (tests/unit/test_access_http.py).
API = {
    ("POST", "/v1/assistant/messages"): "collect",
    ("GET", "/v1/assistant/conversations/{conversation_id}/messages"): "collect",
    ("GET", "/v1/assistant/conversations/{conversation_id}/stream"): "collect",
    ("POST", "/v1/assistant/conversations/{conversation_id}/rating"): "collect",
    ("POST", "/v1/assistant/voice"): "collect",
    ("POST", "/v1/assistant/sms"): "collect",
    ("GET", "/v1/assistant/queues"): "assist",
    ("GET", "/v1/assistant/conversations"): "assist",
    ("GET", "/v1/assistant/conversations/{conversation_id}"): "assist",
    ("POST", "/v1/assistant/conversations/{conversation_id}/replies"): "assist",
    ("POST", "/v1/assistant/conversations/{conversation_id}/close"): "assist",
    ("GET", "/v1/assistant/figures"): "analytics",
    ("POST", "/v1/assistant/trial"): "admin",
    ("POST", "/v1/assistant/evaluate"): "analytics",
    ("GET", "/v1/audiences"): "analytics",
    ("POST", "/v1/audiences"): "admin",
    ("POST", "/v1/audiences/preview"): "analytics",
    ("GET", "/v1/audiences/schema"): "analytics",
    ("GET", "/v1/audiences/history"): "profiles",
    ("POST", "/v1/audiences/evaluate"): "admin",
    ("GET", "/v1/audiences/{key}"): "analytics",
    ("PUT", "/v1/audiences/{key}"): "admin",
    ("DELETE", "/v1/audiences/{key}"): "admin",
    ("GET", "/v1/audiences/{key}/members"): "profiles",
    ("GET", "/v1/audiences/{key}/history"): "profiles",
    ("GET", "/v1/audiences/{key}/sizes"): "analytics",
    ("POST", "/v1/audiences/{key}/destinations"): "admin",
    ("DELETE", "/v1/audiences/{key}/destinations/{destination_id}"): "admin",
    ("POST", "/v1/audiences/{key}/destinations/{destination_id}/export"): "admin",
    ("GET", "/v1/traits/computed"): "analytics",
    ("POST", "/v1/traits/computed"): "admin",
    ("GET", "/v1/traits/computed/schema"): "analytics",
    ("GET", "/v1/traits/computed/{key}"): "analytics",
    ("PUT", "/v1/traits/computed/{key}"): "admin",
    ("DELETE", "/v1/traits/computed/{key}"): "admin",
    ("GET", "/v1/traits/computed/{key}/values"): "profiles",
    ("GET", "/v1/triggers"): "analytics",
    ("POST", "/v1/triggers"): "admin",
    ("POST", "/v1/triggers/validate"): "analytics",
    ("GET", "/v1/triggers/schema"): "analytics",
    ("GET", "/v1/triggers/firings"): "profiles",
    ("GET", "/v1/triggers/{key}"): "analytics",
    ("PUT", "/v1/triggers/{key}"): "admin",
    ("DELETE", "/v1/triggers/{key}"): "admin",
    ("GET", "/v1/triggers/{key}/firings"): "profiles",
    ("GET", "/v1/audit"): "audit",
    ("GET", "/v1/audit/verify"): "audit",
    ("POST", "/v1/destinations"): "admin",
    ("GET", "/v1/destinations"): "analytics",
    ("GET", "/v1/destinations/deliveries"): "profiles",
    ("GET", "/v1/destinations/messages"): "profiles",
    ("GET", "/v1/destinations/{destination_id}"): "analytics",
    ("POST", "/v1/destinations/{destination_id}/disable"): "admin",
    ("POST", "/v1/destinations/{destination_id}/enable"): "admin",
    ("POST", "/v1/destinations/{destination_id}/replay"): "admin",
    ("POST", "/v1/destinations/{destination_id}/test"): "admin",
    ("POST", "/v1/destinations/{destination_id}/messages"): "admin",
    ("GET", "/v1/events"): "profiles",
    ("GET", "/v1/events/count"): "analytics",
    ("POST", "/v1/export"): "admin",
    ("GET", "/v1/events/stats"): "analytics",
    ("GET", "/v1/identity/summary"): "analytics",
    ("POST", "/v1/identity/unmerge"): "admin",
    ("GET", "/v1/identity/links"): "profiles",
    ("POST", "/v1/identity/links/{link_id}/remove"): "admin",
    ("POST", "/v1/identity/match"): "admin",
    ("GET", "/v1/identity/reviews"): "profiles",
    ("POST", "/v1/identity/reviews/{pair_id}"): "admin",
    ("POST", "/v1/identity/rebuild"): "admin",
    ("POST", "/v1/identity/load"): "admin",
    ("POST", "/v1/journeys/query"): "analytics",
    ("GET", "/v1/journeys/stages"): "analytics",
    ("GET", "/v1/journeys/stages/{key:path}"): "analytics",
    ("GET", "/v1/journeys/map"): "analytics",
    ("POST", "/v1/journeys/funnels"): "analytics",
    ("POST", "/v1/journeys/funnels/drop-offs"): "analytics",
    ("POST", "/v1/journeys/retention"): "analytics",
    ("GET", "/v1/journeys/paths"): "analytics",
    ("GET", "/v1/journeys/variants"): "analytics",
    ("GET", "/v1/journeys/channel-mix"): "analytics",
    ("GET", "/v1/journeys/attribution"): "analytics",
    ("POST", "/v1/keys"): "admin",
    ("GET", "/v1/keys"): "admin",
    ("DELETE", "/v1/keys/{key_id}"): "admin",
    ("GET", "/v1/profiles"): "profiles",
    ("GET", "/v1/profiles/{key:path}/timeline"): "profiles",
    ("GET", "/v1/profiles/{key:path}/merges"): "profiles",
    ("GET", "/v1/profiles/{key:path}"): "profiles",
    ("GET", "/v1/profiles/{key:path}/consent"): "profiles",
    ("GET", "/v1/profiles/{key:path}/computed-traits"): "profiles",
    ("GET", "/v1/profiles/{key:path}/audiences"): "profiles",
    ("GET", "/v1/predictions"): "analytics",
    ("GET", "/v1/predictions/models"): "analytics",
    ("GET", "/v1/predictions/top-customers"): "profiles",
    ("GET", "/v1/predictions/persons/{key:path}"): "profiles",
    ("GET", "/v1/predictions/offers/{key:path}"): "profiles",
    ("GET", "/v1/predictions/actions/{key:path}"): "profiles",
    ("POST", "/v1/predictions/offers/evaluate"): "analytics",
    ("GET", "/v1/placements"): "analytics",
    ("POST", "/v1/placements"): "admin",
    ("GET", "/v1/placements/schema"): "analytics",
    ("GET", "/v1/placements/{key}"): "analytics",
    ("PUT", "/v1/placements/{key}"): "admin",
    ("DELETE", "/v1/placements/{key}"): "admin",
    ("GET", "/v1/placements/{key}/uplift"): "analytics",
    # The browser's write key; a key that reads profiles may ask by any identifier.
    ("POST", "/v1/decide"): "collect",
    ("POST", "/v1/predictions/ltv/train"): "admin",
    ("POST", "/v1/predictions/churn/train"): "admin",
    ("POST", "/v1/predictions/ltv/evaluate"): "admin",
    ("POST", "/v1/predictions/score"): "admin",
    ("GET", "/v1/privacy"): "privacy",
    ("POST", "/v1/privacy/exports"): "privacy",
    ("POST", "/v1/privacy/erasures"): "privacy",
    ("GET", "/v1/privacy/requests"): "privacy",
    ("GET", "/v1/privacy/requests/{request_id}"): "privacy",
    ("POST", "/v1/privacy/requests/{request_id}/lift"): "admin",
    ("POST", "/v1/privacy/retention"): "privacy",
    ("POST", "/v1/privacy/reject-files"): "admin",
    ("GET", "/v1/quarantine"): "admin",
    ("GET", "/v1/quarantine/{item_id}"): "admin",
    ("POST", "/v1/quarantine/replay"): "admin",
    ("DELETE", "/v1/quarantine/{item_id}"): "admin",
    ("POST", "/v1/users"): "admin",
    ("GET", "/v1/users"): "admin",
    ("GET", "/v1/users/{name}"): "admin",
    ("PUT", "/v1/users/{name}/role"): "admin",
    ("POST", "/v1/users/{name}/disable"): "admin",
    ("POST", "/v1/users/{name}/enable"): "admin",
    ("PUT", "/v1/users/{name}/password"): "admin",
}
# Dashboard routes → the permission of their page (the sign-in, sign-out, language switch
# and static files are open: they show nothing).
PAGES = {
    "/": "analytics",
    "/live": "analytics",
    "/journeys/map": "analytics",
    "/journeys/funnels": "analytics",
    "/journeys/paths": "analytics",
    "/journeys/retention": "analytics",
    "/journeys/channel-mix": "analytics",
    "/journeys/attribution": "analytics",
    "/predictions": "analytics",
    "/sources": "analytics",
    "/destinations": "analytics",
    "/destinations/{destination_id:int}/{action:str}": "admin",
    "/audiences": "analytics",
    "/audiences/new": "admin",
    "/audiences/preview": "analytics",
    "/audiences/{key:str}": "analytics",
    "/audiences/{key:str}/{action:str}": "admin",
    "/triggers": "analytics",
    "/triggers/save": "admin",
    "/triggers/{key:str}/delete": "admin",
    "/traits": "analytics",
    "/traits/new": "admin",
    "/traits/{key:str}/{action:str}": "admin",
    "/sources/keys": "admin",
    "/sources/keys/{key_id}/revoke": "admin",
    "/people": "profiles",
    "/people/{key:path}": "profiles",
    "/people/{key:path}/unmerge": "admin",
    "/users": "admin",
    "/users/new": "admin",
    "/users/{name}/{action:str}": "admin",
    "/audit": "audit",
    "/privacy": "privacy",
    "/privacy/export": "privacy",
    "/privacy/erase": "privacy",
    "/privacy/retention": "privacy",
    "/privacy/requests/{request_id:int}/lift": "admin",
    "/assistant": "assist",
    "/assistant/conversations/{conversation_id:str}/messages": "assist",
    "/assistant/conversations/{conversation_id:str}/reply": "assist",
    "/assistant/conversations/{conversation_id:str}/close": "assist",
    "/personalisation": "analytics",
}
# The demo shop is a website's page (it needs a live write key in its address, shows no
# data) and the Segment CDN settings it loads name only the collector's address.
OPEN = {
    "/login",
    "/logout",
    "/language/{code}",
    "/demo/shop",
    "/sdk/segment/v1/projects/{write_key}/settings",
}


def _api_routes() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for info in pkgutil.iter_modules(touchpoints.api.__path__):
        module = importlib.import_module(f"{touchpoints.api.__name__}.{info.name}")
        router = getattr(module, "router", None)
        for route in getattr(router, "routes", ()):
            assert isinstance(route, APIRoute), route
            needs = [
                dep.call.permission  # type: ignore[union-attr]
                for dep in route.dependant.dependencies
                if hasattr(dep.call, "permission")
            ]
            for method in route.methods:
                found[(method, route.path)] = needs
    return found


def test_every_api_route_names_exactly_one_permission_as_the_table_says() -> None:
    found = _api_routes()
    assert {route: needs for route, needs in found.items() if len(needs) != 1} == {}
    assert {route: needs[0] for route, needs in found.items()} == API


def test_every_dashboard_page_names_its_permission(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        routes = [r for r in Dashboard(tp).routes() if isinstance(r, Route)]
    found: dict[str, Any] = {r.path: getattr(r.endpoint, "permission", None) for r in routes}
    assert {path: found.pop(path) for path in OPEN} == dict.fromkeys(OPEN)
    assert found == PAGES


def test_the_table_holds_known_permissions_only() -> None:
    for table in (KEY_PERMISSIONS, USER_PERMISSIONS):
        for granted in table.values():
            assert granted <= ALL
    assert KEY_PERMISSIONS["admin"] == USER_PERMISSIONS["admin"] == ALL
    assert USER_PERMISSIONS["viewer"] == {"analytics"}
    assert KEY_PERMISSIONS["write"] == {"collect"}
    with pytest.raises(ValueError, match="unknown permission 'read'"):
        checked("read")
