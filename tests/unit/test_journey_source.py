"""Journey queries on DuckDB go through the warehouse's SQL gateway: each analysis's queries
are logged (values masked) and timed, a failure is a WarehouseError carrying the query, and a
cached intermediate table lives on the source's cursor for its block only."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import ibis
import pytest
from test_journey_funnels import SPEC, journeys

import touchpoints.warehouse.ibis_gateway as gateway
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.journeys.funnels import funnel
from touchpoints.journeys.model import load_model
from touchpoints.journeys.source import duckdb_source
from touchpoints.journeys.store import refresh
from touchpoints.warehouse import WarehouseError

DEFAULT = load_model()


@pytest.fixture
def tp_journeys(tmp_path: Path) -> Any:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, DEFAULT)
        yield tp


def test_an_analysis_logs_its_queries_without_their_values(
    tp_journeys: Touchpoints, caplog: pytest.LogCaptureFixture
) -> None:
    source = duckdb_source(tp_journeys.warehouse, DEFAULT)
    with caplog.at_level(logging.DEBUG, logger="touchpoints.warehouse"):
        result = funnel(source, SPEC)
    assert result.steps[0].units > 0
    queries = [r.getMessage() for r in caplog.records if r.name == "touchpoints.warehouse"]
    assert sum(q.startswith("query ") and " ms: SELECT " in q for q in queries) >= 5, queries
    assert any(" ms: CREATE OR REPLACE TEMP TABLE " in q for q in queries)  # the steps, cached
    assert any(" ms: DROP TABLE IF EXISTS " in q for q in queries)
    # The funnel's step names are values in the compiled SQL: they are not logged.
    assert not any("Product Viewed" in q or "Quote Requested" in q for q in queries)

    caplog.clear()
    events = source.events()
    with caplog.at_level(logging.DEBUG, logger="touchpoints.warehouse"):
        source.arrow(events.filter(events.event == "Product Viewed").count())
    [logged] = [r.getMessage() for r in caplog.records]
    assert "journey_facts" in logged and "= '?'" in logged, logged
    assert "Product Viewed" not in logged


def test_the_same_question_is_compiled_once_and_answered_the_same(
    tp_journeys: Touchpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    tp_journeys.warehouse.compiled.clear()
    compiled: list[str] = []
    real = ibis.backends.duckdb.Backend.compile

    def counting(self: Any, expr: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(str(real(self, expr, *args, **kwargs)))
        return compiled[-1]

    monkeypatch.setattr(ibis.backends.duckdb.Backend, "compile", counting)
    first = funnel(duckdb_source(tp_journeys.warehouse, DEFAULT), SPEC)
    asked = len(compiled)
    assert asked >= 5  # the cached steps, and the queries reading them
    # Built again from scratch, on another source (a new gateway): nothing compiled again.
    again = funnel(duckdb_source(tp_journeys.warehouse, DEFAULT), SPEC)
    assert len(compiled) == asked
    assert again == first
    # Another question compiles its own.
    other = funnel(duckdb_source(tp_journeys.warehouse, DEFAULT), {**SPEC, "window": "P1D"})
    assert len(compiled) > asked
    assert other.window_seconds == 86_400


def test_two_caches_of_one_expression_open_at_once_are_two_tables(
    tp_journeys: Touchpoints,
) -> None:
    source = duckdb_source(tp_journeys.warehouse, DEFAULT)
    events = source.events()
    views = events.filter(events.event == "Product Viewed").select("person", "seq")
    total = int(source.arrow(views.count()).as_py())
    with source.cache(views) as one, source.cache(views) as two:
        assert one.get_name() != two.get_name()
        assert int(source.arrow(one.count()).as_py()) == total
        assert int(source.arrow(two.count()).as_py()) == total
    # Closed: the same expression cached again gets its first name back, holding the rows.
    with source.cache(views) as three:
        assert three.get_name() == one.get_name()
        assert int(source.arrow(three.count()).as_py()) == total


def test_a_failing_ibis_query_is_a_warehouse_error_with_the_query(
    tp_journeys: Touchpoints,
) -> None:
    source = duckdb_source(tp_journeys.warehouse, DEFAULT)
    events = source.events()
    # Valid for Ibis, refused by DuckDB when it runs: a text that is no number.
    broken = events.filter(events.event == "Product Viewed").select(
        n=ibis.literal("not a number").cast("int64")
    )
    with pytest.raises(WarehouseError) as caught:
        source.arrow(broken)
    assert caught.value.sql is not None and "journey_facts" in caught.value.sql
    assert "not a number" not in str(caught.value)
    assert "Product Viewed" not in caught.value.sql


def test_arrow_gives_what_to_pyarrow_gives(tp_journeys: Touchpoints) -> None:
    source = duckdb_source(tp_journeys.warehouse, DEFAULT)
    events = source.events()
    table = events.group_by("event").agg(n=events.count()).order_by("event")
    assert source.arrow(table).equals(table.to_pyarrow())
    assert source.arrow(events.count()).as_py() == events.count().to_pyarrow().as_py()
    assert source.arrow(events.event).to_pylist() == events.event.to_pyarrow().to_pylist()


def test_a_cached_table_is_read_on_the_source_cursor_and_dropped_after(
    tp_journeys: Touchpoints,
) -> None:
    source = duckdb_source(tp_journeys.warehouse, DEFAULT)
    events = source.events()
    with source.cache(events.select("person", "event")) as kept:
        name = kept.get_name()
        assert source.arrow(kept.count()).as_py() == source.arrow(events.count()).as_py()
        assert tp_journeys.warehouse.scalar(
            "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [name]
        )
    assert not tp_journeys.warehouse.scalar(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]
    )
    with pytest.raises(RuntimeError, match="inside"), source.cache(events) as kept:
        name = kept.get_name()
        raise RuntimeError("inside")
    assert not tp_journeys.warehouse.scalar(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]
    )


def test_a_source_made_on_one_thread_reads_its_cache_on_its_own_cursor(
    tp_journeys: Touchpoints,
) -> None:
    """Temporary tables belong to a connection: a source used from another thread still
    makes and reads them on the cursor it was made with."""
    import threading

    source = duckdb_source(tp_journeys.warehouse, DEFAULT)
    found: list[int] = []

    def work() -> None:
        events = source.events()
        with source.cache(events.select("person")) as kept:
            found.append(int(source.arrow(kept.count()).as_py()))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert found == [int(source.arrow(source.events().count()).as_py())]


def test_a_cache_is_filled_in_any_order_and_the_cursor_keeps_its_order_after(
    tp_journeys: Touchpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached table is filled without keeping the order of its rows (it has none to keep;
    DuckDB writes it in parallel), and only that INSERT: the cursor's other queries, and the
    rest of the database, keep insertion order, also when the INSERT fails."""
    source = duckdb_source(tp_journeys.warehouse, DEFAULT)
    cursor = source.gateway.cursor if source.gateway else None
    assert cursor is not None
    other = tp_journeys.warehouse.cursor()

    def keeps_order(on: Any) -> bool:
        rows = on.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
        return bool(rows[0][0])

    filling: list[bool] = []
    real_run = gateway.run_sql

    def watched(on: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        if sql.startswith('INSERT INTO "_tp_cache_'):
            filling.append(keeps_order(on))
        return real_run(on, sql, *args, **kwargs)

    monkeypatch.setattr(gateway, "run_sql", watched)
    events = source.events()
    with source.cache(events.select("person", "seq")) as kept:
        assert filling == [False]
        # Inside the block the table is filled: the cursor reads in order again.
        assert keeps_order(cursor) and keeps_order(other)
        assert source.arrow(kept.count()).as_py() == source.arrow(events.count()).as_py()
    assert keeps_order(cursor) and keeps_order(other)

    broken = events.select(n=ibis.literal("not a number").cast("int64"))
    with pytest.raises(WarehouseError), source.cache(broken):
        pass
    assert filling == [False, False]
    assert keeps_order(cursor) and keeps_order(other)
