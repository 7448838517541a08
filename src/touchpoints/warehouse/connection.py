"""The one door to storage: opening the DuckDB file, migrations, and the SQL gateway.

Every query goes through :func:`run_sql` or :func:`arrow_sql` (``Warehouse.run`` and
``Warehouse.fetch_arrow`` on the warehouse's own cursors), which time it, log it without
parameters (parameters can hold personal data) and re-raise failures with the query attached.
Transactions and temporary Arrow tables are context managers here, so no caller writes
BEGIN/COMMIT/ROLLBACK or register/unregister by hand (and none forgets the second half).

:meth:`Warehouse.compact` rewrites the file, so that what deleted rows left in its free blocks
is gone (an erasure must leave no byte of the person behind): it waits until no query runs,
copies the database into a fresh file, and swaps it in; threads get new cursors after it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
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


class _Gate:
    """Queries share the database; :meth:`Warehouse.compact` needs it alone. A reader-first
    lock, reentrant per thread (a transaction's statements run inside its block)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._closing = False
        self._local = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            with self._cond:
                while self._closing:
                    self._cond.wait()
                self._readers += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._cond:
                    self._readers -= 1
                    if self._readers == 0:
                        self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if getattr(self._local, "depth", 0):
            raise RuntimeError("the database cannot be had alone inside a query or transaction")
        with self._cond:
            while self._closing:
                self._cond.wait()
            self._closing = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._closing = False
                self._cond.notify_all()


# The database is attached under this name to an in-memory DuckDB, and every cursor uses it.
_CATALOG = "touchpoints"
# Rows per row group of what is written from now on (DuckDB's default: 122,880). A commit that
# fills the log to `checkpoint_threshold` runs the checkpoint itself, and the checkpoint of a
# full row group of events compresses every column of 122,880 events: up to 970 ms beside a
# writer on two cores (a checkpoint run from another thread holds the table against inserts
# just as long in DuckDB 2.0). With 16,384 the longest commit of a writer appending 2,000
# events at a time fell from 714-984 ms to 206 ms; in benchmarks/triggers.py (one process,
# 180 s, one run each) the longest append from 749 to 294 ms, the trigger's p99 from 983 to
# 806 ms (RESULTS.md, "Shorter checkpoints").
# Scans lose nothing measurable: benchmarks/journeys.py at a million events answered each
# analysis in the same median (within 0.03 s), and the file is as large (547 against 546 MB).
# The size is an option of ATTACH and not kept in the file (a DuckDB that opens the file
# itself writes 122,880 again), hence the attach.
_ROW_GROUP_SIZE = 16_384


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    # Spilled intermediates beside the file, where DuckDB puts them for a file it opens.
    spill = str(path.with_name(path.name + ".tmp"))
    connection = duckdb.connect(config={"temp_directory": spill})
    options = f"ROW_GROUP_SIZE {_ROW_GROUP_SIZE}" + (", READ_ONLY" if read_only else "")
    quoted = str(path).replace("'", "''")
    try:
        connection.execute(f"ATTACH '{quoted}' AS \"{_CATALOG}\" ({options})")
        connection.execute(f'USE "{_CATALOG}"')
    except BaseException:
        connection.close()
        raise
    return connection


def _release(connection: duckdb.DuckDBPyConnection) -> None:
    """Detach the file, then close. Closing alone leaves the file attached for as long as
    anything still holds the in-memory database, and DuckDB refuses the next open of that
    path in this process ("Unique file handle conflict"; seen once in CI, a command run in
    process and then the file opened by the same process). What holds it was not found; a
    detach frees the file unless a scan is still in flight (an Arrow reader not read to its
    end keeps it attached until the reader is freed)."""
    try:
        with suppress(duckdb.Error):
            connection.execute("USE memory")
            connection.execute(f'DETACH "{_CATALOG}"')
    finally:
        connection.close()


class Warehouse:
    """One DuckDB database; threads get their own cursor (DuckDB's rule for concurrency)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connection = _connect(path, read_only)
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" in text.lower():
                match = re.search(r"PID (\d+)", text)
                raise WarehouseLocked(path, int(match.group(1)) if match else None) from None
            raise WarehouseError(f"cannot open {path}: {text}") from None
        self._local = threading.local()
        self._closed = False
        self._gate = _Gate()
        self._generation = 0  # bumped when compact() opens a new connection
        # SQL compiled from Ibis expressions, by expression (ibis_gateway keeps it here, so
        # that it goes with the warehouse: the expressions hold cursors on it).
        self.compiled: OrderedDict[Any, str] = OrderedDict()
        if not read_only:
            self.migrate()

    # -- connections -------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the shared database."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None or self._local.generation != self._generation:
            cursor = self._connection.cursor()
            cursor.execute(f'USE "{_CATALOG}"')
            self._local.cursor = cursor
            self._local.generation = self._generation
        return cursor

    def using(self) -> contextlib.AbstractContextManager[None]:
        """Hold the database for a query or a block of them (compaction waits for it)."""
        return self._gate.shared()

    def compact(self) -> tuple[int, int]:
        """Rewrite the database into a fresh file and swap it in: deleted rows leave nothing
        in free blocks or in the log. Waits until no query runs, and holds every other query
        until the new file is open. Returns the file's size before (its log written in) and
        after, in bytes."""
        with self._gate.exclusive():
            fresh = self.path.with_name(self.path.name + ".compacting")
            for stale in (fresh, fresh.with_name(fresh.name + ".wal")):
                stale.unlink(missing_ok=True)
            cursor = self.cursor()
            run_sql(cursor, "CHECKPOINT")
            before = self.path.stat().st_size  # with what the log held
            run_sql(cursor, f"ATTACH '{fresh}' AS _tp_compacted")
            try:
                run_sql(cursor, f'COPY FROM DATABASE "{_CATALOG}" TO _tp_compacted')
            finally:
                run_sql(cursor, "DETACH _tp_compacted")
            os.chmod(fresh, 0o600)
            _release(self._connection)
            os.replace(fresh, self.path)
            self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)
            self._connection = _connect(self.path, False)
            self._generation += 1
            self.compiled.clear()  # their cursors were on the connection closed
            return before, self.path.stat().st_size

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.compiled.clear()
            _release(self._connection)

    # -- the gateway -------------------------------------------------------------------------
    def run(
        self,
        sql: str,
        params: Sequence[Any] | dict[str, Any] | None = None,
        *,
        cursor: duckdb.DuckDBPyConnection | None = None,
    ) -> duckdb.DuckDBPyConnection:
        """Execute one statement and return the cursor for fetching."""
        with self._gate.shared():
            return run_sql(cursor or self.cursor(), sql, params)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """BEGIN on this thread's cursor, yield it, COMMIT if the block ends normally, else
        ROLLBACK and re-raise: everything written through the cursor lands, or nothing does.

        DuckDB has no nested transactions; a block must not open another one."""
        with self._gate.shared():
            cursor = self.cursor()
            self.run("BEGIN TRANSACTION", cursor=cursor)
            committed: list[Callable[[], object]] = []
            self._local.after_commit = committed
            try:
                try:
                    yield cursor
                except BaseException:
                    _rollback(cursor)
                    raise
                try:
                    self.run("COMMIT", cursor=cursor)
                except WarehouseError:
                    _rollback(cursor)  # a commit that fails leaves nothing open behind it
                    raise
            finally:
                self._local.after_commit = None
        for callback in committed:
            callback()

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` when this thread's open :meth:`transaction` has committed (never,
        if it rolls back), or now if none is open: whoever it wakes finds what was written
        (a delivery worker woken before the commit found nothing, and waited for its next
        round)."""
        if getattr(self._local, "after_commit", None) is None:
            callback()
        else:
            self._local.after_commit.append(callback)

    def script(
        self, statements: Sequence[str], tables: Mapping[str, pa.Table] | None = None
    ) -> None:
        """Run ``statements`` in one transaction, in one call to DuckDB: all land, or none.

        The statements take no parameters: their data comes in ``tables`` (Arrow tables
        readable by those names during the call), and numbers the caller formats itself.
        Each call into DuckDB gives up the interpreter's lock and takes it back after; while
        the collector's event loop keeps the interpreter busy, each take-back waited about
        8 ms (a BEGIN as long as an INSERT of a batch; benchmarks/RESULTS.md, triggers), so a
        batch written in one call instead of five waits once instead of five times."""
        sql = ";\n".join(["BEGIN TRANSACTION", *statements, "COMMIT"])
        with self._gate.shared():
            cursor = self.cursor()
            names: list[str] = []
            try:
                for name, table in (tables or {}).items():
                    try:
                        cursor.register(name, table)
                    except duckdb.Error as exc:
                        raise WarehouseError(
                            f"cannot register {name!r}: {type(exc).__name__}: {exc}"
                        ) from exc
                    names.append(name)
            except BaseException:
                for name in names:
                    with suppress(duckdb.Error):
                        cursor.unregister(name)
                raise
            try:
                run_sql(cursor, sql)
            except BaseException:
                _rollback(cursor)  # what ran of them is undone; no transaction stays open
                raise
            finally:
                for name in names:
                    with suppress(duckdb.Error):
                        cursor.unregister(name)

    @contextmanager
    def registered(
        self, name: str, table: pa.Table, cursor: duckdb.DuckDBPyConnection | None = None
    ) -> Iterator[str]:
        """``table`` readable as ``name`` on ``cursor`` (this thread's by default) for the
        block, unregistered afterwards whatever happens (see :func:`registered`)."""
        with self._gate.shared(), registered(cursor or self.cursor(), name, table):
            yield name

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
        with self._gate.shared():
            cursor = cursor or self.cursor()
            with registered(cursor, "_arrow_batch", data):
                self.run(
                    f"INSERT INTO {table} ({columns}) SELECT * FROM _arrow_batch", cursor=cursor
                )

    def fetch_arrow(
        self,
        sql: str,
        params: Sequence[Any] | None = None,
        *,
        cursor: duckdb.DuckDBPyConnection | None = None,
    ) -> pa.Table:
        """A query's rows as one Arrow table (materialised: DuckDB 2's lazy readers would keep
        the cursor busy), through the same logging and errors as ``run``. ``cursor``: one
        whose temporary tables the query reads (by default this thread's)."""
        with self._gate.shared():
            return arrow_sql(cursor or self.cursor(), sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list:
        with self._gate.shared():
            return self.run(sql, params).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        with self._gate.shared():
            rows = self.run(sql, params).fetchall()  # fetch to the end: DuckDB 2 keeps it busy
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
        """Apply the migrations this file lacks (by number), each in its own transaction."""
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
        done = {version for (version,) in self.fetchall("SELECT version FROM schema_migrations")}
        applied = []
        for migration in MIGRATIONS:
            if migration.version in done:  # by number: a version merged late still comes
                continue
            with self.transaction() as cursor:
                for statement in migration.statements:
                    self.run(statement, cursor=cursor)
                self.run(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    [migration.version, migration.name, utc_now()],
                    cursor=cursor,
                )
            applied.append(migration.version)
            log.info("applied migration %d: %s", migration.version, migration.name)
        return applied


# -- the gateway, for any DuckDB cursor ---------------------------------------------------------
def run_sql(
    cursor: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    *,
    inline_values: bool = False,
) -> duckdb.DuckDBPyConnection:
    """Execute one statement on ``cursor``, logged and timed; the cursor, for fetching.

    A function as well as ``Warehouse.run``: matching runs Splink on a database of its own,
    and our statements there go through the same gateway. ``inline_values``: the text holds
    values rather than parameters (SQL compiled by Ibis), so its string literals are masked
    in the log and in errors."""
    with _logged(sql, inline_values):
        return cursor.execute(sql, params) if params is not None else cursor.execute(sql)


def arrow_sql(
    cursor: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    inline_values: bool = False,
) -> pa.Table:
    """A query's rows on ``cursor`` as one materialised Arrow table, logged and timed."""
    with _logged(sql, inline_values):
        return cursor.sql(sql, params=params).to_arrow_table()


@contextmanager
def registered(cursor: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[str]:
    """``table`` readable as ``name`` on ``cursor`` for the block; always unregistered after,
    so a failed statement leaves no name behind to shadow a table or hold the data alive.

    Inside a transaction that a failed statement aborted, DuckDB refuses to unregister; the
    registration is part of that transaction, so the rollback that follows drops it."""
    try:
        cursor.register(name, table)
    except duckdb.Error as exc:
        raise WarehouseError(f"cannot register {name!r}: {type(exc).__name__}: {exc}") from exc
    try:
        yield name
    except BaseException:
        with suppress(duckdb.TransactionException):
            cursor.unregister(name)
        raise
    cursor.unregister(name)


def _rollback(cursor: duckdb.DuckDBPyConnection) -> None:
    """Roll back after a failure without hiding it: a rollback that fails too is logged."""
    try:
        run_sql(cursor, "ROLLBACK")
    except WarehouseError as exc:
        log.warning("rollback failed: %s", str(exc).splitlines()[0])


def utc_now() -> datetime:
    """Naive UTC, the form every TIMESTAMP column holds."""
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def _logged(sql: str, inline_values: bool = False) -> Iterator[None]:
    """Time a query and log it (its text, never its parameters); a failure is re-raised as a
    WarehouseError carrying the query. With ``inline_values`` the text shown (logged, or
    carried by the error) has its string literals masked: they can be personal data."""
    started = time.perf_counter()
    try:
        yield
    except duckdb.Error as exc:
        shown = _masked(sql) if inline_values else sql
        log.warning("query failed after %.1f ms: %s", _ms(started), _short(shown))
        message = str(exc)
        if inline_values:  # DuckDB quotes the offending line of the query
            message = _masked(message)
        raise WarehouseError(f"{type(exc).__name__}: {message}", shown) from exc
    if log.isEnabledFor(logging.DEBUG):
        log.debug("query %.1f ms: %s", _ms(started), _short(_masked(sql) if inline_values else sql))


_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")


def _masked(sql: str) -> str:
    """``sql`` with every string literal shown as '?'."""
    return _STRING_LITERAL.sub("'?'", sql)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
