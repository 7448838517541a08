"""The access part's tables: ``api_keys`` (each key's role, name, prefix and SHA-256, never
the key itself), ``users`` (dashboard accounts, an argon2 hash of each password) and
``audit_log`` with its chain head ``audit_head``.

:class:`touchpoints.access.keys.KeyStore` keeps the keys in memory for verification and
writes through here; so do :class:`touchpoints.access.users.Users` and
:class:`touchpoints.access.audit.AuditLog`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import pyarrow as pa

from touchpoints.warehouse import Warehouse


class StoredKey(NamedTuple):
    id: str
    role: str
    name: str | None
    prefix: str
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None
    source: str | None = None


class ApiKeyTable:
    """Reads and writes of ``api_keys`` (named apart from ``KeyStore``, the in-memory
    verifier over it)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def all(self) -> list[StoredKey]:
        rows = self.warehouse.fetchall(f"SELECT {', '.join(StoredKey._fields)} FROM api_keys")
        return [StoredKey(*row) for row in rows]

    def insert(self, key: StoredKey) -> None:
        self.warehouse.run(
            "INSERT INTO api_keys (id, role, name, prefix, key_hash, created_at, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [key.id, key.role, key.name, key.prefix, key.key_hash, key.created_at, key.source],
        )

    def revoke(self, key_id: str, at: datetime) -> None:
        self.warehouse.run("UPDATE api_keys SET revoked_at = ? WHERE id = ?", [at, key_id])


# -- users -------------------------------------------------------------------------------------
class StoredUser(NamedTuple):
    id: str
    name: str
    role: str
    password_hash: str
    created_at: datetime
    changed_at: datetime
    password_changed_at: datetime
    last_signin_at: datetime | None
    disabled_at: datetime | None


_USER_COLUMNS = ", ".join(StoredUser._fields)


class UserTable:
    """Reads and writes of ``users``."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def all(self) -> list[StoredUser]:
        rows = self.warehouse.fetchall(f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at")
        return [StoredUser(*row) for row in rows]

    def insert(self, user: StoredUser) -> None:
        marks = ", ".join("?" for _ in StoredUser._fields)
        self.warehouse.run(f"INSERT INTO users ({_USER_COLUMNS}) VALUES ({marks})", list(user))

    def update(self, user: StoredUser) -> None:
        """Write every column of ``user`` but its id (the row it names)."""
        columns = ", ".join(f"{name} = ?" for name in StoredUser._fields[1:])
        self.warehouse.run(f"UPDATE users SET {columns} WHERE id = ?", [*user[1:], user.id])


# -- the audit log -----------------------------------------------------------------------------
class StoredLine(NamedTuple):
    seq: int
    logged_at: datetime
    actor: str
    action: str
    target: str | None
    origin: str | None
    detail: str | None
    prev_hash: str
    hash: str


_LINE_COLUMNS = ", ".join(StoredLine._fields)
_LINE_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("logged_at", pa.timestamp("us")),
        ("actor", pa.string()),
        ("action", pa.string()),
        ("target", pa.string()),
        ("origin", pa.string()),
        ("detail", pa.string()),
        ("prev_hash", pa.string()),
        ("hash", pa.string()),
    ]
)


class AuditTable:
    """Appends to ``audit_log`` (with its head, in one transaction) and reads of it. Nothing
    here changes or deletes a line."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the chain's head as stored."""
        seq, digest = self.warehouse.fetchall("SELECT seq, hash FROM audit_head")[0]
        return int(seq), str(digest)

    def append(self, lines: Sequence[StoredLine]) -> None:
        """Add ``lines`` (in order, continuing the chain) and move the head to the last."""
        if not lines:
            return
        batch = pa.Table.from_pylist([line._asdict() for line in lines], schema=_LINE_SCHEMA)
        with self.warehouse.transaction() as cursor:
            self.warehouse.insert_arrow("audit_log", _LINE_COLUMNS, batch, cursor=cursor)
            self.warehouse.run(
                "UPDATE audit_head SET seq = ?, hash = ?",
                [lines[-1].seq, lines[-1].hash],
                cursor=cursor,
            )

    def lines(self, after: int = 0, limit: int = 10_000) -> list[StoredLine]:
        """Lines with a number above ``after``, in order (for verifying the chain)."""
        rows = self.warehouse.fetchall(
            f"SELECT {_LINE_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
            [after, limit],
        )
        return [StoredLine(*row) for row in rows]

    def search(
        self,
        *,
        actor: str | None,
        action: str | None,
        since: datetime | None,
        until: datetime | None,
        before: int | None,
        limit: int,
    ) -> tuple[int, list[StoredLine]]:
        """(how many lines match, the newest ``limit`` of them below number ``before``)."""
        where, params = _audit_filter(actor, action, since, until)
        total = int(self.warehouse.scalar(f"SELECT count(*) FROM audit_log WHERE {where}", params))
        if before is not None:
            where += " AND seq < ?"
            params.append(before)
        rows = self.warehouse.fetchall(
            f"SELECT {_LINE_COLUMNS} FROM audit_log WHERE {where} ORDER BY seq DESC LIMIT ?",
            [*params, limit],
        )
        return total, [StoredLine(*row) for row in rows]


def _audit_filter(
    actor: str | None, action: str | None, since: datetime | None, until: datetime | None
) -> tuple[str, list[Any]]:
    """A WHERE clause and its parameters: an action ending in ``.`` takes all of its kind
    (``user.`` for every change to users)."""
    where: list[str] = ["true"]
    params: list[Any] = []
    if actor is not None:
        where.append("actor = ?")
        params.append(actor)
    if action is not None and action.endswith("."):
        where.append("starts_with(action, ?)")
        params.append(action)
    elif action is not None:
        where.append("action = ?")
        params.append(action)
    if since is not None:
        where.append("logged_at >= ?")
        params.append(since)
    if until is not None:
        where.append("logged_at < ?")
        params.append(until)
    return " AND ".join(where), params
