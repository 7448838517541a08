"""API keys and roles.

Three roles: ``write`` sends events (the Segment write key), ``read`` reads analyses, events and
profiles, ``admin`` does everything, sending included (the permissions of each:
:mod:`touchpoints.access.roles`). A write key may be made for a named source
(``web-shop``): the events it sends are stamped with that source, whatever they say, and a
new key for the same source (a rotated one) carries on its events; a key made without one
stamps its own id, as keys always did. Only a SHA-256 of each key is stored; the key
itself is shown once, when it is made. Verification is a dictionary lookup on the hash, held
in memory because it runs on every collected request.

Whatever a caller sends is bounded before it costs anything: a secret longer than a key can
be (``tp_<role>_`` and 32 hex digits) is refused before it is hashed, an Authorization header
longer than one carrying a key is not decoded, and only secrets that verify are remembered
(their hashes, so each request skips SHA-256): unknown secrets of any size leave nothing
behind in memory.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import Field

from touchpoints.access.roles import KEY_PERMISSIONS, KEY_ROLES, KeyRole
from touchpoints.access.store import ApiKeyTable, StoredKey
from touchpoints.answers import Answer
from touchpoints.errors import InvalidRequest, NotFound
from touchpoints.followed import Followed
from touchpoints.times import UtcTime
from touchpoints.warehouse import Warehouse, utc_now

Role = KeyRole
ROLES: tuple[Role, ...] = KEY_ROLES
# What each role may do (defined in access/roles.py); a route names the permission it needs.
PERMISSIONS = KEY_PERMISSIONS


class KeyRefused(InvalidRequest):
    """A key operation was refused; the message says why."""


class KeyNotFound(NotFound):
    """No key has that id."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    role: Role
    name: str | None
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    # Lives only in this process's memory (the server's own tools): never rate-limited.
    ephemeral: bool = False
    # The source a write key was made for (None: its events' source is the key's id).
    source: str | None = None

    def allows(self, permission: str) -> bool:
        return self.revoked_at is None and permission in PERMISSIONS[self.role]

    @property
    def event_source(self) -> str:
        """The ``source`` stamped on every event this key sends."""
        return self.source or self.id

    def info(self) -> KeyInfo:
        """The key as the API shows it (never its secret)."""
        return KeyInfo(
            id=self.id,
            role=self.role,
            name=self.name,
            prefix=self.prefix,
            created_at=self.created_at,
            revoked_at=self.revoked_at,
            source=self.source,
        )


class KeyInfo(Answer):
    id: str
    role: Role
    name: str | None
    prefix: str = Field(description="The secret's first characters, to tell keys apart")
    created_at: UtcTime
    revoked_at: UtcTime | None
    source: str | None = Field(
        default=None,
        description="The source a write key's events are stamped with (none: the key's id)",
    )


class NewKeyInfo(KeyInfo):
    secret: str = Field(description="Shown this once: only its hash is kept")


class KeyList(Answer):
    keys: list[KeyInfo] = Field(description="Oldest first")


# The longest secret a key can have ("tp_admin_" and 32 hex digits); longer is no key.
MAX_SECRET_LENGTH = max(len(f"tp_{role}_") for role in ROLES) + 32
# An Authorization header holding such a secret: "Basic " and the base64 of "<secret>:",
# with room for a password an SDK may add (Segment's send an empty one).
MAX_HEADER_LENGTH = 256
# Verified secrets whose hash is remembered (each one a live key; cleared when full).
_DIGEST_CACHE_SIZE = 10_000
_HEADER_CACHE_SIZE = 1_000


# A source's name: what an operator calls a website or app (web-shop, ios.app, crm_sync).
SOURCE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
# Sources the server stamps itself (bulk import, its in-memory keys), and the shape of key
# ids (the source of keys made without one): a named source may not pass for any of them.
_RESERVED_SOURCES = frozenset({"import", "cli", "demo"})


