"""Collector processes' logs (collect/spool.py): handed over whole, loaded once, torn lines
skipped, the owner's backlog answered with 429, refusals held as the server holds them, and
the keys they verify against (hashes only, revocations followed)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from touchpoints.access.keys import KeyFile
from touchpoints.collect.process import CollectorProcess
from touchpoints.collect.spool import (
    KEYS_FILE,
    WATCHED_FILE,
    HeldSpool,
    SpoolWriter,
    WatchedNames,
    collector_dir,
    spool_root,
    write_keys,
    write_watched,
)
from touchpoints.collect.writer import Backpressure, BufferedWriter, log_lines
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.events import Problem
from touchpoints.profiles.profile import ProfileNotFound
from touchpoints.warehouse.connection import WarehouseError


def batch(ids: list[str], user: str = "u") -> dict[str, Any]:
    return {
        "batch": [
            {"type": "track", "userId": user, "event": "Trip Completed", "messageId": mid}
            for mid in ids
        ]
    }


def stored_ids(tp: Touchpoints) -> list[str]:
    return [mid for (mid,) in tp.warehouse.fetchall("SELECT message_id FROM events ORDER BY seq")]


def test_a_collector_process_hands_its_segments_over_and_the_owner_loads_each_once(
    tp: Touchpoints,
) -> None:
    process = CollectorProcess(tp.settings, 1, share=1)
    writer = process.writer
    writer.start()
    try:
        for part in range(3):
            ids = [f"m{part}-{i}" for i in range(5)]
            outcome = process.judge(batch(ids), "batch", source="web")
            assert process.write_rows(outcome.rows) == 5
            writer.flush()
        ready = sorted(p.name for p in collector_dir(tp.settings.wal_dir, 1).iterdir())
        assert [n for n in ready if n.endswith(".ready")] == [
            "segment-000000001.ready",
            "segment-000000002.ready",
            "segment-000000003.ready",
        ]
        assert tp.spools.pending() == 15
        assert stored_ids(tp) == []
        caught_up: list[int] = []
        assert tp.spools.load(lambda: caught_up.append(1)) == 15
        assert caught_up == [1]  # the identity map follows once per load
        assert stored_ids(tp) == [f"m{p}-{i}" for p in range(3) for i in range(5)]
        assert tp.spools.load() == 0  # the files are gone: nothing loaded twice
        assert tp.spools.pending() == 0
        # The same rows as the server's own collector makes (the same judge).
        own = tp.judge(batch(["m0-0"]), "batch", source="web").rows[0]
        stored = tp.warehouse.fetchall("SELECT source, type, event FROM events WHERE seq = 1")
        assert stored == [(own.source, own.type, own.event)]
    finally:
        writer.stop()


@pytest.mark.parametrize("watch", [True, False])
def test_the_owner_takes_a_handed_over_file_at_once_while_collector_processes_run(
    tp: Touchpoints, watch: bool
) -> None:
    """With collector processes the owner's writer looks for their files between its own
    batches (every 20 ms), so their events need not wait for its next turn as well: here
    a turn a minute away. Without them (``watch_spools`` off) it keeps to its turns."""
    owner = BufferedWriter(
        tp.store,
        tp.settings.wal_dir,
        flush_interval_ms=60_000,
        spools=tp.spools,
        watch_spools=watch,
        after_write=tp.identity.catch_up,
    )
    process = CollectorProcess(tp.settings, 1, share=1)
    owner.start()
    process.writer.start()
    try:
        time.sleep(0.2)  # the owner's first turn is over: the next is a minute away
        outcome = process.judge(batch(["w1", "w2"]), "batch", source="web")
        process.write_rows(outcome.rows)
        process.writer.flush()  # handed over

        def known() -> bool:  # stored, and the identity map caught up as after any batch
            try:
                return tp.profiles.resolve("user_id:u") > 0
            except ProfileNotFound:
                return False

        deadline = time.monotonic() + (10 if watch else 1)
        while not known() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert known() is watch
        assert stored_ids(tp) == (["w1", "w2"] if watch else [])
    finally:
        process.writer.stop()
        owner.stop()
    assert stored_ids(tp) == ["w1", "w2"]  # at the latest when the owner stops


def test_the_owner_behind_is_answered_429_and_taken_again_once_it_loads(
    tp: Touchpoints,
) -> None:
    writer = SpoolWriter(
        collector_dir(tp.settings.wal_dir, 2), flush_interval_ms=60_000, max_pending_events=30
    )
    writer.start()
    try:
        judge = CollectorProcess(tp.settings, 2, share=1).judge
        writer.submit(judge(batch([f"a{i}" for i in range(20)]), "batch", source="web").rows)
        writer.flush()  # handed over, not loaded: still counted
        assert writer.pending == 20
        with pytest.raises(Backpressure):
            writer.submit(judge(batch([f"b{i}" for i in range(20)]), "batch", source="web").rows)
        assert tp.spools.load() == 20
        writer.flush()  # sees the owner took it
        assert writer.pending == 0
        writer.submit(judge(batch([f"b{i}" for i in range(20)]), "batch", source="web").rows)
    finally:
        writer.stop()
    assert tp.recover() == 20  # what stop handed over, read by the next opener
    assert len(stored_ids(tp)) == 40


def test_a_killed_collectors_open_segment_is_read_without_its_torn_line(
    tp: Touchpoints,
) -> None:
    directory = collector_dir(tp.settings.wal_dir, 3)
    directory.mkdir(parents=True)
    rows = tp.judge(batch(["t1", "t2"]), "batch", source="web").rows
    torn = log_lines(rows) + b'["half a row'
    (directory / "segment-000000007.log").write_bytes(torn)
    (directory / "held-000000000000000000001000001.tmp").write_bytes(b'["2026')  # cut short
    assert tp.recover() == 2
    assert stored_ids(tp) == ["t1", "t2"]
    assert list(directory.iterdir()) == []

    # A collector of that number started again hands the leftover over and goes on after it.
    (directory / "segment-000000007.log").write_bytes(log_lines(rows))
    writer = SpoolWriter(directory)
    writer.start()
    writer.stop()
    assert [p.name for p in directory.iterdir()] == ["segment-000000007.ready"]
    assert tp.spools.load() == 2
    assert stored_ids(tp) == ["t1", "t2"]  # deduplicated by messageId


def test_segments_are_loaded_in_one_append_and_the_identity_map_takes_their_rows_as_they_are(
    tp: Touchpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consecutive segments (two collectors' too) are one append, a commit of DuckDB's log
    each; up to _LOAD_ROWS rows, each append followed by the identity map's catch-up from
    the rows in hand (never read back). A messageId repeated in a later segment is stored
    once, and a corrupt segment keeps itself and what follows, not what came before."""
    for number, first in ((1, 0), (1, 3), (2, 6)):
        directory = collector_dir(tp.settings.wal_dir, number)
        directory.mkdir(parents=True, exist_ok=True)
        ids = [f"s{i}" for i in range(first, first + 3)] + ["s0"]  # s0: a repeat
        rows = tp.judge(batch(ids, user=f"user{first}"), "batch", source="web").rows
        (directory / f"segment-{first + 1:09d}.ready").write_bytes(log_lines(rows))
    appends: list[int] = []
    append = tp.store.append
    monkeypatch.setattr(tp.store, "append", lambda rows: appends.append(len(rows)) or append(rows))
    read_back: list[int] = []
    events_after = tp.identity.store.events_after
    monkeypatch.setattr(
        tp.identity.store,
        "events_after",
        lambda after, limit: read_back.append(after) or events_after(after, limit),
    )
    assert tp.spools.load(tp.catch_up) == 12
    assert appends == [12]
    assert read_back == []  # caught up from the rows in hand
    assert stored_ids(tp) == [f"s{i}" for i in range(9)]
    persons = tp.warehouse.fetchall(
        "SELECT DISTINCT value FROM identifiers WHERE type = 'user_id' ORDER BY 1"
    )
    assert persons == [("user0",), ("user3",), ("user6",)]

    # At most _LOAD_ROWS rows an append; a corrupt segment stops the load after the ones
    # before it are stored, and stays (with those after it) for an operator to look at.
    monkeypatch.setattr("touchpoints.collect.spool._LOAD_ROWS", 5)
    appends.clear()
    directory = collector_dir(tp.settings.wal_dir, 1)
    for number, ids in ((20, ["t1", "t2", "t3"]), (21, ["t4", "t5", "t6"]), (22, ["t7"])):
        rows = tp.judge(batch(ids), "batch", source="web").rows
        (directory / f"segment-{number:09d}.ready").write_bytes(log_lines(rows))
    (directory / "segment-000000023.ready").write_bytes(b'["not a row"]\n[1, 2]\n')
    rows = tp.judge(batch(["t9"]), "batch", source="web").rows
    (directory / "segment-000000024.ready").write_bytes(log_lines(rows))
    with pytest.raises(WarehouseError, match="segment-000000023.ready line 1"):
        tp.spools.load(tp.catch_up)
    assert appends == [3, 4]
    assert stored_ids(tp)[9:] == ["t1", "t2", "t3", "t4", "t5", "t6", "t7"]
    left = sorted(p.name for p in directory.iterdir())
    assert left == ["segment-000000023.ready", "segment-000000024.ready"]
    assert read_back == []


