"""Privacy: the data-protection officer's page. Subject requests (received, due, done, what
was removed, overdue ones marked), an export archive for a person (a download), an erasure
with a confirmation, the suppression list's size and its lifting for a done erasure, the
consent settings, and the retention rules with a preview of what the daily job removes.

Everything goes through ``tp.privacy`` (:class:`touchpoints.privacy.service.Privacy`), the
service behind ``/v1/privacy`` and ``touchpoints privacy``: the same request records, the
same checks, the same refusals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from touchpoints.errors import TouchpointsError
from touchpoints.privacy.results import PrivacyRequest, outcome_items, outcome_text
from touchpoints.web import labels
from touchpoints.web.app import Shown, Table, csv_response
from touchpoints.web.forms import form_fields
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.config import RetentionRule
    from touchpoints.privacy.results import Erasure, RetentionRun
    from touchpoints.privacy.service import PrivacyOverview
    from touchpoints.web.app import Dashboard

ORDER = 95
NAV = (("/privacy", N_("Privacy")),)
PERMISSION = "privacy"

KEY_MAX = 1_000  # as the API's ExportRequest.key
NOTE_MAX = 1_000  # as the API's ErasureRequest.note

_KIND = {"export": N_("export"), "erasure": N_("erasure")}
_STATUS = {"received": N_("received"), "done": N_("done"), "refused": N_("refused")}


def routes(dashboard: Dashboard) -> list[Route]:
    page = _Page(dashboard)
    return [
        Route("/privacy", dashboard.page(page.show, PERMISSION)),
        Route("/privacy/export", dashboard.page(page.export, PERMISSION), methods=["POST"]),
        Route("/privacy/erase", dashboard.page(page.erase, PERMISSION), methods=["POST"]),
        Route("/privacy/retention", dashboard.page(page.retention, PERMISSION), methods=["POST"]),
        Route(
            "/privacy/requests/{request_id:int}/lift",
            dashboard.page(page.lift, "admin"),
            methods=["POST"],
        ),
    ]


class _Page:
    """The page's handlers: each reads its form (with the session's token), asks
    ``tp.privacy``, records what was done in the audit log and shows the page again."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.privacy = dashboard.tp.privacy

    async def audit(
        self, request: Request, session: Session, action: str, target: str | None, detail: str
    ) -> None:
        await self.dashboard.audit(request, _by(session), action, target, detail)

    async def show(self, request: Request, session: Session) -> Response:
        language = self.dashboard.language(request)
        overview = await run_in_threadpool(self.privacy.overview)
        tables = _tables(language, overview)
        if (wanted := request.query_params.get("csv")) is not None:
            return csv_response(tables, wanted, "privacy", language)
        shown = request.query_params.get("request", "")
        chosen = None
        if shown.isdigit():
            try:
                chosen = await run_in_threadpool(self.privacy.request, int(shown))
            except TouchpointsError:
                chosen = None
        return _render(self.dashboard, request, session, overview, tables, chosen=chosen)

    async def export(self, request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not self.dashboard.csrf_ok(session, fields):
            return self.dashboard.stale_form(request)
        key = fields.get("key", "").strip()
        error = _key_error(self.dashboard.language(request), key)
        if error is None:
            try:
                done, archive = await run_in_threadpool(self.privacy.export, key, _by(session))
            except TouchpointsError as exc:
                error, status = str(exc), exc.status
            else:
                detail = f"request {done.id}"
                await self.audit(request, session, "privacy.export", done.subject, detail)
                name = f"touchpoints-export-{done.id}.zip"
                return Response(
                    archive,
                    media_type="application/zip",
                    headers={
                        "Content-Disposition": f'attachment; filename="{name}"',
                        "X-Privacy-Request": str(done.id),
                    },
                )
        else:
            status = 422
        return await _again(self.dashboard, request, session, status, export_error=error, key=key)

    async def erase(self, request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not self.dashboard.csrf_ok(session, fields):
            return self.dashboard.stale_form(request)
        language = self.dashboard.language(request)
        key = fields.get("key", "").strip()
        note = fields.get("note", "").strip() or None
        error = _key_error(language, key)
        status = 422
        if error is None and fields.get("confirm", "").strip() != key:
            error = language.gettext(
                "confirm: type the key a second time, exactly as above, to erase this person"
            )
        elif error is None and note is not None and len(note) > NOTE_MAX:
            error = language.gettext(
                "note: %(length)s characters; keep it to %(most)s", length=len(note), most=NOTE_MAX
            )
        if error is None:
            try:
                erasure = await run_in_threadpool(self.privacy.erase, key, _by(session), note)
            except TouchpointsError as exc:
                error, status = str(exc), exc.status
            else:
                detail = f"request {erasure.request.id}, {erasure.identifiers} identifiers"
                await self.audit(request, session, "privacy.erase", erasure.person, detail)
                return await _again(self.dashboard, request, session, 200, erasure=erasure)
        return await _again(
            self.dashboard, request, session, status, erase_error=error, erase_key=key, note=note
        )

    async def lift(self, request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not self.dashboard.csrf_ok(session, fields):
            return self.dashboard.stale_form(request)
        request_id = int(request.path_params["request_id"])
        try:
            lifted = await run_in_threadpool(self.privacy.lift, request_id, _by(session))
        except TouchpointsError as exc:
            return await _again(self.dashboard, request, session, exc.status, lift_error=str(exc))
        detail = f"request {request_id}, {lifted.lifted} identifiers"
        await self.audit(request, session, "privacy.lift", None, detail)
        return RedirectResponse(
            f"/privacy?request={lifted.request_id}&lifted={lifted.lifted}", status_code=303
        )

    async def retention(self, request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not self.dashboard.csrf_ok(session, fields):
            return self.dashboard.stale_form(request)
        dry_run = fields.get("run") != "now"
        if not dry_run and not session.admin:
            return self.dashboard.forbidden(request, session, "admin")
        run = await run_in_threadpool(self.privacy.run_retention, dry_run)
        if not dry_run:
            detail = f"{run.events} events"
            await self.audit(request, session, "privacy.retention", None, detail)
        return await _again(self.dashboard, request, session, 200, retention=run)


def _by(session: Session) -> str:
    """Who asked, as the request records name them (the API's ``by``)."""
    return session.actor.id


def _key_error(language: Language, key: str) -> str | None:
    if not key:
        return language.gettext(
            "key: give the person's key: an identifier such as email:anna@example.com, "
            "user_id:u-17 or a profile key such as person:42"
        )
    if len(key) > KEY_MAX:
        return language.gettext(
            "key: %(length)s characters; a key has at most %(most)s", length=len(key), most=KEY_MAX
        )
    return None


async def _again(
    dashboard: Dashboard, request: Request, session: Session, status: int, **context: Any
) -> Response:
    """The page once more after a form, with the form's outcome (an error keeps its fields)."""
    language = dashboard.language(request)
    overview = await run_in_threadpool(dashboard.tp.privacy.overview)
    tables = _tables(language, overview)
    return _render(dashboard, request, session, overview, tables, status=status, **context)


def _render(
    dashboard: Dashboard,
    request: Request,
    session: Session,
    overview: PrivacyOverview,
    tables: dict[str, Table],
    *,
    status: int = 200,
    chosen: PrivacyRequest | None = None,
    erasure: Erasure | None = None,
    retention: RetentionRun | None = None,
    **context: Any,
) -> Response:
    lifted = request.query_params.get("lifted")
    language = dashboard.language(request)
    rules = overview.settings.retention
    return dashboard.render(
        request,
        "privacy.html",
        session,
        status_code=status,
        overview=overview,
        tables=tables,
        chosen=chosen,
        outcome=outcome_items(chosen.outcome) if chosen else [],
        erasure=erasure,
        removed=sorted((erasure.removed if erasure else {}).items(), key=lambda kv: -kv[1]),
        retention=retention,
        rule_texts=[_rule_text(language, rule) for rule in rules],
        chosen_kind=language.translate(_KIND[chosen.kind]) if chosen else "",
        chosen_status=language.translate(_STATUS[chosen.status]) if chosen else "",
        lifted=int(lifted) if lifted and lifted.isdigit() else None,
        key=context.pop("key", ""),
        erase_key=context.pop("erase_key", ""),
        note=context.pop("note", None) or "",
        **context,
    )


def _rule_text(language: Language, rule: RetentionRule) -> str:
    """What a retention rule covers: ``event Page Viewed, channel web``, or every event."""
    parts = []
    if rule.event is not None:
        parts.append(language.gettext("event %(name)s", name=rule.event))
    if rule.type is not None:
        parts.append(language.gettext("type %(name)s", name=rule.type))
    if rule.channel is not None:
        label = labels.label(language, "channel", rule.channel)
        parts.append(language.gettext("channel %(name)s", name=label))
    return ", ".join(parts) or language.gettext("every event")


def _tables(language: Language, overview: PrivacyOverview) -> dict[str, Table]:
    _ = language.gettext
    requests = Table(
        "requests",
        _("Subject requests"),
        [
            _("request"),
            _("kind"),
            _("person"),
            _("status"),
            _("received"),
            _("due"),
            _("done"),
            _("asked by"),
            _("outcome"),
        ],
    )
    for found in overview.requests:
        requests.rows.append(
            [
                found.id,
                Shown(found.kind, language.translate(_KIND.get(found.kind, found.kind))),
                found.subject,
                Shown(found.status, language.translate(_STATUS.get(found.status, found.status))),
                found.received_at,
                found.due_at,
                found.done_at,
                found.requested_by or "",
                outcome_text(found.outcome),
            ]
        )
    settings = overview.settings
    consent = Table(
        "consent",
        _("Consent categories"),
        [_("category"), _("without a choice"), _("needed for")],
    )
    for category in settings.consent_categories:
        purposes = sorted(p for p, c in settings.consent_purposes.items() if c == category)
        default = settings.consent_defaults.get(category, False)
        consent.rows.append(
            [
                category,
                Shown(default, _("granted") if default else _("denied")),
                ", ".join(purposes),
            ]
        )
    return {"requests": requests, "consent": consent}
