"""Dashboard users: a name, a role (viewer, analyst, privacy_officer, admin; their permissions
in :mod:`touchpoints.access.roles`) and a password kept only as an argon2 hash.

Passwords are hashed with argon2id at argon2-cffi's recommended parameters (RFC 9106's
low-memory profile: 64 MiB, 3 passes, 4 lanes), each with its own salt; a hash made with
older parameters is made again at the next sign-in. Checking a password compares in constant
time (argon2's own comparison), and a name that has no account is checked against a dummy
hash, so the answer takes as long for an unknown name as for a wrong password and says the
same: the time does not tell which names exist. At most four hashes are computed at once
(each takes 64 MiB).

The users are held in memory (a dictionary by id, written through to the ``users`` table),
so a dashboard session checks on every request that its user is still enabled and has the
role it signed in with. Names are kept in lower case and are unique.
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass, replace
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import Field

from touchpoints.access.roles import USER_PERMISSIONS, USER_ROLES, UserRole
from touchpoints.access.store import StoredUser, UserTable
from touchpoints.answers import Answer
from touchpoints.errors import Conflict, InvalidRequest, NotFound
from touchpoints.times import UtcTime
from touchpoints.warehouse import Warehouse, utc_now

NAME_MAX = 64
PASSWORD_MIN = 12
PASSWORD_MAX = 1024  # longer would only make each hash slower (a way to tie up the server)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@\-]*$")
_HASHES_AT_ONCE = 4


class UserRefused(InvalidRequest):
    """A user operation that cannot be done as asked; the message names the field."""


class UserNotFound(NotFound):
    """No user has that name."""


class LastAdmin(Conflict):
    """The change would leave no enabled admin user."""


@dataclass(frozen=True)
class User:
    id: str
    name: str
    role: UserRole
    created_at: datetime
    changed_at: datetime
    password_changed_at: datetime
    last_signin_at: datetime | None = None
    disabled_at: datetime | None = None

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    def allows(self, permission: str) -> bool:
        return self.enabled and permission in USER_PERMISSIONS[self.role]

    def info(self) -> UserInfo:
        return UserInfo(
            id=self.id,
            name=self.name,
            role=self.role,
            created_at=self.created_at,
            changed_at=self.changed_at,
            password_changed_at=self.password_changed_at,
            last_signin_at=self.last_signin_at,
            disabled_at=self.disabled_at,
        )


class UserInfo(Answer):
    """A user as the API shows it (never the password or its hash)."""

    id: str = Field(description="usr_…: how the audit log names the user")
    name: str
    role: UserRole
    created_at: UtcTime
    changed_at: UtcTime = Field(description="Last change of role, password or status")
    password_changed_at: UtcTime
    last_signin_at: UtcTime | None
    disabled_at: UtcTime | None


class UserList(Answer):
    users: list[UserInfo] = Field(description="Oldest first")


@dataclass(frozen=True)
class Attempt:
    """A sign-in's outcome: ``user`` is the account the name names (also when the password
    was wrong), ``reason`` what the audit log records ("wrong password"); a person at the
    form is only ever told that the name or the password is wrong."""

    user: User | None
    ok: bool
    reason: str


class Passwords:
    """argon2id hashing, at most a few at once (each takes 64 MiB for a moment)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._slots = threading.BoundedSemaphore(_HASHES_AT_ONCE)
        self._dummy: str | None = None  # made at the first unknown name, not at every start

    def hash(self, password: str) -> str:
        with self._slots:
            return self.hasher.hash(password)

    def verify(self, digest: str | None, password: str) -> bool:
        """Whether ``password`` fits ``digest``; with no digest (no such user), the same
        work against a dummy hash, and False."""
        if digest is None and self._dummy is None:
            self._dummy = self.hash(secrets.token_urlsafe(24))
        against = digest or self._dummy or ""
        with self._slots:
            try:
                return self.hasher.verify(against, password) and digest is not None
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def outdated(self, digest: str) -> bool:
        return self.hasher.check_needs_rehash(digest)


def normal_name(name: str) -> str:
    return name.strip().lower()


def check_name(name: str) -> str:
    """``name`` in its normal form (lower case), or :class:`UserRefused` saying why not."""
    found = normal_name(name)
    if not found:
        raise UserRefused("name: give the user a name")
    if len(found) > NAME_MAX:
        raise UserRefused(f"name: at most {NAME_MAX} characters")
    if not _NAME.match(found):
        raise UserRefused("name: use letters, digits and . _ @ - (starting with a letter or digit)")
    return found


