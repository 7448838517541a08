"""The one door to storage: opening the DuckDB file, migrations, and the SQL gateway.

Every query goes through :meth:`Warehouse.run`, which times it, logs it without parameters
(parameters can hold personal data) and re-raises failures with the query attached.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from touchpoints.warehouse.schema import LATEST_VERSION, MIGRATIONS

log = logging.getLogger("touchpoints.warehouse")


class WarehouseError(Exception):
    """A query failed; carries the query so the failing step is obvious."""

    def __init__(self, message: str, sql: str | None = None) -> None:
        super().__init__(message if sql is None else f"{message}\n  in query: {_short(sql)}")
        self.sql = sql


class WarehouseLocked(WarehouseError):
    """Another process (usually a running server) holds the DuckDB file."""

    def __init__(self, path: Path, holder_pid: int | None) -> None:
        who = f"process {holder_pid}" if holder_pid else "another process"
        super().__init__(
            f"{path} is held by {who}. A running touchpoints server owns its data directory: "
            "stop it, or run this command while it runs so it goes through the server's API."
        )
        self.holder_pid = holder_pid


def _short(sql: str) -> str:
    return " ".join(sql.split())[:500]


class Warehouse:
    """One DuckDB database; threads get their own cursor (DuckDB's rule for concurrency)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connection = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" in text.lower():
                match = re.search(r"PID (\d+)", text)
                raise WarehouseLocked(path, int(match.group(1)) if match else None) from None
            raise WarehouseError(f"cannot open {path}: {text}") from None
        self._local = threading.local()
        self._closed = False
        if not read_only:
            self.migrate()

    # -- connections -------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the shared database."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._connection.cursor()
            self._local.cursor = cursor
        return cursor

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._connection.close()

    # -- the gateway -------------------------------------------------------------------------
    def run(
        self,
        sql: str,
        params: Sequence[Any] | dict[str, Any] | None = None,
        *,
        cursor: duckdb.DuckDBPyConnection | None = None,
    ) -> duckdb.DuckDBPyConnection:
        """Execute one statement and return the cursor for fetching."""
        target = cursor or self.cursor()
        with _logged(sql):
            return target.execute(sql, params) if params is not None else target.execute(sql)

    def insert_arrow(
        self,
        table: str,
        columns: str,
        data: Any,
        cursor: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        """Append an Arrow table in one statement (row inserts are ~500 times slower).

        ``cursor``: the one holding an open transaction, to insert inside it (by default this
        thread's cursor, which is the same one on the same thread)."""
        cursor = cursor or self.cursor()
        cursor.register("_arrow_batch", data)
        try:
            self.run(f"INSERT INTO {table} ({columns}) SELECT * FROM _arrow_batch", cursor=cursor)
        finally:
            cursor.unregister("_arrow_batch")

    def fetch_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """A query's rows as one Arrow table (materialised: DuckDB 2's lazy readers would keep
        the cursor busy), through the same logging and errors as ``run``."""
        with _logged(sql):
            return self.cursor().sql(sql, params=params).to_arrow_table()

    def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list:
        return self.run(sql, params).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        rows = self.run(sql, params).fetchall()  # fetch to the end: DuckDB 2 keeps it busy else
        return rows[0][0] if rows else None

    # -- migrations --------------------------------------------------------------------------
    def schema_version(self) -> int:
        exists = self.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        )
        if not exists:
            return 0
        return int(self.scalar("SELECT coalesce(max(version), 0) FROM schema_migrations"))

    def migrate(self) -> list[int]:
        """Apply the migrations this file lacks, each in its own transaction."""
        self.run(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        current = self.schema_version()
        if current > LATEST_VERSION:
            raise WarehouseError(
                f"{self.path} has schema version {current}, newer than this touchpoints "
                f"({LATEST_VERSION}); upgrade touchpoints"
            )
        applied = []
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            cursor = self.cursor()
            self.run("BEGIN TRANSACTION", cursor=cursor)
            try:
                for statement in migration.statements:
                    self.run(statement, cursor=cursor)
                self.run(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    [migration.version, migration.name, utc_now()],
                    cursor=cursor,
                )
                self.run("COMMIT", cursor=cursor)
            except WarehouseError:
                self.run("ROLLBACK", cursor=cursor)
                raise
            applied.append(migration.version)
            log.info("applied migration %d: %s", migration.version, migration.name)
        return applied


def utc_now() -> datetime:
    """Naive UTC, the form every TIMESTAMP column holds."""
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def _logged(sql: str) -> Iterator[None]:
    """Time a query and log it (its text, never its parameters); a failure is re-raised as a
    WarehouseError carrying the query."""
    started = time.perf_counter()
    try:
        yield
    except duckdb.Error as exc:
        log.warning("query failed after %.1f ms: %s", _ms(started), _short(sql))
        raise WarehouseError(f"{type(exc).__name__}: {exc}", sql) from exc
    if log.isEnabledFor(logging.DEBUG):
        log.debug("query %.1f ms: %s", _ms(started), _short(sql))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
