"""Dashboard sessions: a read or admin key given once at the login form, then a cookie.

The cookie holds only a random token (``secrets.token_urlsafe``); the key stays in this
process's memory, and every request checks it is still live, so revoking a key ends its
sessions at once. Sessions end after ``lifetime`` or at logout, and with the process (a
restarted server asks again). Each session has its own token for forms (CSRF).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from touchpoints.access.keys import ApiKey, KeyStore
from touchpoints.web.i18n import N_, Explained

COOKIE = "tp_session"
LIFETIME_SECONDS = 12 * 3600


class LoginRefused(Explained):
    """The key cannot open the dashboard; the message says why, for the login form (in the
    reader's language: ``Language.explain``)."""


@dataclass(frozen=True)
class Session:
    token: str
    csrf: str  # goes into every form; a form post without it is refused
    key: ApiKey
    expires: float  # time.monotonic()

    @property
    def admin(self) -> bool:
        return self.key.allows("admin")


class Sessions:
    def __init__(self, keys: KeyStore, lifetime: float = LIFETIME_SECONDS) -> None:
        self._keys = keys
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self._by_token: dict[str, tuple[Session, str]] = {}  # token -> (session, secret)

    def login(self, secret: str) -> Session:
        """A new session for a live read or admin key."""
        secret = secret.strip()
        if not secret:
            raise LoginRefused(N_("give a read or admin key"))
        key = self._keys.verify(secret)
        if key is None:
            raise LoginRefused(N_("this key is not valid (unknown or revoked)"))
        if not key.allows("read"):
            raise LoginRefused(
                N_("a %(role)s key only sends events; sign in with a read or admin key"),
                role=key.role,
            )
        session = Session(
            token=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(24),
            key=key,
            expires=time.monotonic() + self._lifetime,
        )
        with self._lock:
            self._forget_expired()
            self._by_token[session.token] = (session, secret)
        return session

    def get(self, token: str | None) -> Session | None:
        """The session of ``token`` while it lasts and its key is live."""
        if not token:
            return None
        with self._lock:
            found = self._by_token.get(token)
        if found is None:
            return None
        session, secret = found
        if session.expires < time.monotonic() or self._keys.verify(secret) is None:
            self.logout(token)
            return None
        return session

    def logout(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._by_token.pop(token, None)

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for token in [t for t, (s, _k) in self._by_token.items() if s.expires < now]:
            del self._by_token[token]