def check_password(password: str, name: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise UserRefused(f"password: at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise UserRefused(f"password: at most {PASSWORD_MAX} characters")
    if not password.strip():
        raise UserRefused("password: not only spaces")
    if len(normal_name(name)) >= 3 and normal_name(name) in password.lower():
        raise UserRefused("password: must not contain the user's name")
    return password


def check_role(role: str) -> UserRole:
    if role not in USER_ROLES:
        raise UserRefused(f"role: {role!r} is not a role; use one of {', '.join(USER_ROLES)}")
    return role


def _user(row: StoredUser) -> User:
    return User(
        id=row.id,
        name=row.name,
        role=row.role,  # type: ignore[arg-type]
        created_at=row.created_at,
        changed_at=row.changed_at,
        password_changed_at=row.password_changed_at,
        last_signin_at=row.last_signin_at,
        disabled_at=row.disabled_at,
    )


class Users:
    """The dashboard's users (see the module's docstring)."""

    def __init__(self, warehouse: Warehouse, passwords: Passwords | None = None) -> None:
        self._table = UserTable(warehouse)
        self.passwords = passwords or Passwords()
        self._lock = threading.RLock()  # one change at a time: names stay unique
        self._by_id: dict[str, User] = {}
        self._hashes: dict[str, str] = {}
        for row in self._table.all():
            self._by_id[row.id] = _user(row)
            self._hashes[row.id] = row.password_hash

    # -- reading ---------------------------------------------------------------------------
    def list(self) -> list[User]:
        with self._lock:
            return sorted(self._by_id.values(), key=lambda u: (u.created_at, u.id))

    def get(self, name: str) -> User:
        found = self.find(name)
        if found is None:
            raise UserNotFound(f"no user named {normal_name(name)!r}")
        return found

    def active(self, user_id: str) -> User | None:
        """The user with ``user_id`` while enabled (a dictionary lookup: sessions ask on every
        request)."""
        user = self._by_id.get(user_id)
        return user if user is not None and user.enabled else None

    def find(self, name: str) -> User | None:
        """The user named ``name`` (in any letter case), or None."""
        name = normal_name(name)
        with self._lock:
            return next((u for u in self._by_id.values() if u.name == name), None)

    # -- changes ---------------------------------------------------------------------------
    def create(self, name: str, role: str, password: str) -> User:
        name = check_name(name)
        role = check_role(role)
        check_password(password, name)
        digest = self.passwords.hash(password)
        now = utc_now()
        user = User(f"usr_{secrets.token_hex(6)}", name, role, now, now, now)
        with self._lock:
            if self.find(name) is not None:
                raise UserRefused(f"name: a user named {name!r} exists already")
            self._write(user, digest, new=True)
        return user

    def set_role(self, name: str, role: str) -> User:
        """Give the user ``role``; their sessions end (they sign in again with it)."""
        role = check_role(role)
        with self._lock:
            user = self.get(name)
            if user.role == role:
                return user
            if user.role == "admin" and user.enabled:
                self._keep_an_admin(user, f"make {user.name!r} a {role}")
            return self._write(replace(user, role=role, changed_at=utc_now()))

    def disable(self, name: str) -> User:
        """Disable the account: it can no longer sign in, and its sessions end now."""
        with self._lock:
            user = self.get(name)
            if not user.enabled:
                return user
            if user.role == "admin":
                self._keep_an_admin(user, f"disable {user.name!r}")
            now = utc_now()
            return self._write(replace(user, disabled_at=now, changed_at=now))

    def enable(self, name: str) -> User:
        with self._lock:
            user = self.get(name)
            if user.enabled:
                return user
            return self._write(replace(user, disabled_at=None, changed_at=utc_now()))

    def set_password(self, name: str, password: str) -> User:
        """A new password; the user's sessions end."""
        user = self.get(name)
        check_password(password, user.name)
        digest = self.passwords.hash(password)
        with self._lock:
            user = self.get(name)
            now = utc_now()
            return self._write(replace(user, password_changed_at=now, changed_at=now), digest)

    def _keep_an_admin(self, user: User, doing: str) -> None:
        others = [
            u for u in self._by_id.values() if u.role == "admin" and u.enabled and u.id != user.id
        ]
        if not others:
            raise LastAdmin(
                f"cannot {doing}: it is the last enabled admin user; make another user an "
                "admin first"
            )

    def _write(self, user: User, digest: str | None = None, new: bool = False) -> User:
        digest = digest or self._hashes[user.id]
        row = StoredUser(
            user.id,
            user.name,
            user.role,
            digest,
            user.created_at,
            user.changed_at,
            user.password_changed_at,
            user.last_signin_at,
            user.disabled_at,
        )
        if new:
            self._table.insert(row)
        else:
            self._table.update(row)
        self._by_id[user.id] = user
        self._hashes[user.id] = digest
        return user

    # -- signing in ------------------------------------------------------------------------
    def authenticate(self, name: str, password: str) -> Attempt:
        """Check a name and password (see the module's docstring: the same work and the
        same refusal for an unknown name, a wrong password and a disabled account)."""
        password = password[:PASSWORD_MAX]
        user = self.find(name[: NAME_MAX + 2])
        digest = self._hashes.get(user.id) if user is not None else None
        fits = self.passwords.verify(digest, password)
        if user is None:
            return Attempt(None, False, "unknown name")
        if not fits:
            return Attempt(user, False, "wrong password")
        if not user.enabled:
            return Attempt(user, False, "disabled")
        with self._lock:
            current = self._by_id[user.id]
            if current.password_changed_at != user.password_changed_at:
                return Attempt(current, False, "password changed meanwhile")
            rehash = (
                self.passwords.hash(password) if self.passwords.outdated(digest or "") else None
            )
            signed_in = self._write(replace(current, last_signin_at=utc_now()), rehash)
        return Attempt(signed_in, True, "signed in")