def test_refusals_are_held_as_the_server_holds_them(tp: Touchpoints) -> None:
    when = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)
    refused = tp.judge(
        {"batch": [{"type": "track", "event": "Lead", "writeKey": "tp_write_" + "a" * 32}]},
        "batch",
        source="web",
    ).rejected
    problems = [Problem("", "body is not valid JSON")]
    spool = HeldSpool(collector_dir(tp.settings.wal_dir, 1))
    spool.hold_events(refused, source="web", route="batch", envelope={}, received_at=when)
    spool.hold_body(b"{not json", problems, source="web", route="track", received_at=when)
    tp.recover()
    through_spool = [(i.kind, i.reasons, i.raw) for i in tp.quarantine.list()]
    tp.quarantine.hold_events(refused, source="web", route="batch", envelope={}, received_at=when)
    tp.quarantine.hold_body(b"{not json", problems, source="web", route="track", received_at=when)
    direct = [(i.kind, i.reasons, i.raw) for i in tp.quarantine.list()][2:]
    assert through_spool == direct
    assert len(direct) == 2
    assert all("tp_write_" not in str(raw) for _, _, raw in direct)  # the secret scrubbed


def test_the_keys_file_holds_hashes_and_follows_revocations(tp: Touchpoints) -> None:
    key, secret = tp.keys.create("write", source="web-shop")
    _, read_secret = tp.keys.create("read")
    write_keys(tp.settings.wal_dir, tp.keys.snapshot())
    path = spool_root(tp.settings.wal_dir) / KEYS_FILE
    text = path.read_bytes()
    assert secret.encode() not in text and read_secret.encode() not in text
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(orjson.loads(text)) == 1  # a read key cannot send events: not there

    view = KeyFile(path, recheck_seconds=0)
    found = view.verify(secret)
    assert found is not None and found.id == key.id and found.event_source == "web-shop"
    assert view.verify(read_secret) is None

    tp.keys.on_change = lambda: write_keys(tp.settings.wal_dir, tp.keys.snapshot())
    tp.keys.revoke(key.id)
    assert view.verify(secret) is None
    _, other = tp.keys.create("write")
    assert view.verify(other) is not None


