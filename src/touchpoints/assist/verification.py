"""Proving who a customer is, before the assistant says anything personal.

- **Signed in.** A site that signed its user in proves it the way Intercom's identity
  verification does: with the user id it sends ``user_hash``, the hex HMAC-SHA256 of the
  user id keyed with ``assistant_identity_secret`` (computed on the site's server, never in
  the browser). :func:`user_hash` computes it; :func:`signed_in` checks it in constant time.
- **A one-time code** sent through a destination (by e-mail or SMS) to the address or number
  given or on file: six digits, valid ``assistant_code_minutes``, ``assistant_code_tries``
  attempts; only its hash (and the way it went, so every answer about it names that way) is
  kept, in memory, never in the database or a log (:class:`Codes`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def user_hash(secret: str, user_id: str) -> str:
    """The proof a site sends with a signed-in user's id."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def signed_in(secret: str | None, user_id: str, given: str | None) -> bool:
    if not secret or not given:
        return False
    return hmac.compare_digest(user_hash(secret, user_id), given.strip().lower())


def _digest(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


@dataclass
class _Pending:
    digest: bytes | None  # None: the address was nobody's (every code is wrong)
    person: int | None
    expires: datetime
    tries: int
    via: str


@dataclass(frozen=True)
class Checked:
    """A code's check: ``person`` when right; else why (wrong, expired, no_code, used_up)
    and the tries left; ``via``: how the code went (email, sms; None: no code was sent)."""

    person: int | None
    reason: str | None = None
    tries_left: int = 0
    via: str | None = None


class Codes:
    """One-time codes per conversation, in memory (a restart forgets them: ask again)."""

    def __init__(
        self,
        tries: int,
        minutes: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.tries = tries
        self.minutes = minutes
        self.clock = clock
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def issue(
        self, conversation: str, person: int | None, via: str = "email", now: datetime | None = None
    ) -> str:
        """A new code for ``conversation`` (replacing one before), to go out ``via`` (email,
        sms); for ``person`` None (an address nobody has) a code is made all the same, so the
        answer is the same, but no code is right."""
        now = now or self.clock()
        code = f"{secrets.randbelow(1_000_000):06d}"
        with self._lock:
            self._pending[conversation] = _Pending(
                _digest(code) if person is not None else None,
                person,
                now + timedelta(minutes=self.minutes),
                self.tries,
                via,
            )
        return code

    def waiting(self, conversation: str) -> bool:
        with self._lock:
            return conversation in self._pending

    def check(self, conversation: str, code: str, now: datetime | None = None) -> Checked:
        now = now or self.clock()
        with self._lock:
            pending = self._pending.get(conversation)
            if pending is None:
                return Checked(None, "no_code")
            if now >= pending.expires:
                del self._pending[conversation]
                return Checked(None, "expired", via=pending.via)
            pending.tries -= 1
            right = pending.digest is not None and hmac.compare_digest(
                pending.digest, _digest(code.strip())
            )
            if right:
                del self._pending[conversation]
                return Checked(pending.person, via=pending.via)
            if pending.tries <= 0:
                del self._pending[conversation]
                return Checked(None, "used_up", via=pending.via)
            return Checked(None, "wrong", pending.tries, pending.via)

    def forget(self, conversation: str) -> None:
        with self._lock:
            self._pending.pop(conversation, None)
