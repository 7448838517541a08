"""Sources and keys: events per source (each write key's id is the ``source`` of what it
sends), the API keys, and the snippets that point an SDK at this server. Admin sessions
create write keys (the secret is shown once, in the answer to the form) and revoke keys;
both are recorded in the audit log."""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from touchpoints.access.keys import ApiKey, KeyNotFound, KeyRefused
from touchpoints.web import labels
from touchpoints.web.app import Shown, Table, csv_response
from touchpoints.web.charts import bars
from touchpoints.web.forms import form_fields
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 90
NAV = (("/sources", N_("Sources and keys")),)
PERMISSION = "analytics"  # aggregate figures (access/roles.py)

PLACEHOLDER = "<your write key>"
NAME_MAX = 200  # as the keys API (api/keys.py: NewKey.name)


def routes(dashboard: Dashboard) -> list[Route]:
    async def sources(request: Request, session: Session) -> Response:
        language = dashboard.language(request)
        data = await run_in_threadpool(_data, dashboard, language)
        if (wanted := request.query_params.get("csv")) is not None:
            if wanted == "keys" and not session.admin:  # as GET /v1/keys: admin keys only
                text = language.gettext("the list of keys needs an admin session")
                return PlainTextResponse(text, 403)
            return csv_response(data["tables"], wanted, "sources", language)
        revoked = request.query_params.get("revoked")
        return _page(dashboard, request, session, data, revoked=revoked)

    async def create(request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        language = dashboard.language(request)
        name = fields.get("name", "").strip()
        error = None
        if not name:
            error = language.gettext(
                "give the key a name: the website or app that will send with it"
            )
        elif len(name) > NAME_MAX:
            error = language.gettext(
                "the name is %(length)s characters long; keep it to %(most)s",
                length=len(name),
                most=NAME_MAX,
            )
        source = fields.get("source", "").strip() or None
        if error is None:
            try:
                key, secret = await run_in_threadpool(
                    dashboard.tp.keys.create, "write", name, source
                )
            except KeyRefused as exc:  # a source the key may not have: the reason, as the API
                error = str(exc)
        if error is not None:
            data = await run_in_threadpool(_data, dashboard, language)
            return _page(
                dashboard,
                request,
                session,
                data,
                error=error,
                new_name=name,
                new_source=source or "",
                status=422,
            )
        await dashboard.audit(
            request, session.actor.id, "key.create", f"key:{key.id}", f"role {key.role}"
        )
        data = await run_in_threadpool(_data, dashboard, language)
        # The only answer that holds the secret: never stored, never in a URL (no redirect).
        return _page(dashboard, request, session, data, created=(key, secret), status=201)

    async def revoke(request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        key_id = request.path_params["key_id"]
        try:
            key = await run_in_threadpool(dashboard.tp.keys.revoke, key_id)
        except (KeyRefused, KeyNotFound) as exc:
            data = await run_in_threadpool(_data, dashboard, dashboard.language(request))
            return _page(dashboard, request, session, data, error=str(exc), status=404)
        await dashboard.audit(
            request, session.actor.id, "key.revoke", f"key:{key.id}", f"role {key.role}"
        )
        return RedirectResponse(f"/sources?revoked={key_id}", status_code=303)

    return [
        Route("/sources", dashboard.page(sources, PERMISSION)),
        Route("/sources/keys", dashboard.page(create, "admin"), methods=["POST"]),
        Route(
            "/sources/keys/{key_id}/revoke",
            dashboard.page(revoke, "admin"),
            methods=["POST"],
        ),
    ]


def _page(
    dashboard: Dashboard,
    request: Request,
    session: Session,
    data: dict[str, Any],
    *,
    created: tuple[ApiKey, str] | None = None,
    revoked: str | None = None,
    error: str | None = None,
    new_name: str = "",
    new_source: str = "",
    status: int = 200,
) -> Response:
    base_url = str(request.base_url).rstrip("/")
    secret = created[1] if created else None
    return dashboard.render(
        request,
        "sources.html",
        session,
        status_code=status,
        **data,
        created=created[0] if created else None,
        secret=secret,
        revoked=data["keys_by_id"].get(revoked) if revoked else None,
        error=error,
        new_name=new_name,
        new_source=new_source,
        base_url=base_url,
        placeholder=PLACEHOLDER,
        snippets=snippets(base_url, secret),
    )


def _data(dashboard: Dashboard, language: Language) -> dict[str, Any]:
    _ = language.gettext
    tp = dashboard.tp
    by_source = tp.events.count_by("source")  # what GET /v1/events/stats gives as by_source
    keys = tp.keys.list()  # what GET /v1/keys gives
    keys_by_id = {key.id: key for key in keys}
    # The key whose events carry each source (a rotated source: its newest key, listed last).
    keys_by_source = {key.event_source: key for key in keys}

    def label(source: str) -> str:
        key = keys_by_source.get(source)
        return f"{key.name} ({source})" if key is not None and key.name else source

    def role(source: str) -> Shown:
        if source in keys_by_source:
            name = keys_by_source[source].role
            return Shown(name, labels.label(language, "key role", name))
        return Shown("not a stored key", _("not a stored key"))

    source_table = Table(
        "sources",
        _("Events per source"),
        [_("source"), _("key name"), _("key role"), _("events")],
        [
            [
                source,
                keys_by_source[source].name if source in keys_by_source else "",
                role(source),
                n,
            ]
            for source, n in by_source.items()
        ],
    )
    key_table = Table(
        "keys",
        _("API keys"),
        [_("id"), _("role"), _("name"), _("prefix"), _("created"), _("revoked"), _("events")],
        [
            [
                key.id,
                Shown(key.role, labels.label(language, "key role", key.role)),
                key.name or "",
                key.prefix,
                key.created_at,
                key.revoked_at,
                by_source.get(key.event_source, 0),
            ]
            for key in keys
        ],
    )
    return {
        "tables": {t.name: t for t in (source_table, key_table)},
        "keys": keys,
        "keys_by_id": keys_by_id,
        "by_source": by_source,
        "source_chart": bars(
            [label(source) for source in by_source],
            {_("events"): list(by_source.values())},
            horizontal=True,
        ),
        "chart_height": max(200, 60 + 34 * len(by_source)),
    }


def snippets(base_url: str, secret: str | None) -> dict[str, str]:
    """Ready-to-paste code that sends to ``base_url`` with ``secret`` (or a placeholder).

    The website snippet uses Segment's analytics.js 2.0 (npm ``@segment/analytics-next``),
    unchanged. What its source says (packages/browser/src/browser/settings.ts and
    plugins/segmentio/index.ts): events go to ``{protocol}://{apiHost}/{t|i|p|s|g|a}``, with
    ``apiHost`` (default ``api.segment.io/v1``) and ``protocol`` (``http`` or ``https``)
    from ``integrations["Segment.io"]`` in the second argument of ``AnalyticsBrowser.load``;
    the write key travels in the body as ``writeKey`` (taken from the ``apiKey`` of the
    Segment.io settings). Without ``cdnSettings`` in the first argument it fetches those
    settings from Segment's CDN by write key, which does not know touchpoints' keys, so the
    snippet gives them (``apiKey``, and ``metrics.sampleRate: 0`` so that no usage metrics
    go to api.segment.io). touchpoints answers the short paths, reads ``writeKey`` from
    the body and answers CORS preflights (docs/collect.md).
    """
    key = secret or PLACEHOLDER
    scheme, _, rest = base_url.partition("://")
    api_host = f"{rest}/v1"
    js_key = json.dumps(key)
    website = f"""// npm install @segment/analytics-next
import {{ AnalyticsBrowser }} from "@segment/analytics-next";

export const analytics = AnalyticsBrowser.load(
  {{
    writeKey: {js_key},
    // Settings given here, so none are fetched from Segment's CDN.
    cdnSettings: {{
      integrations: {{ "Segment.io": {{ apiKey: {js_key} }} }},
      metrics: {{ sampleRate: 0 }},
    }},
  }},
  {{
    // Send to touchpoints instead of api.segment.io.
    integrations: {{
      "Segment.io": {{ apiHost: {json.dumps(api_host)}, protocol: {json.dumps(scheme)} }},
    }},
  }},
);

analytics.page();
analytics.track("Signed Up", {{ plan: "trial" }});
"""
    segment = f"""# pip install segment-analytics-python
import segment.analytics as analytics

analytics.write_key = {json.dumps(key)}
analytics.host = {json.dumps(base_url)}

analytics.identify("user-42", {{"email": "ada@example.com"}})
analytics.track("user-42", "Signed Up", {{"plan": "trial"}})
analytics.flush()  # before the program ends: sends what is queued
"""
    rudderstack = f"""# pip install rudder-sdk-python
import rudderstack.analytics as rudder_analytics

rudder_analytics.write_key = {json.dumps(key)}
rudder_analytics.dataPlaneUrl = {json.dumps(base_url)}

rudder_analytics.identify("user-42", {{"email": "ada@example.com"}})
rudder_analytics.track("user-42", "Signed Up", {{"plan": "trial"}})
rudder_analytics.flush()
"""
    body = '{"userId": "user-42", "event": "Signed Up", "properties": {"plan": "trial"}}'
    curl = (
        f"curl -u {shlex.quote(key + ':')} -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)} \\\n"
        f"  {shlex.quote(base_url + '/v1/track')}\n"
    )
    return {"website": website, "segment": segment, "rudderstack": rudderstack, "curl": curl}
