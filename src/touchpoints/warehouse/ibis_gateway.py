"""Ibis expressions on the DuckDB warehouse, run through the SQL gateway.

Journey analytics are Ibis expressions so that the same code runs on DuckDB and on Spark.
Left to itself, Ibis's DuckDB backend executes on the raw cursor it was given: no log, no
timing, and a failure is a bare ``duckdb.Error`` without the query. Here an expression is
compiled to DuckDB SQL by the backend and the text runs through :func:`arrow_sql` like every
other query; temporary tables for ``cache`` are made and dropped the same way.

Compiled SQL carries the analysis's values inline (event names, a trait value to filter on),
unlike our own statements, which take parameters; so its string literals are masked wherever
the gateway shows the text (log lines and errors).

Compiling is not free: Ibis rewrites the expression and sqlglot writes the text, 30–70 ms for
an analysis's query and over half of a funnel's time on a million events (cProfile,
2026-12-03). The text depends only on the expression, so it is kept per expression (equal
expressions, built again for the same question, find it), and the temporary tables of
``cache`` are named after what they hold, so that the queries reading them are equal too.

Not imported by ``touchpoints.warehouse`` itself: importing Ibis takes about half a second,
which the collector and the CLI need not pay.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends.duckdb.converter import DuckDBPyArrowData

from touchpoints.warehouse.connection import Warehouse, arrow_sql, run_sql

# Compiled SQL by expression (Ibis operations are immutable, hashed and compared by
# structure), kept in the warehouse's ``compiled`` (it goes when the warehouse closes: the
# expressions hold cursors on it), the least recently used dropped past the bound: the
# analyses' questions, the audiences' conditions and the triggers' are a few hundred
# distinct expressions.
_COMPILED_SIZE = 512
_COMPILED_LOCK = threading.Lock()


def _compiled(warehouse: Warehouse, op: ops.Node) -> str | None:
    with _COMPILED_LOCK:
        sql = warehouse.compiled.get(op)
        if sql is not None:
            warehouse.compiled.move_to_end(op)
        return sql


def _keep_compiled(warehouse: Warehouse, op: ops.Node, sql: str) -> None:
    with _COMPILED_LOCK:
        warehouse.compiled[op] = sql
        while len(warehouse.compiled) > _COMPILED_SIZE:
            warehouse.compiled.popitem(last=False)


# (cursor, name) of the temporary tables of ``cache`` open now: a connection's temporary
# tables are its own, and gateways can share a cursor.
_OPEN: set[tuple[int, str]] = set()


class IbisGateway:
    """An Ibis DuckDB backend on one cursor, whose queries go through the gateway.

    One cursor for the gateway's whole life: DuckDB temporary tables belong to the connection
    that made them, so a cached table must be made and read on the same one (each thread has
    its own cursor; a gateway is used on the thread that made it, as the backend was)."""

    def __init__(self, warehouse: Warehouse, cursor: duckdb.DuckDBPyConnection | None = None):
        self.warehouse = warehouse
        self.cursor = cursor or warehouse.cursor()
        self.backend: Any = ibis.duckdb.from_connection(self.cursor)

    def compile(self, expr: ir.Expr) -> str:
        """The DuckDB SQL of ``expr`` (a table; a column or scalar becomes a one-column
        table), as Ibis itself would run it."""
        # Ibis's own step before it runs anything: registers in-memory tables (memtables).
        self.backend._run_pre_execute_hooks(expr)  # noqa: SLF001
        table = expr.as_table()
        op = table.op()
        sql = _compiled(self.warehouse, op)
        if sql is None:
            sql = str(self.backend.compile(table))
            _keep_compiled(self.warehouse, op, sql)
        return sql

    def arrow(self, expr: ir.Expr) -> pa.Table | pa.Array | pa.ChunkedArray | pa.Scalar:
        """What ``expr.to_pyarrow()`` gives (a table, a column or a scalar, with Ibis's types),
        the query logged and timed, a failure a :class:`WarehouseError` carrying it."""
        with self.warehouse.using():
            table = arrow_sql(self.cursor, self.compile(expr), inline_values=True)
        return expr.__pyarrow_result__(table, data_mapper=DuckDBPyArrowData)

    @contextmanager
    def cache(self, expr: ir.Table) -> Iterator[ir.Table]:
        """``expr`` computed once into a temporary table for the block (what ``expr.cache()``
        does), dropped afterwards. The table is declared with the expression's own schema,
        as Ibis declares it, so expressions on it compile as they would on the original."""
        schema = expr.schema()
        columns = ", ".join(
            column.sql(dialect="duckdb") for column in schema.to_sqlglot_column_defs("duckdb")
        )
        select = self.compile(expr)
        # Named after what it holds, so the expressions read from it are equal from one
        # question to the next (and their SQL found compiled); a second table of the same
        # query open at once on this connection gets a name of its own.
        name = f"_tp_cache_{hashlib.sha1(select.encode()).hexdigest()[:24]}"
        with _COMPILED_LOCK:
            if (id(self.cursor), name) in _OPEN:
                name = f"_tp_cache_{uuid.uuid4().hex}"
            _OPEN.add((id(self.cursor), name))
        with self.warehouse.using():  # the temporary table lives on this connection
            run_sql(self.cursor, f'CREATE OR REPLACE TEMP TABLE "{name}" ({columns})')
            try:
                # A cached table has no order to keep: filled without keeping its rows'
                # order, DuckDB writes it in parallel. Attribution's rows at 10.6 M events
                # (10.2 M rows) took 0.54-0.73 s ordered, 0.29-0.30 s not (three runs each,
                # alternately, 2026-12-05). For this cursor and this INSERT only (SESSION:
                # a plain SET would change every connection of the database).
                run_sql(self.cursor, "SET SESSION preserve_insertion_order = false")
                try:
                    run_sql(self.cursor, f'INSERT INTO "{name}" {select}', inline_values=True)
                finally:
                    run_sql(self.cursor, "RESET SESSION preserve_insertion_order")
                yield ops.DatabaseTable(
                    name, schema=schema, source=self.backend, namespace=ops.Namespace()
                ).to_expr()
            finally:
                try:
                    run_sql(self.cursor, f'DROP TABLE IF EXISTS "{name}"')
                finally:
                    with _COMPILED_LOCK:
                        _OPEN.discard((id(self.cursor), name))
