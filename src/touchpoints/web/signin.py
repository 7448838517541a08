"""Signing in to the dashboard and out again.

The sign-in form takes a user's name and password, or a read or admin key. Before anything
else it checks the form's own CSRF token (:class:`~touchpoints.web.sessions.LoginTokens`: a
login form another site posts in the reader's browser is refused), then the sign-in limits
(:class:`~touchpoints.access.lockout.SignInLimiter`: after 10 failures in 15 minutes for a
name, or from an address, 429 with ``Retry-After``). A wrong password, an unknown name and a
disabled account are told apart only in the audit log; the form says the same for each.

Every outcome is recorded in the audit log: ``signin.success``, ``signin.failure`` (with
the reason), ``signin.locked`` and ``session.signout``; the actor of a refused attempt is
``anonymous`` (anyone can type a name), its target the account named (``user:usr_…``, or
``user:unknown``: the name typed is never recorded, it could be a password typed one field
too early).

The session cookie is http-only, same-site strict, and ``Secure`` when the request came over
https: to this server, or to a reverse proxy the operator trusts (``trusted_proxies``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from touchpoints.access.users import NAME_MAX, PASSWORD_MAX
from touchpoints.web.forms import form_fields
from touchpoints.web.i18n import N_, Explained
from touchpoints.web.sessions import COOKIE, LIFETIME_SECONDS, LOGIN_COOKIE, LoginRefused, Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

FORM_MAX = 4096  # a sign-in form is a few hundred bytes
WRONG = N_("the name or the password is wrong")


class SignInRefused(Explained):
    """A sign-in that is not taken, for the form (``status``: its answer's)."""

    def __init__(self, msgid: str, status: int = 401, **params: Any) -> None:
        super().__init__(msgid, **params)
        self.status = status
        self.headers: dict[str, str] = {}


def safe_next(target: str | None) -> str:
    """Where to go after the login: a path on this site only (no open redirect). Browsers
    read a backslash as a slash (``/\\evil.example`` is ``//evil.example``, another site)
    and drop tabs and line breaks, so a target with any of them is not taken either."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if any(char in target for char in "\\\t\r\n") or not target.isprintable():
        return "/"
    return target


async def login(dashboard: Dashboard, request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return _form(dashboard, request, target)
    fields = await form_fields(request, FORM_MAX)
    mode = "key" if "key" in fields else "user"
    try:
        if not dashboard.login_tokens.valid(request.cookies.get(LOGIN_COOKIE), fields.get("csrf")):
            raise SignInRefused(N_("the form is out of date: reload the page"), 403)
        if mode == "key":
            session = await _with_key(dashboard, request, fields.get("key", "")[:200])
        else:
            name = fields.get("name", "")[: NAME_MAX + 1]
            password = fields.get("password", "")[: PASSWORD_MAX + 1]
            session = await _with_password(dashboard, request, name, password)
    except SignInRefused as exc:
        error = dashboard.language(request).explain(exc)
        response = _form(dashboard, request, target, error, mode, exc.status)
        response.headers.update(exc.headers)
        return response
    response = RedirectResponse(dashboard.landing(session, target), status_code=303)
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=LIFETIME_SECONDS,
        httponly=True,
        samesite="strict",
        secure=dashboard.https(request),
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def _form(
    dashboard: Dashboard,
    request: Request,
    target: str,
    error: str | None = None,
    mode: str = "user",
    status: int = 200,
) -> Response:
    """The sign-in form with its CSRF token (the cookie's, or a new one)."""
    token = request.cookies.get(LOGIN_COOKIE)
    if not dashboard.login_tokens.valid(token, token):
        token = dashboard.login_tokens.issue()
    response = dashboard.render(
        request,
        "login.html",
        None,
        status_code=status,
        next=target,
        error=error,
        mode=mode,
        csrf=token,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token or "",
        httponly=True,
        samesite="strict",
        secure=dashboard.https(request),
        path="/login",
    )
    return response


def _check_limits(dashboard: Dashboard, request: Request, name: str | None) -> None:
    wait = dashboard.limiter.retry_after(name, dashboard.client(request))
    if wait is None:
        return
    user = dashboard.tp.users.find(name) if name else None
    target = f"user:{user.id}" if user else ("user:unknown" if name else None)
    dashboard.tp.audit.record(
        "anonymous", "signin.locked", target, dashboard.client(request), f"retry after {wait} s"
    )
    refused = SignInRefused(
        N_("too many failed sign-ins: try again in %(minutes)s minutes"),
        429,
        minutes=max(1, -(-wait // 60)),
    )
    refused.headers["Retry-After"] = str(wait)
    raise refused


async def _with_password(
    dashboard: Dashboard, request: Request, name: str, password: str
) -> Session:
    _check_limits(dashboard, request, name)
    client = dashboard.client(request)
    if not name.strip() or not password:
        raise SignInRefused(N_("give your user name and password"))
    attempt = await run_in_threadpool(dashboard.tp.users.authenticate, name, password)
    target = f"user:{attempt.user.id}" if attempt.user else "user:unknown"
    if not attempt.ok or attempt.user is None:
        dashboard.limiter.failed(name, client)
        await dashboard.audit(request, "anonymous", "signin.failure", target, attempt.reason)
        raise SignInRefused(WRONG)
    dashboard.limiter.succeeded(name)
    session = dashboard.sessions.open_for(attempt.user)
    await dashboard.audit(request, attempt.user.id, "signin.success", target, "password")
    return session


async def _with_key(dashboard: Dashboard, request: Request, secret: str) -> Session:
    _check_limits(dashboard, request, None)
    try:
        session = dashboard.sessions.login(secret)
    except LoginRefused as exc:
        key = dashboard.sessions.key_of(secret)
        target = f"key:{key.id}" if key else None
        dashboard.limiter.failed(None, dashboard.client(request))
        reason = f"{key.role} key" if key else "unknown or revoked key"
        await dashboard.audit(request, "anonymous", "signin.failure", target, reason)
        raise SignInRefused(exc.msgid, **exc.params) from None
    actor = session.actor
    await dashboard.audit(request, actor.id, "signin.success", actor.target, "key")
    return session


async def logout(dashboard: Dashboard, request: Request) -> Response:
    token = request.cookies.get(COOKIE)
    session = dashboard.sessions.get(token)
    fields = await form_fields(request, FORM_MAX)
    if session is not None and not dashboard.csrf_ok(session, fields):
        return dashboard.stale_form(request)
    dashboard.sessions.logout(token)
    if session is not None:
        actor = session.actor
        await dashboard.audit(request, actor.id, "session.signout", actor.target)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
