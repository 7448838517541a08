"""The warehouse: migrations, deduplicating appends, the read queries and the file lock."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from touchpoints.config import Settings
from touchpoints.core import Touchpoints
from touchpoints.events import EventRow, micros
from touchpoints.warehouse import (
    EventFilter,
    EventReader,
    EventStore,
    Warehouse,
    WarehouseError,
    WarehouseLocked,
    connection,
    dedup,
    events,
)
from touchpoints.warehouse.schema import LATEST_VERSION, MIGRATIONS, Migration

RECEIVED = micros(datetime(2026, 2, 1, 12, 0))


def make_row(tp: Touchpoints, message: dict[str, Any], source: str = "test") -> EventRow:
    row, problems = tp.normalizer.normalize(message, received_at=RECEIVED, source=source)
    assert problems == []
    assert row is not None
    return row


def track(tp: Touchpoints, message_id: str, event: str = "Clicked", **extra: Any) -> EventRow:
    return make_row(
        tp, {"type": "track", "messageId": message_id, "userId": "u1", "event": event, **extra}
    )


def stored(tp: Touchpoints) -> list[tuple[int, str, str]]:
    return tp.warehouse.fetchall("SELECT seq, message_id, event FROM events ORDER BY seq")


# -- migrations ----------------------------------------------------------------------------
def test_a_new_file_gets_every_table_and_the_latest_version(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        tables = {
            name
            for (name,) in warehouse.fetchall(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            )
        }
        assert tables == {
            "events",
            "quarantine",
            "api_keys",
            "schema_migrations",
            "identifiers",
            "event_identifiers",
            "identity_merges",
            "identity_rejections",
            "identity_state",
            "event_sequence",
            "identity_links",
            "identity_match_pairs",
            "journey_events",
            "journey_properties",
            "journey_traits",
            "journey_facts",
            "journey_stage_entries",
            "journey_latest_traits",
            "journey_null_moves",
            "journey_persons",
            "journey_scratch",
            "journey_changed",
            "journey_state",
            "consent_choices",
            "suppressions",
            "suppressed_events",
            "privacy_requests",
            "import_rejects",
            "export_targets",
            "prediction_models",
            "predictions",
            "churn_scores",
            "prediction_estimators",
            "next_best_products",
            "next_best_actions",
            "users",
            "audit_log",
            "audit_head",
            "destinations",
            "outbox",
            "delivery_attempts",
            "computed_traits",
            "computed_trait_values",
            "audiences",
            "audience_members",
            "audience_changes",
            "audience_sizes",
            "audience_destinations",
            "activation_persons",
            "activation_state",
            "triggers",
            "trigger_firings",
            "trigger_delays",
            "trigger_state",
            "assistant_conversations",
            "assistant_messages",
            "placements",
            "decisions",
            "identity_results",
        }
        assert warehouse.schema_version() == LATEST_VERSION == max(m.version for m in MIGRATIONS)
        assert warehouse.fetchall(
            "SELECT version, name FROM schema_migrations ORDER BY version"
        ) == [(m.version, m.name) for m in MIGRATIONS]
    finally:
        warehouse.close()


def test_opening_again_does_not_rerun_migrations(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    first = Warehouse(path)
    applied = first.fetchall("SELECT version, applied_at FROM schema_migrations ORDER BY 1")
    first.run(
        "INSERT INTO quarantine (received_at, source, route, kind, reasons, raw) "
        "VALUES (now(), 's', 'batch', 'body', '[]', 'x')"
    )
    first.close()

    second = Warehouse(path)
    try:
        assert second.migrate() == []
        assert second.schema_version() == LATEST_VERSION
        assert (
            second.fetchall("SELECT version, applied_at FROM schema_migrations ORDER BY 1")
            == applied
        )
        assert second.scalar("SELECT count(*) FROM quarantine") == 1
    finally:
        second.close()


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    warehouse = Warehouse(path)
    future = LATEST_VERSION + 1
    warehouse.run("INSERT INTO schema_migrations VALUES (?, 'from the future', now())", [future])
    warehouse.close()
    with pytest.raises(WarehouseError) as caught:
        Warehouse(path)
    assert str(caught.value) == (
        f"{path} has schema version {future}, newer than this touchpoints ({LATEST_VERSION}); "
        "upgrade touchpoints"
    )


def test_a_failing_migration_is_rolled_back_as_a_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).close()
    broken = Migration(
        LATEST_VERSION + 1,
        "half done",
        ("CREATE TABLE added (x INTEGER)", "INSERT INTO missing VALUES (1)"),
    )
    monkeypatch.setattr(connection, "MIGRATIONS", (*connection.MIGRATIONS, broken))
    monkeypatch.setattr(connection, "LATEST_VERSION", LATEST_VERSION + 1)
    with pytest.raises(WarehouseError, match="INSERT INTO missing VALUES"):
        Warehouse(path)
    monkeypatch.undo()

    warehouse = Warehouse(path)
    try:
        assert warehouse.schema_version() == LATEST_VERSION
        assert (
            warehouse.scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'added'"
            )
            == 0
        )
    finally:
        warehouse.close()


def test_a_migration_merged_after_a_later_one_is_still_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Versions are applied by number, not by "newer than the newest": a branch's migration
    that arrives after a file got a higher one still runs."""
    path = tmp_path / "w.duckdb"
    later = Migration(LATEST_VERSION + 2, "merged first", ("CREATE TABLE later (x INTEGER)",))
    late = Migration(LATEST_VERSION + 1, "merged late", ("CREATE TABLE late (x INTEGER)",))
    monkeypatch.setattr(connection, "LATEST_VERSION", LATEST_VERSION + 2)
    monkeypatch.setattr(connection, "MIGRATIONS", (*MIGRATIONS, later))
    Warehouse(path).close()
    monkeypatch.setattr(connection, "MIGRATIONS", (*MIGRATIONS, late, later))
    warehouse = Warehouse(path)
    try:
        versions = warehouse.fetchall("SELECT version FROM schema_migrations ORDER BY version")
        assert versions[-2:] == [(LATEST_VERSION + 1,), (LATEST_VERSION + 2,)]
        assert warehouse.fetchall("SELECT x FROM late") == []
        assert warehouse.migrate() == []
    finally:
        warehouse.close()


