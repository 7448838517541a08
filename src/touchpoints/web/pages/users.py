"""Users: the dashboard's accounts, for admins. Add a user with a role and a password, change
a role, disable and enable an account, set a new password; and what each role may do.

Every change goes through ``tp.users`` (the service of ``/v1/users``) and is recorded in the
audit log as the API records it (``user.create``, ``user.role``, ``user.disable``,
``user.enable``, ``user.password``; the target is the user's id). A changed role, a new
password or a disabled account ends that user's sessions at once. The services' reasons (a
name taken, a password too short, the last admin) are shown as the API gives them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from touchpoints.access.roles import ALL, USER_PERMISSIONS, USER_ROLES
from touchpoints.access.users import User
from touchpoints.errors import InvalidRequest, TouchpointsError, status_of
from touchpoints.web import labels
from touchpoints.web.app import Shown, Table, csv_response
from touchpoints.web.forms import form_fields
from touchpoints.web.i18n import N_, Explained, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 95
NAV = (("/users", N_("Users")),)
PERMISSION = "admin"  # access/roles.py
PERMISSION_ORDER = ("analytics", "profiles", "assist", "privacy", "audit", "admin", "collect")


class PasswordsDiffer(Explained, InvalidRequest):
    """The two password fields of a form differ (422)."""


def routes(dashboard: Dashboard) -> list[Route]:
    async def users(request: Request, session: Session) -> Response:
        language = dashboard.language(request)
        data = await run_in_threadpool(_data, dashboard, language)
        if (wanted := request.query_params.get("csv")) is not None:
            return csv_response(data["tables"], wanted, "users", language)
        return _page(dashboard, request, session, data)

    async def change(request: Request, session: Session) -> Response:
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        action = request.path_params.get("action", "create")
        name = request.path_params.get("name") or fields.get("name", "")
        try:
            user, detail = await run_in_threadpool(_change, dashboard, action, name, fields)
        except (TouchpointsError, PasswordsDiffer) as exc:
            language = dashboard.language(request)
            data = await run_in_threadpool(_data, dashboard, language)
            error = language.explain(exc)
            form = {"name": fields.get("name", ""), "role": fields.get("role", "analyst")}
            return _page(
                dashboard,
                request,
                session,
                data,
                error=error,
                failed=(action, name),
                form=form,
                status=status_of(exc),
            )
        actor = session.actor.id
        await dashboard.audit(request, actor, f"user.{action}", f"user:{user.id}", detail)
        done = urlencode({"done": action, "user": user.name})
        return RedirectResponse(f"/users?{done}", status_code=303)

    return [
        Route("/users", dashboard.page(users, PERMISSION)),
        Route("/users/new", dashboard.page(change, PERMISSION), methods=["POST"]),
        Route(
            "/users/{name}/{action:str}",
            dashboard.page(change, PERMISSION),
            methods=["POST"],
        ),
    ]


def _change(
    dashboard: Dashboard, action: str, name: str, fields: dict[str, str]
) -> tuple[User, str]:
    """Do what the form asks through ``tp.users``: the user after it, and the audit detail
    (as ``/v1/users`` records it)."""
    users = dashboard.tp.users
    if action in ("create", "password"):
        password = fields.get("password", "")
        if password != fields.get("password_again", ""):
            raise PasswordsDiffer(N_("the two passwords differ: type the same one twice"))
        if action == "create":
            user = users.create(name, fields.get("role", ""), password)
            return user, f"role {user.role}"
        return users.set_password(name, password), "password set"
    if action == "role":
        before = users.get(name).role
        user = users.set_role(name, fields.get("role", ""))
        return user, f"{before} → {user.role}"
    if action == "disable":
        return users.disable(name), "disabled"
    if action == "enable":
        return users.enable(name), "enabled"
    raise InvalidRequest(f"no such change to a user: {action!r}")


def _page(
    dashboard: Dashboard,
    request: Request,
    session: Session,
    data: dict[str, Any],
    *,
    error: str | None = None,
    failed: tuple[str, str] | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    done = request.query_params.get("done")
    return dashboard.render(
        request,
        "users.html",
        session,
        status_code=status,
        **data,
        error=error,
        failed=failed,
        form=form or {"name": "", "role": "analyst"},
        done=done if done in ("create", "role", "disable", "enable", "password") else None,
        done_user=data["by_name"].get(request.query_params.get("user", "")),
        roles=USER_ROLES,
    )


def _data(dashboard: Dashboard, language: Language) -> dict[str, Any]:
    _ = language.gettext
    users = dashboard.tp.users.list()  # what GET /v1/users gives

    def role(name: str) -> Shown:
        return Shown(name, labels.label(language, "user role", name))

    user_table = Table(
        "users",
        _("Users"),
        [_("name"), _("role"), _("created"), _("last sign-in"), _("password set"), _("disabled")],
        [
            [
                user.name,
                role(user.role),
                user.created_at,
                user.last_signin_at,
                user.password_changed_at,
                user.disabled_at,
            ]
            for user in users
        ],
    )
    permissions = [p for p in PERMISSION_ORDER if p in ALL]
    role_table = Table(
        "roles",
        _("What each role may do"),
        [_("role"), *[labels.label(language, "permission", p) for p in permissions]],
        [
            [
                role(name),
                *[
                    Shown(p in USER_PERMISSIONS[name], "✓" if p in USER_PERMISSIONS[name] else "")
                    for p in permissions
                ],
            ]
            for name in USER_ROLES
        ],
    )
    return {
        "users": users,
        "by_name": {user.name: user for user in users},
        "tables": {t.name: t for t in (user_table, role_table)},
    }