def check_source(role: str, source: str | None) -> str | None:
    """``source`` if a key of ``role`` may be made for it; else :class:`KeyRefused` saying
    why."""
    if source is None:
        return None
    if role != "write":
        raise KeyRefused(f"only write keys send events, so only they have a source (not {role})")
    if not re.fullmatch(SOURCE_PATTERN, source):
        raise KeyRefused(
            f"source {source[:80]!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit"
        )
    if source.lower() in _RESERVED_SOURCES or source.lower().startswith("key_"):
        raise KeyRefused(
            f"source {source!r} is the server's own or looks like a key id; choose another name"
        )
    return source


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_from_header(header: str | None) -> str | None:
    """The key in ``Authorization: Bearer <key>`` or ``Basic base64(<key>:)`` (Segment's way)."""
    if not header or len(header) > MAX_HEADER_LENGTH:
        return None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def new_secret(role: Role) -> str:
    return f"tp_{role}_{secrets.token_hex(16)}"


class KeyVerifier:
    """Verifies secrets against the keys it holds by hash: the part of :class:`KeyStore` a
    collector process (:class:`KeyFile`) needs as well."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_hash: dict[str, ApiKey] = {}
        self._ephemeral: dict[str, ApiKey] = {}
        # secret → hash of verified secrets only, so each request skips SHA-256
        self._digests: dict[str, str] = {}
        # Authorization header → its secret, for headers of keys that verified only
        self._headers: dict[str, str] = {}

    def header_secret(self, header: str) -> str | None:
        """:func:`secret_from_header`, remembered per header once its key verified, so a hot
        route (the collector, decisions) parses each client's header once. Only headers of
        real keys are kept (at most ``MAX_HEADER_LENGTH`` long, as many as there are keys
        in use; the cache starts over past ``_HEADER_CACHE_SIZE``): a stream of made-up
        headers cannot grow it. Whether the key is still live is :meth:`verify`'s to say."""
        secret = self._headers.get(header)
        if secret is None:
            secret = secret_from_header(header)
            if secret is not None and self.verify(secret) is not None:
                if len(self._headers) >= _HEADER_CACHE_SIZE:
                    self._headers.clear()
                self._headers[header] = secret
        return secret

    def verify(self, secret: str) -> ApiKey | None:
        """The live key for a secret, or None (unknown or revoked). A secret longer than a
        key can be is refused unhashed; only the hashes of keys found are remembered."""
        digest = self._digests.get(secret)
        if digest is None:
            if len(secret) > MAX_SECRET_LENGTH:
                return None
            digest = _hash(secret)
            found = self._by_hash.get(digest) or self._ephemeral.get(digest)
            if found is None:
                return None
            if len(self._digests) >= _DIGEST_CACHE_SIZE:
                self._digests.clear()
            self._digests[secret] = digest
        key = self._by_hash.get(digest) or self._ephemeral.get(digest)
        if key is None or key.revoked_at is not None:
            return None
        return key


