"""Dashboard sessions: opened by a user's name and password, or by a read or admin key, then
held by a cookie.

The cookie holds only a random token (``secrets.token_urlsafe``); what it stands for stays in
this process's memory. Every request checks that the session's grounds still hold: its key
still live (revoking a key ends its sessions at once), its user still enabled, with the role
and the password they signed in with (a disabled user, a changed role or a new password ends
their sessions at once). Sessions end after ``lifetime`` (12 hours), at sign-out, and with
the process (a restarted server asks again). Each session has its own token for forms
(CSRF); the sign-in form, before any session, has a signed one of its own
(:class:`LoginTokens`). At most ``max_sessions`` are kept: past that, the oldest ends.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from touchpoints.access.keys import ApiKey, KeyStore
from touchpoints.access.roles import KEY_PERMISSIONS, USER_PERMISSIONS
from touchpoints.access.users import User, Users
from touchpoints.web.i18n import N_, Explained

COOKIE = "tp_session"
LOGIN_COOKIE = "tp_login"
LIFETIME_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000
TOKEN_MAX = 100  # a cookie longer than any token made here is not looked up


class LoginRefused(Explained):
    """The key cannot open the dashboard; the message says why, for the login form (in the
    reader's language: ``Language.explain``)."""


@dataclass(frozen=True)
class Actor:
    """Who a session acts for: a key or a user, as the audit log names them (``id``)."""

    id: str
    kind: Literal["key", "user"]
    role: str
    name: str  # the user's name, or the key's prefix
    permissions: frozenset[str]

    def allows(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def target(self) -> str:
        """The actor as an audit line's target: ``user:usr_…`` or ``key:key_…``."""
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Session:
    token: str
    csrf: str  # goes into every form; a form post without it is refused
    actor: Actor
    expires: float  # time.monotonic()
    live: Callable[[], bool] = field(repr=False, compare=False)  # its grounds still hold

    @property
    def admin(self) -> bool:
        return self.actor.allows("admin")

    def allows(self, permission: str) -> bool:
        return self.actor.allows(permission)


def key_actor(key: ApiKey) -> Actor:
    return Actor(key.id, "key", key.role, key.prefix, KEY_PERMISSIONS[key.role])


def user_actor(user: User) -> Actor:
    return Actor(user.id, "user", user.role, user.name, USER_PERMISSIONS[user.role])


class Sessions:
    def __init__(
        self,
        keys: KeyStore,
        users: Users | None = None,
        lifetime: float = LIFETIME_SECONDS,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._keys = keys
        self._users = users
        self._lifetime = lifetime
        self._max = max_sessions
        self._lock = threading.Lock()
        self._by_token: dict[str, Session] = {}

    def login(self, secret: str) -> Session:
        """A new session for a live read or admin key."""
        secret = secret.strip()
        if not secret:
            raise LoginRefused(N_("give a read or admin key"))
        key = self.key_of(secret)
        if key is None:
            raise LoginRefused(N_("this key is not valid (unknown or revoked)"))
        if not (key.allows("analytics") or key.allows("profiles")):
            raise LoginRefused(
                N_("a %(role)s key only sends events; sign in with a read or admin key"),
                role=key.role,
            )
        return self._open(key_actor(key), lambda: self._keys.verify(secret) is not None)

    def key_of(self, secret: str) -> ApiKey | None:
        """The live key of ``secret`` (for the sign-in's audit line), or None."""
        return self._keys.verify(secret.strip()) if secret.strip() else None

    def open_for(self, user: User) -> Session:
        """A new session for a user whose name and password were just checked."""
        users = self._users
        assert users is not None, "sessions for users need the users"
        signed_in = (user.role, user.password_changed_at)

        def live() -> bool:
            now = users.active(user.id)
            return now is not None and (now.role, now.password_changed_at) == signed_in

        return self._open(user_actor(user), live)

    def _open(self, actor: Actor, live: Callable[[], bool]) -> Session:
        session = Session(
            token=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(24),
            actor=actor,
            expires=time.monotonic() + self._lifetime,
            live=live,
        )
        with self._lock:
            self._forget_expired()
            while len(self._by_token) >= self._max:  # the oldest ends first
                del self._by_token[next(iter(self._by_token))]
            self._by_token[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The session of ``token`` while it lasts and its grounds hold."""
        if not token or len(token) > TOKEN_MAX:
            return None
        with self._lock:
            session = self._by_token.get(token)
        if session is None:
            return None
        if session.expires < time.monotonic() or not session.live():
            self.logout(token)
            return None
        return session

    def logout(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._by_token.pop(token, None)

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self._by_token.items() if s.expires < now]:
            del self._by_token[token]


class LoginTokens:
    """The sign-in form's CSRF token, before there is a session: a random nonce signed with
    this process's key, set as a cookie and put into the form; a sign-in is taken only when
    the two are the same and the signature fits (another site can make a browser post the
    form, but cannot read or set the cookie's value)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._key, nonce.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._sign(nonce)}"

    def valid(self, cookie: str | None, field: str | None) -> bool:
        if not cookie or not field or len(cookie) > TOKEN_MAX:
            return False
        if not hmac.compare_digest(cookie.encode(), field.encode()):
            return False
        nonce, _dot, signature = cookie.partition(".")
        return hmac.compare_digest(signature.encode(), self._sign(nonce).encode())
