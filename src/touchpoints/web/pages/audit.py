"""Audit: the audit log, for privacy officers and admins (the ``audit`` permission): who did
what to which target, when and from where, filtered by actor, action and time, newest first,
a page at a time and as CSV; and a check of its hash chain.

The lines come from ``tp.audit.page`` and the check from ``tp.audit.verify``, what
``GET /v1/audit`` and ``GET /v1/audit/verify`` answer. Actors are shown with the name of
their user or key. Looking is recorded too (``audit.read``, ``audit.verify``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from touchpoints.access.audit import AuditCheck, AuditPage, operator_names
from touchpoints.errors import InvalidRequest, TouchpointsError, status_of
from touchpoints.web.app import Shown, Table, csv_response
from touchpoints.web.i18n import N_, Explained, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 97
NAV = (("/audit", N_("Audit")),)
PERMISSION = "audit"  # access/roles.py
PAGE_SIZE = 100
# The actions touchpoints records, for the filter's suggestions (an action ending in "."
# takes its whole kind: "user." is every change to users).
ACTIONS = (
    "profile.",
    "profile.read",
    "profile.timeline",
    "profile.merges",
    "profile.consent",
    "profile.search",
    "profile.stages",
    "profile.list",
    "profile.predictions",
    "profile.traits",
    "profile.audiences",
    "events.read",
    "privacy.",
    "privacy.export",
    "privacy.erase",
    "privacy.lift",
    "privacy.retention",
    "predictions.",
    "identity.",
    "identity.unmerge",
    "identity.unlink",
    "key.",
    "user.",
    "signin.",
    "signin.success",
    "signin.failure",
    "signin.locked",
    "session.signout",
    "quarantine.",
    "destination.",
    "destination.create",
    "destination.disable",
    "destination.enable",
    "destination.replay",
    "destination.test",
    "destination.send",
    "export.",
    "export.tables",
    "audience.",
    "audience.create",
    "audience.change",
    "audience.delete",
    "audience.link",
    "audience.unlink",
    "audience.export",
    "audience.evaluate",
    "trait.",
    "trait.create",
    "trait.change",
    "trait.delete",
    "trigger.",
    "trigger.create",
    "trigger.change",
    "trigger.delete",
    "assistant.",
    "assistant.read",
    "assistant.reply",
    "assistant.close",
    "audit.",
)


class AuditFormError(Explained, InvalidRequest):
    """A filter of the audit page that cannot be read (422)."""


def routes(dashboard: Dashboard) -> list[Route]:
    async def audit(request: Request, session: Session) -> Response:
        language = dashboard.language(request)
        form = {k: request.query_params.get(k, "").strip() for k in _FIELDS}
        context: dict[str, Any] = {"form": form, "actions": ACTIONS, "check": None, "error": None}
        try:
            filters = _filters(form)
            page = await run_in_threadpool(lambda: dashboard.tp.audit.page(**filters))
            # The chain is checked on the first page (and on request): its state is always
            # in view; older pages skip the walk.
            if request.query_params.get("verify") or not form["before"]:
                context["check"] = await run_in_threadpool(dashboard.tp.audit.verify)
        except (TouchpointsError, AuditFormError) as exc:
            context["error"] = language.explain(exc)
            return dashboard.render(
                request, "audit.html", session, status_code=status_of(exc), tables={}, **context
            )
        await _record(dashboard, request, session, page, context["check"])
        tp = dashboard.tp
        names = await run_in_threadpool(operator_names, page, tp.users, tp.keys)
        data = _view(page, names, form, language)
        if (wanted := request.query_params.get("csv")) is not None:
            return csv_response(data["tables"], wanted, "audit", language)
        return dashboard.render(request, "audit.html", session, **context, **data)

    return [Route("/audit", dashboard.page(audit, PERMISSION))]


_FIELDS = ("actor", "action", "since", "until", "before")


def _filters(form: dict[str, str]) -> dict[str, Any]:
    """The page's filters as ``AuditLog.page`` takes them; days are whole UTC days (``until``
    includes its day)."""
    found: dict[str, Any] = {"limit": PAGE_SIZE}
    if form["actor"]:
        found["actor"] = form["actor"][:80]
    if form["action"]:
        found["action"] = form["action"][:80]
    for name in ("since", "until"):
        if form[name]:
            try:
                day = date.fromisoformat(form[name])
            except ValueError:
                raise AuditFormError(
                    N_("%(name)s: give a day as YYYY-MM-DD, not %(text)s"),
                    name=name,
                    text=repr(form[name][:40]),
                ) from None
            moment = datetime(day.year, day.month, day.day)
            found[name] = moment + timedelta(days=1) if name == "until" else moment
    if form["before"]:
        if not form["before"].isdigit():
            raise AuditFormError(N_("before: give a line number"))
        found["before"] = int(form["before"])
    return found


async def _record(
    dashboard: Dashboard,
    request: Request,
    session: Session,
    page: AuditPage,
    check: AuditCheck | None,
) -> None:
    actor = session.actor.id
    detail = f"{len(page.lines)} lines"
    await dashboard.audit(request, actor, "audit.read", None, detail, durable=False)
    if check is not None:
        result = "intact" if check.ok else f"broken at line {check.first_broken}"
        await dashboard.audit(request, actor, "audit.verify", None, result, durable=False)


def _view(
    page: AuditPage, names: dict[str, str], form: dict[str, str], language: Language
) -> dict[str, Any]:
    _ = language.gettext

    def who(actor: str) -> Shown:
        return Shown(actor, f"{actor} ({names[actor]})" if actor in names else actor)

    def what(target: str | None) -> Shown:
        kind, _sep, found = (target or "").partition(":")
        shown = f"{target} ({names[found]})" if kind in ("user", "key") and found in names else ""
        return Shown(target or "", shown or target or "")

    table = Table(
        "lines",
        _("Audit log"),
        [_("line"), _("time (UTC)"), _("actor"), _("action"), _("target"), _("from"),
         _("detail"), _("hash")],
        [
            [line.seq, line.at, who(line.actor), line.action, what(line.target),
             line.origin or "", line.detail or "", line.hash]
            for line in page.lines
        ],
    )  # fmt: skip
    kept = {k: v for k, v in form.items() if v and k != "before"}
    older = f"?{urlencode({**kept, 'before': page.next})}" if page.next else None
    newest = f"?{urlencode(kept)}" if form.get("before") else None
    return {
        "page": page,
        "tables": {table.name: table},
        "older": older,
        "newest": newest,
        "verify_link": f"?{urlencode({**kept, 'verify': 1})}",
    }