def test_a_collector_process_hands_an_event_a_trigger_waits_for_over_at_once(
    tmp_path: Path,
) -> None:
    """The owner writes the names triggers fire on (at the writer's start, replacing what a
    killed server left, and when the dispatch finds them changed); a collector process
    hands an event of those names over at once, others at its interval (ten minutes
    here); the file goes when the owner stops."""
    settings = load_settings(tmp_path / "data", flush_interval_ms=600_000, collectors=1)
    with Touchpoints(settings) as tp:
        tp.triggers.create(
            {
                "key": "abandoned",
                "name": "Abandoned",
                "when": {"event": ["Cart Abandoned", "Home"]},
                "steps": [{"set_trait": "abandoned", "value": True}],
            }
        )
        path = spool_root(settings.wal_dir) / WATCHED_FILE
        write_watched(settings.wal_dir, ["Stale"])  # left by a server that was killed
        tp.start_writer()
        tp.dispatch.run()  # the triggers' thread's first turn reads the definitions too
        assert orjson.loads(path.read_bytes()) == ["Cart Abandoned", "Home"]
        assert path.stat().st_mode & 0o777 == 0o600

        process = CollectorProcess(settings, 1, share=1)  # its interval: ten minutes too
        process.writer.start()
        try:
            outcome = process.judge(batch(["w1"]), "batch", source="web")  # Trip Completed
            process.write_rows(outcome.rows)
            time.sleep(0.5)
            assert stored_ids(tp) == []  # still in the process's open segment
            page = {"type": "page", "anonymousId": "a", "name": "Home", "messageId": "w2"}
            process.write_rows(process.judge({"batch": [page]}, "batch", source="web").rows)
            deadline = time.monotonic() + 10
            while stored_ids(tp) != ["w1", "w2"] and time.monotonic() < deadline:
                time.sleep(0.02)
            assert stored_ids(tp) == ["w1", "w2"]  # handed over together, and loaded
        finally:
            process.writer.stop()
        write_watched(settings.wal_dir, [])
        assert not WatchedNames(path).urgent(
            outcome.rows + tp.judge({"batch": [page]}, "batch", source="web").rows
        )
    assert not path.exists()


def test_the_collect_port_must_differ_from_the_servers(tmp_path: Path) -> None:
    from touchpoints.config import ConfigError, load_settings

    assert load_settings(tmp_path, collectors=2).collectors_port == 8081
    assert load_settings(tmp_path, collectors=2, port=9000).collectors_port == 9001
    with pytest.raises(ConfigError, match="collect_port"):
        load_settings(tmp_path, collectors=1, port=9000, collect_port=9000)
