"""The ``api_keys`` table: each key's role, name, prefix and SHA-256, never the key itself.

The privacy part's storage; :class:`touchpoints.access.keys.KeyStore` keeps the keys in
memory for verification and writes through here.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

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