class KeyStore(KeyVerifier):
    def __init__(self, warehouse: Warehouse) -> None:
        super().__init__()
        self._table = ApiKeyTable(warehouse)
        # Told after every change (a server with collector processes writes their
        # :meth:`snapshot` then).
        self.on_change: Callable[[], object] | None = None
        self.reload()

    def snapshot(self) -> bytes:
        """The keys that may send events, as :class:`KeyFile` reads them: hashes, never
        secrets (the database holds the same)."""
        with self._lock:
            keys = [
                (digest, key)
                for table in (self._by_hash, self._ephemeral)
                for digest, key in table.items()
                if key.allows("collect")
            ]
        return orjson.dumps(
            [
                {
                    "hash": digest,
                    "id": key.id,
                    "role": key.role,
                    "name": key.name,
                    "prefix": key.prefix,
                    "created_at": key.created_at.isoformat(),
                    "ephemeral": key.ephemeral,
                    "source": key.source,
                }
                for digest, key in keys
            ]
        )

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def reload(self) -> None:
        rows = self._table.all()
        with self._lock:
            self._by_hash = {
                row.key_hash: ApiKey(
                    row.id,
                    row.role,  # type: ignore[arg-type]
                    row.name,
                    row.prefix,
                    row.created_at,
                    row.revoked_at,
                    source=row.source,
                )
                for row in rows
            }
        self._changed()

    def create(
        self, role: str, name: str | None = None, source: str | None = None
    ) -> tuple[ApiKey, str]:
        """Make a key (a write key may be for a ``source``); return it and its secret (the
        only time the secret is known)."""
        if role not in ROLES:
            raise KeyRefused(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        source = check_source(role, source)
        secret = new_secret(role)
        key = ApiKey(
            id=f"key_{secrets.token_hex(6)}",
            role=role,
            name=name,
            prefix=secret[: len(role) + 8],
            created_at=utc_now(),
            source=source,
        )
        self._table.insert(
            StoredKey(
                key.id,
                key.role,
                key.name,
                key.prefix,
                _hash(secret),
                key.created_at,
                None,
                key.source,
            )
        )
        with self._lock:
            self._by_hash[_hash(secret)] = key
        self._changed()
        return key, secret

    def add_ephemeral(self, role: Role, key_id: str) -> str:
        """A key that lives only in this process's memory (the server's control token, the
        demo loader); ``key_id`` becomes the ``source`` of the events it sends."""
        secret = new_secret(role)
        key = ApiKey(
            key_id, role, f"in-memory key {key_id}", secret[:12], utc_now(), ephemeral=True
        )
        with self._lock:
            self._ephemeral[_hash(secret)] = key
        self._changed()
        return secret

    def revoke(self, key_id: str) -> ApiKey:
        with self._lock:
            found = next((k for k in self._by_hash.values() if k.id == key_id), None)
        if found is None:
            raise KeyNotFound(f"no key with id {key_id!r}")
        if found.revoked_at is not None:
            return found
        revoked_at = utc_now()
        self._table.revoke(key_id, revoked_at)
        self.reload()
        return dataclasses.replace(found, revoked_at=revoked_at)

    def list(self) -> list[ApiKey]:
        with self._lock:
            return sorted(self._by_hash.values(), key=lambda k: (k.created_at, k.id))


class KeyFile(KeyVerifier):
    """The keys of a :meth:`KeyStore.snapshot` file, for a collector process that does not
    open the database: read again when the file changes (the owner writes it after every
    change of a key), checked at most once a ``recheck_seconds``."""

    def __init__(self, path: Path, recheck_seconds: float = 1.0) -> None:
        super().__init__()
        self.path = path
        self._file = Followed(path, recheck_seconds)
        self.refresh()

    def refresh(self) -> None:
        """Read the file again if it changed since it was last read (not written yet: no
        key verifies)."""
        found = self._file.fresh(_snapshot_keys)
        if found is None:
            return
        with self._lock:
            self._by_hash, self._ephemeral = found
            self._digests.clear()
            self._headers.clear()

    def verify(self, secret: str) -> ApiKey | None:
        if self._file.due():
            self.refresh()
        return super().verify(secret)


def _snapshot_keys(items: Any) -> tuple[dict[str, ApiKey], dict[str, ApiKey]]:
    """A :meth:`KeyStore.snapshot`'s keys by hash: (kept, ephemeral)."""
    by_hash: dict[str, ApiKey] = {}
    ephemeral: dict[str, ApiKey] = {}
    for item in items:
        key = ApiKey(
            item["id"],
            item["role"],
            item["name"],
            item["prefix"],
            datetime.fromisoformat(item["created_at"]),
            ephemeral=item["ephemeral"],
            source=item["source"],
        )
        (ephemeral if key.ephemeral else by_hash)[item["hash"]] = key
    return by_hash, ephemeral