# -- transactions and registered Arrow tables ------------------------------------------------
def test_a_transaction_commits_what_its_block_wrote(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        warehouse.run("CREATE TABLE t (x INTEGER)")
        with warehouse.transaction() as cursor:
            warehouse.run("INSERT INTO t VALUES (1)", cursor=cursor)
            warehouse.run("INSERT INTO t VALUES (2)")  # this thread's cursor: the same one
        assert warehouse.fetchall("SELECT x FROM t ORDER BY x") == [(1,), (2,)]
    finally:
        warehouse.close()


def test_a_failed_transaction_leaves_nothing_behind_and_reraises(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        warehouse.run("CREATE TABLE t (x INTEGER)")
        with pytest.raises(RuntimeError, match="half way"), warehouse.transaction() as cursor:
            warehouse.run("INSERT INTO t VALUES (1)", cursor=cursor)
            warehouse.run("CREATE TABLE u (y INTEGER)", cursor=cursor)
            raise RuntimeError("half way")
        with pytest.raises(WarehouseError, match="INSERT INTO missing"):
            with warehouse.transaction() as cursor:
                warehouse.run("INSERT INTO t VALUES (2)", cursor=cursor)
                warehouse.run("INSERT INTO missing VALUES (3)", cursor=cursor)
        assert warehouse.scalar("SELECT count(*) FROM t") == 0
        assert (
            warehouse.scalar("SELECT count(*) FROM information_schema.tables WHERE table_name='u'")
            == 0
        )
        with warehouse.transaction() as cursor:  # no transaction was left open
            warehouse.run("INSERT INTO t VALUES (4)", cursor=cursor)
        assert warehouse.fetchall("SELECT x FROM t") == [(4,)]
    finally:
        warehouse.close()


def test_a_registered_table_is_readable_in_the_block_and_gone_after(tmp_path: Path) -> None:
    import pyarrow as pa

    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        table = pa.table({"x": pa.array([1, 2, 3], pa.int64())})
        with warehouse.registered("_numbers", table) as name:
            assert warehouse.scalar(f"SELECT sum(x) FROM {name}") == 6
        with pytest.raises(WarehouseError, match="_numbers"):
            warehouse.scalar("SELECT count(*) FROM _numbers")
    finally:
        warehouse.close()


def test_a_registered_table_is_unregistered_after_an_exception(tmp_path: Path) -> None:
    import pyarrow as pa

    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        warehouse.run("CREATE TABLE t (x BIGINT)")
        table = pa.table({"x": pa.array([1], pa.int64())})
        with pytest.raises(WarehouseError, match="missing"):
            with warehouse.transaction() as cursor, warehouse.registered("_one", table, cursor):
                warehouse.run("INSERT INTO t SELECT x FROM _one", cursor=cursor)
                warehouse.run("INSERT INTO missing SELECT x FROM _one", cursor=cursor)
        with pytest.raises(WarehouseError, match="_one"):
            warehouse.scalar("SELECT count(*) FROM _one")
        assert warehouse.scalar("SELECT count(*) FROM t") == 0
        # Registered before the transaction: unregistered after its rollback.
        with pytest.raises(RuntimeError, match="stop"):
            with warehouse.registered("_two", table), warehouse.transaction() as cursor:
                warehouse.run("INSERT INTO t SELECT x FROM _two", cursor=cursor)
                raise RuntimeError("stop")
        with pytest.raises(WarehouseError, match="_two"):
            warehouse.scalar("SELECT count(*) FROM _two")
        with pytest.raises(WarehouseError, match="_arrow_batch|missing"):
            warehouse.insert_arrow("missing", "x", table)
        with pytest.raises(WarehouseError, match="_arrow_batch"):
            warehouse.scalar("SELECT count(*) FROM _arrow_batch")
    finally:
        warehouse.close()


def test_a_script_lands_whole_in_one_call_or_not_at_all(tmp_path: Path) -> None:
    """Warehouse.script: its statements and registered tables in one transaction; a failing
    statement undoes the ones before it, leaves no transaction open and no name behind."""
    import pyarrow as pa

    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        warehouse.run("CREATE TABLE t (x BIGINT)")
        warehouse.run("CREATE TABLE n (last BIGINT)")
        warehouse.run("INSERT INTO n VALUES (0)")
        rows = pa.table({"x": pa.array([1, 2, 3], pa.int64())})
        warehouse.script(
            ["INSERT INTO t SELECT x FROM _rows", "UPDATE n SET last = 3"], {"_rows": rows}
        )
        assert warehouse.fetchall("SELECT sum(x), (SELECT last FROM n) FROM t") == [(6, 3)]
        with pytest.raises(WarehouseError, match="missing"):
            warehouse.script(
                [
                    "INSERT INTO t SELECT x + 10 FROM _rows",
                    "UPDATE n SET last = 13",
                    "INSERT INTO missing SELECT x FROM _rows",
                ],
                {"_rows": rows},
            )
        assert warehouse.fetchall("SELECT sum(x), (SELECT last FROM n) FROM t") == [(6, 3)]
        with pytest.raises(WarehouseError, match="_rows"):
            warehouse.scalar("SELECT count(*) FROM _rows")
        with warehouse.transaction() as cursor:  # no transaction was left open
            warehouse.run("INSERT INTO t VALUES (4)", cursor=cursor)
        warehouse.script(["UPDATE n SET last = 4"])  # and without tables
        assert warehouse.fetchall("SELECT sum(x), (SELECT last FROM n) FROM t") == [(10, 4)]
    finally:
        warehouse.close()


def test_rows_are_written_in_row_groups_of_16384_from_every_thread_and_after_reopening(
    tmp_path: Path,
) -> None:
    """The warehouse attaches its file with ROW_GROUP_SIZE 16384 (connection.py: shorter
    checkpoints in the writer's commits). The option is not kept in the file, so opening it
    again must set it again; and each thread's cursor must write into the attached file."""
    import threading

    path = tmp_path / "w.duckdb"
    groups = (
        "SELECT max(count) FROM pragma_storage_info('t') "
        "WHERE column_id = 0 AND segment_type <> 'VALIDITY' GROUP BY row_group_id"
    )

    def sizes(warehouse: Warehouse) -> list[int]:
        warehouse.run("CHECKPOINT")
        return [rows for (rows,) in warehouse.fetchall(groups)]

    warehouse = Warehouse(path)
    try:
        warehouse.run("CREATE TABLE t (x BIGINT, s VARCHAR)")
        warehouse.run("INSERT INTO t SELECT range, range::VARCHAR FROM range(40000)")
        failures: list[BaseException] = []

        def other_thread() -> None:
            try:
                warehouse.run("INSERT INTO t SELECT range, 'b' FROM range(40000, 50000)")
            except BaseException as exc:  # noqa: BLE001 - asserted below
                failures.append(exc)

        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        assert failures == []
        first = sizes(warehouse)
        assert sum(first) == 50000 and max(first) == 16384 and len(first) >= 4
    finally:
        warehouse.close()
    warehouse = Warehouse(path)
    try:
        warehouse.run("INSERT INTO t SELECT range, 'c' FROM range(50000, 100000)")
        again = sizes(warehouse)
        assert sum(again) == 100000 and max(again) == 16384 and len(again) >= 7
        assert warehouse.scalar("SELECT count(DISTINCT x) FROM t") == 100000
    finally:
        warehouse.close()


def test_a_closed_warehouse_lets_go_of_its_file_even_while_something_holds_its_database(
    tmp_path: Path,
) -> None:
    """Something that outlives close (here an Arrow reader not read to its end, of a
    query that looks up nothing in the file) keeps the in-memory database alive; the file
    must still be free to open again in this process, as a command run in process and then
    the suite's own connection do (a CI failure: "Unique file handle conflict"), and after
    a compaction swapped the file."""
    import threading

    import duckdb

    path = tmp_path / "w.duckdb"
    warehouse = Warehouse(path)
    warehouse.run("CREATE TABLE t (x BIGINT)")
    warehouse.run("INSERT INTO t SELECT range FROM range(10)")
    held: list[Any] = []

    def hold() -> None:  # on a thread of its own: the reader keeps its cursor busy
        held.append(warehouse.cursor().sql("SELECT 1 AS x").to_arrow_reader(10))

    for _ in range(2):
        worker = threading.Thread(target=hold)
        worker.start()
        worker.join()
        if len(held) == 1:
            warehouse.compact()
    warehouse.close()
    with duckdb.connect(str(path), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM t").fetchall() == [(10,)]
    again = Warehouse(path)
    try:
        again.run("INSERT INTO t VALUES (10)")
        assert again.scalar("SELECT count(*) FROM t") == 11
    finally:
        again.close()
    assert len(held) == 2  # held to here on purpose


# -- EventStore.append ---------------------------------------------------------------------
def test_append_dedups_within_a_batch_keeping_the_first(tp: Touchpoints) -> None:
    result = tp.store.append(
        [track(tp, "a", "First"), track(tp, "a", "Second"), track(tp, "b", "Other")]
    )
    assert (result.inserted, result.duplicates) == (2, 1)
    assert stored(tp) == [(1, "a", "First"), (2, "b", "Other")]


def test_append_dedups_across_batches_and_store_instances(tp: Touchpoints) -> None:
    first = tp.store.append([track(tp, "a"), track(tp, "b")])
    second = tp.store.append([track(tp, "b", "Again"), track(tp, "c")])
    assert (first.inserted, first.duplicates) == (2, 0)
    assert (second.inserted, second.duplicates) == (1, 1)

    # A new store loads the stored ids from the file (what a restarted server does).
    fresh = EventStore(tp.warehouse)
    third = fresh.append([track(tp, "a"), track(tp, "c"), track(tp, "d")])
    assert (third.inserted, third.duplicates) == (1, 2)
    assert stored(tp) == [
        (1, "a", "Clicked"),
        (2, "b", "Clicked"),
        (3, "c", "Clicked"),
        (4, "d", "Clicked"),
    ]


def test_append_of_nothing_stores_nothing(tp: Touchpoints) -> None:
    result = tp.store.append([])
    assert (result.inserted, result.duplicates) == (0, 0)
    assert tp.events.count() == 0


def test_ids_whose_hashes_collide_are_both_stored(
    tp: Touchpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    def colliding(message_id: str) -> int:
        return 42

    monkeypatch.setattr(dedup, "id_hash", colliding)
    # events.py binds the name at import; patch the binding the store calls as well.
    monkeypatch.setattr(events, "id_hash", colliding)

    assert tp.store.append([track(tp, "alpha")]).inserted == 1
    second = tp.store.append([track(tp, "beta")])
    assert (second.inserted, second.duplicates) == (1, 0)
    # Two new ids sharing the hash in one batch, on top of two stored ones with it.
    third = tp.store.append([track(tp, "gamma"), track(tp, "delta"), track(tp, "alpha")])
    assert (third.inserted, third.duplicates) == (2, 1)
    # And a store that loads the index from the file confirms against the exact ids too.
    fourth = EventStore(tp.warehouse).append([track(tp, "beta"), track(tp, "epsilon")])
    assert (fourth.inserted, fourth.duplicates) == (1, 1)

    assert tp.warehouse.fetchall("SELECT message_id, id_hash FROM events ORDER BY seq") == [
        ("alpha", 42),
        ("beta", 42),
        ("gamma", 42),
        ("delta", 42),
        ("epsilon", 42),
    ]


def test_the_index_of_stored_ids_answers_as_a_set_does_through_runs_and_merges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Small runs and merge limit, so that 5,000 hashes pass through the set, many runs, the
    size-tiered merges and the limit past which runs stay apart: every stored hash is a
    candidate (no false negative, which would store an event twice), and a hash never added
    is not (the runs hold exact hashes)."""
    monkeypatch.setattr(dedup, "_RUN_AT", 64)
    monkeypatch.setattr(dedup, "_MERGE_UP_TO", 1024)
    rng = np.random.default_rng(7)
    first = rng.integers(-(2**63), 2**63 - 1, 300, dtype=np.int64)
    index = dedup.MessageIdIndex(first)
    added = set(first.tolist())
    for _ in range(70):
        batch = rng.integers(-(2**63), 2**63 - 1, 71, dtype=np.int64).tolist()
        index.add(batch)
        added.update(batch)
    assert len(index) == len(added) == 300 + 70 * 71
    assert 3 <= index.runs <= 12  # merged, but not into one run past the limit
    fresh = rng.integers(-(2**63), 2**63 - 1, 2000, dtype=np.int64).tolist()
    absent = [h for h in fresh if h not in added]
    probe = sorted(added) + absent
    assert index.candidates(probe) == [h in added for h in probe]
    assert sum(index.candidates(probe)) == len(added)


def test_id_hash_is_stable_and_stored_with_each_event(tp: Touchpoints) -> None:
    # Fixed values: the hash must not change between processes or versions, or a restarted
    # server would store again what it already has.
    assert dedup.id_hash("a") == 3405396810240292928
    assert dedup.id_hash("messageId-1") == 1082107018390564558
    tp.store.append([track(tp, "a")])
    assert tp.warehouse.scalar("SELECT id_hash FROM events") == 3405396810240292928


# -- EventReader ---------------------------------------------------------------------------
def _event(day: int, channel: str, **fields: Any) -> dict[str, Any]:
    return {**fields, "timestamp": f"2026-01-0{day}T10:00:00Z", "context": {"channel": channel}}


# (messageId, source, message): six events on days 1 to 6 of January 2026, seq 1 to 6.
DATA_SET = [
    ("e1", "web-key", _event(1, "web", type="track", userId="u1", event="Order Completed")),
    ("e2", "web-key", _event(2, "email", type="track", userId="u2", event="Order Completed")),
    ("e3", "crm", _event(3, "web", type="identify", userId="u1", traits={"city": "Kiel"})),
    ("e4", "web-key", _event(4, "web", type="page", anonymousId="a1", name="Home")),
    ("e5", "esp", _event(5, "email", type="track", userId="u2", event="Newsletter Opened")),
    ("e6", "crm", _event(6, "store", type="track", userId="u3", event="Store Visit")),
]


@pytest.fixture
def reader(tp: Touchpoints) -> EventReader:
    rows = [make_row(tp, {**msg, "messageId": mid}, source) for mid, source, msg in DATA_SET]
    assert tp.store.append(rows).inserted == 6
    return tp.events


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (EventFilter(), 6),
        (EventFilter(type="track"), 4),
        (EventFilter(type="alias"), 0),
        (EventFilter(event="Order Completed"), 2),
        (EventFilter(channel="email"), 2),
        (EventFilter(channel="web"), 3),
        (EventFilter(user_id="u2"), 2),
        (EventFilter(anonymous_id="a1"), 1),
        (EventFilter(source="crm"), 2),
        (EventFilter(since=datetime(2026, 1, 3, 10, 0)), 4),
        (EventFilter(until=datetime(2026, 1, 3, 10, 0)), 2),
        (EventFilter(since=datetime(2026, 1, 2), until=datetime(2026, 1, 5, 10, 0)), 3),
        (EventFilter(after_seq=4), 2),
        (EventFilter(type="track", channel="email"), 2),
        (EventFilter(type="track", user_id="u1"), 1),
        (EventFilter(source="crm", type="track", after_seq=5), 1),
    ],
)
def test_count_with_filters(reader: EventReader, flt: EventFilter, expected: int) -> None:
    assert reader.count(flt) == expected


def test_list_orders_by_seq_and_limits(reader: EventReader) -> None:
    assert [e["message_id"] for e in reader.list(limit=2)] == ["e6", "e5"]
    assert [e["message_id"] for e in reader.list(limit=3, newest_first=False)] == [
        "e1",
        "e2",
        "e3",
    ]
    web = reader.list(EventFilter(channel="web"), newest_first=False)
    assert [(e["seq"], e["message_id"]) for e in web] == [(1, "e1"), (3, "e3"), (4, "e4")]
    assert reader.list(EventFilter(user_id="nobody")) == []


def test_list_returns_every_column_with_its_value(reader: EventReader) -> None:
    (event,) = reader.list(EventFilter(type="identify"))
    assert event["seq"] == 3
    assert event["message_id"] == "e3"
    assert event["user_id"] == "u1"
    assert event["anonymous_id"] is None
    assert event["traits"] == '{"city":"Kiel"}'
    assert event["context"] == '{"channel":"web"}'
    assert event["timestamp"] == datetime(2026, 1, 3, 10, 0)
    assert event["received_at"] == datetime(2026, 2, 1, 12, 0)
    assert event["channel"] == "web"
    assert event["source"] == "crm"
    assert event["id_hash"] == dedup.id_hash("e3")


def test_count_by_and_stats(reader: EventReader) -> None:
    by_channel = {"web": 3, "email": 2, "store": 1}
    by_type = {"track": 4, "identify": 1, "page": 1}
    by_source = {"web-key": 3, "crm": 2, "esp": 1}
    # Ordered by count, then by value.
    assert list(reader.count_by("channel").items()) == list(by_channel.items())
    assert list(reader.count_by("type").items()) == list(by_type.items())
    assert list(reader.count_by("source").items()) == list(by_source.items())
    assert list(reader.count_by("event").items()) == [
        ("Order Completed", 2),
        (None, 2),
        ("Newsletter Opened", 1),
        ("Store Visit", 1),
    ]
    assert reader.stats().model_dump() == {
        "total": 6,
        "by_channel": by_channel,
        "by_type": by_type,
        "by_source": by_source,
    }


def test_count_by_refuses_other_columns(reader: EventReader) -> None:
    with pytest.raises(ValueError, match=r"^cannot group events by 'user_id'$"):
        reader.count_by("user_id")


def test_stats_of_an_empty_warehouse(tp: Touchpoints) -> None:
    assert tp.events.stats().model_dump() == {
        "total": 0,
        "by_channel": {},
        "by_type": {},
        "by_source": {},
    }


# -- the lock ------------------------------------------------------------------------------
HOLDER = """
import sys
import duckdb
connection = duckdb.connect(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
connection.close()
"""


@pytest.mark.parametrize("read_only", [False, True])
def test_a_file_held_by_another_process_raises_warehouse_locked(
    settings: Settings, read_only: bool
) -> None:
    path = settings.database_path
    Warehouse(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseLocked) as caught:
            Warehouse(path, read_only=read_only)
        assert caught.value.holder_pid == holder.pid
        assert str(caught.value) == (
            f"{path} is held by process {holder.pid}. A running touchpoints server owns its "
            "data directory: stop it, or run this command while it runs so it goes through "
            "the server's API."
        )
        with pytest.raises(WarehouseLocked):
            Touchpoints(settings)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)

    # Once the holder is gone the file opens again.
    with Touchpoints(settings) as tp:
        assert tp.warehouse.schema_version() == LATEST_VERSION


def test_after_commit_runs_once_the_transaction_commits_and_never_after_a_rollback(
    tmp_path: Path,
) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    try:
        warehouse.run("CREATE TABLE t (x BIGINT)")
        seen: list[int] = []

        def count() -> None:
            seen.append(warehouse.scalar("SELECT count(*) FROM t"))

        with warehouse.transaction() as cursor:
            warehouse.run("INSERT INTO t VALUES (1)", cursor=cursor)
            warehouse.after_commit(count)
            assert seen == []
        assert seen == [1]  # it sees what the transaction wrote
        with pytest.raises(RuntimeError), warehouse.transaction() as cursor:
            warehouse.run("INSERT INTO t VALUES (2)", cursor=cursor)
            warehouse.after_commit(count)
            raise RuntimeError("undone")
        assert seen == [1]
        warehouse.after_commit(count)  # no transaction open: at once
        assert seen == [1, 1]
    finally:
        warehouse.close()
