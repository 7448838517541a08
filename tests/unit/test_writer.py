"""The write-ahead log and the buffered writer: crash replay, torn lines, dedup, backpressure."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from touchpoints.collect.writer import Backpressure, log_lines, read_segment, replay_wal
from touchpoints.config import Settings, load_settings
from touchpoints.core import Touchpoints
from touchpoints.events import EventRow
from touchpoints.warehouse import WarehouseError

SEGMENT = "segment-000000001.log"


def batch(ids: list[str]) -> dict[str, Any]:
    return {
        "batch": [
            {"type": "track", "userId": f"u-{mid}", "event": "Trip Completed", "messageId": mid}
            for mid in ids
        ]
    }


def rows_for(tp: Touchpoints, ids: list[str]) -> list[EventRow]:
    outcome = tp.judge(batch(ids), "batch", source="writer-test")
    assert outcome.rejected == [] and outcome.body_problems == []
    return outcome.rows


def stored_ids(tp: Touchpoints) -> list[str]:
    return [mid for (mid,) in tp.warehouse.fetchall("SELECT message_id FROM events ORDER BY seq")]


def segments(settings: Settings) -> dict[str, int]:
    """Segment file name → size in bytes."""
    if not settings.wal_dir.exists():
        return {}
    return {p.name: p.stat().st_size for p in sorted(settings.wal_dir.iterdir())}


# A server process that acknowledged events (they are in the log) and was killed before its
# writer thread wrote them: os._exit skips every cleanup, as a kill -9 would.
CRASHING_SERVER = """
import os
import sys

import orjson

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

tp = Touchpoints(load_settings(sys.argv[1], flush_interval_ms=600000, flush_max_events=10**6))
tp.start_writer()
for ids in orjson.loads(sys.argv[2]):
    body = {"batch": [{"type": "track", "userId": f"u-{m}", "event": "Trip Completed",
                       "messageId": m} for m in ids]}
    outcome = tp.judge(body, "batch", source="writer-test")
    assert not outcome.rejected
    tp.writer.submit(outcome.rows)
print(tp.writer.pending, flush=True)
os._exit(0)
"""

CRASH_REQUESTS = [["c1", "c2"], ["c3"], ["c4", "c5"]]
CRASH_IDS = ["c1", "c2", "c3", "c4", "c5"]


@pytest.fixture
def crashed(settings: Settings) -> Settings:
    """A data directory whose server was killed with five acknowledged, unwritten events."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CRASHING_SERVER,
            str(settings.data_dir),
            orjson.dumps(CRASH_REQUESTS).decode(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "5"
    return settings


def test_the_log_holds_one_line_per_acknowledged_event(crashed: Settings) -> None:
    assert list(segments(crashed)) == [SEGMENT]
    lines = (crashed.wal_dir / SEGMENT).read_bytes().split(b"\n")
    assert lines[-1] == b""  # every write ends with a newline
    # Each line one JSON array in COLUMNS order (EventRow refuses any other length).
    rows = [EventRow(*orjson.loads(line)) for line in lines[:-1]]
    assert [row.message_id for row in rows] == CRASH_IDS
    assert read_segment(crashed.wal_dir / SEGMENT) == rows


# Two events as the log held them before rows had names (a track with clock-skew correction
# and an identify), byte for byte: received at 2026-03-01T12:00:00Z from the key "key_wal".
LOGGED_BEFORE_NAMED_ROWS = (
    rb'["wal-1","track","Test Drive Booked",null,null,"a-1",null,null,"{\"model\":\"EV3\"}",'
    rb'null,"{\"library\":{\"name\":\"analytics.js\"}}",null,1772366399000000,'
    rb'1772366398000000,1772366399000000,1772366400000000,"web","key_wal","{\"type\":\"track\",'
    rb"\"messageId\":\"wal-1\",\"anonymousId\":\"a-1\",\"event\":\"Test Drive Booked\","
    rb"\"properties\":{\"model\":\"EV3\"},\"context\":{\"library\":{\"name\":"
    rb"\"analytics.js\"}},\"originalTimestamp\":\"2026-03-01T11:59:58Z\",\"sentAt\":"
    rb'\"2026-03-01T11:59:59Z\"}"]'
    b"\n"
    rb'["wal-2","identify",null,null,"u-1","a-1",null,null,null,"{\"email\":\"ada@example.com\"}",'
    rb"null,null,1772362800000000,1772362800000000,null,1772366400000000,"
    rb'"other","key_wal","{\"type\":\"identify\",\"messageId\":\"wal-2\",\"userId\":\"u-1\",'
    rb"\"anonymousId\":\"a-1\",\"traits\":{\"email\":\"ada@example.com\"},\"timestamp\":"
    rb'\"2026-03-01T11:00:00Z\"}"]'
    b"\n"
)
LOGGED_MESSAGES = [
    {
        "type": "track",
        "messageId": "wal-1",
        "anonymousId": "a-1",
        "event": "Test Drive Booked",
        "properties": {"model": "EV3"},
        "context": {"library": {"name": "analytics.js"}},
        "originalTimestamp": "2026-03-01T11:59:58Z",
        "sentAt": "2026-03-01T11:59:59Z",
    },
    {
        "type": "identify",
        "messageId": "wal-2",
        "userId": "u-1",
        "anonymousId": "a-1",
        "traits": {"email": "ada@example.com"},
        "timestamp": "2026-03-01T11:00:00Z",
    },
]
LOGGED_RECEIVED_AT = 1_772_366_400_000_000  # 2026-03-01T12:00:00Z


def test_a_segment_written_before_rows_had_names_is_replayed(settings: Settings) -> None:
    settings.wal_dir.mkdir(parents=True)
    (settings.wal_dir / SEGMENT).write_bytes(LOGGED_BEFORE_NAMED_ROWS)
    with Touchpoints(settings) as tp:
        assert tp.start_writer() == 2
        track, identify = tp.events.list(newest_first=False)
    assert (track["message_id"], track["type"], track["event"], track["anonymous_id"]) == (
        "wal-1",
        "track",
        "Test Drive Booked",
        "a-1",
    )
    # Device clock 1 s before sending; received at noon: the corrected time is 11:59:59.
    assert track["timestamp"] == datetime(2026, 3, 1, 11, 59, 59)
    assert track["original_timestamp"] == datetime(2026, 3, 1, 11, 59, 58)
    assert (track["channel"], track["source"]) == ("web", "key_wal")
    assert orjson.loads(track["properties"]) == {"model": "EV3"}
    assert orjson.loads(track["raw"]) == LOGGED_MESSAGES[0]
    assert (identify["message_id"], identify["user_id"], identify["sent_at"]) == (
        "wal-2",
        "u-1",
        None,
    )
    assert orjson.loads(identify["traits"]) == {"email": "ada@example.com"}
    assert segments(settings) == {}


def test_the_log_is_written_byte_for_byte_as_before(settings: Settings) -> None:
    with Touchpoints(settings) as tp:
        rows = [
            tp.judge(
                message, message["type"], source="key_wal", received_at=LOGGED_RECEIVED_AT
            ).rows[0]
            for message in LOGGED_MESSAGES
        ]
    assert log_lines(rows) == LOGGED_BEFORE_NAMED_ROWS
    segment = settings.wal_dir / SEGMENT
    settings.wal_dir.mkdir(parents=True)
    segment.write_bytes(LOGGED_BEFORE_NAMED_ROWS)
    assert read_segment(segment) == rows


def test_events_in_the_log_are_replayed_after_a_crash(crashed: Settings) -> None:
    with Touchpoints(crashed) as tp:
        assert tp.events.count() == 0  # nothing was written before the crash
        assert tp.start_writer() == 5
        assert stored_ids(tp) == CRASH_IDS
        (event,) = tp.events.list(limit=1, newest_first=False)
        assert (event["user_id"], event["event"], event["source"]) == (
            "u-c1",
            "Trip Completed",
            "writer-test",
        )
        # The replayed segment is gone; the new writer logs into a fresh, empty one.
        assert segments(crashed) == {SEGMENT: 0}
    # A clean stop leaves no log behind.
    assert segments(crashed) == {}
    with Touchpoints(crashed) as tp:
        assert tp.start_writer() == 0
        assert stored_ids(tp) == CRASH_IDS


def test_a_torn_last_line_is_ignored_and_the_complete_lines_kept(crashed: Settings) -> None:
    segment = crashed.wal_dir / SEGMENT
    with Touchpoints(crashed) as tp:
        torn = log_lines(rows_for(tp, ["torn-6"]))
    # The process died inside a write: half a line, no newline.
    with segment.open("ab") as handle:
        handle.write(torn[: len(torn) // 2])

    assert [row.message_id for row in read_segment(segment)] == CRASH_IDS
    with Touchpoints(crashed) as tp:
        assert replay_wal(crashed.wal_dir, tp.store) == 5
        assert stored_ids(tp) == CRASH_IDS
    assert segments(crashed) == {}


def test_a_bad_line_before_the_end_is_corruption_and_is_kept(settings: Settings) -> None:
    with Touchpoints(settings) as tp:
        good = [log_lines([row]) for row in rows_for(tp, ["g1", "g2"])]
    settings.wal_dir.mkdir(parents=True)
    segment = settings.wal_dir / SEGMENT
    segment.write_bytes(good[0] + b'["half' + b"\n" + good[1])

    with pytest.raises(WarehouseError) as caught:
        read_segment(segment)
    assert str(caught.value) == f"write-ahead log {segment} is corrupt at line 2"
    with Touchpoints(settings) as tp:
        with pytest.raises(WarehouseError):
            tp.start_writer()
        assert tp.events.count() == 0
    # The log is not deleted: nothing acknowledged is thrown away.
    assert segment.exists()


@pytest.mark.parametrize("line", [b'["g3", "track"]', b'{"message_id": "g3"}', b"17"])
def test_a_line_that_is_json_but_not_a_row_is_corruption(settings: Settings, line: bytes) -> None:
    with Touchpoints(settings) as tp:
        good = log_lines(rows_for(tp, ["g1", "g2"]))
    settings.wal_dir.mkdir(parents=True)
    segment = settings.wal_dir / SEGMENT
    segment.write_bytes(good + line + b"\n")

    with pytest.raises(WarehouseError) as caught:
        read_segment(segment)
    assert str(caught.value) == (
        f"write-ahead log {segment} line 3 is not a row of the 19 event columns"
    )


def test_replay_is_idempotent(crashed: Settings) -> None:
    segment = crashed.wal_dir / SEGMENT
    log = segment.read_bytes()
    with Touchpoints(crashed) as tp:
        assert replay_wal(crashed.wal_dir, tp.store) == 5
        assert not segment.exists()
        # A crash after the insert committed but before the segment was deleted:
        segment.write_bytes(log)
        assert replay_wal(crashed.wal_dir, tp.store) == 5
        assert stored_ids(tp) == CRASH_IDS
    # And from another process, whose index comes from the file.
    segment.write_bytes(log)
    with Touchpoints(crashed) as tp:
        assert tp.start_writer() == 5
        assert stored_ids(tp) == CRASH_IDS


def test_replay_of_several_segments_keeps_their_order(settings: Settings) -> None:
    with Touchpoints(settings) as tp:
        first = rows_for(tp, ["s1", "s2"])
        second = rows_for(tp, ["s3", "s1"])  # s1 again: an SDK retry in a later segment
    settings.wal_dir.mkdir(parents=True)
    for name, rows in (("segment-000000002.log", second), ("segment-000000001.log", first)):
        (settings.wal_dir / name).write_bytes(log_lines(rows))
    (settings.wal_dir / "segment-000000003.log").write_bytes(b"")
    with Touchpoints(settings) as tp:
        assert replay_wal(settings.wal_dir, tp.store) == 4
        assert stored_ids(tp) == ["s1", "s2", "s3"]
    assert segments(settings) == {}


def test_the_writer_refuses_to_start_over_an_unreplayed_log(crashed: Settings) -> None:
    from touchpoints.collect.writer import BufferedWriter

    with Touchpoints(crashed) as tp:
        writer = BufferedWriter(tp.store, crashed.wal_dir)
        with pytest.raises(RuntimeError, match="replay the write-ahead log"):
            writer.start()
    assert list(segments(crashed)) == [SEGMENT]


def test_flush_writes_the_buffer_and_counts_duplicates(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "data", flush_interval_ms=600_000)
    with Touchpoints(settings) as tp:
        tp.start_writer()
        assert tp.writer is not None
        tp.writer.submit(rows_for(tp, ["f1", "f2", "f3"]))
        assert tp.writer.pending == 3
        assert tp.events.count() == 0
        assert segments(settings)[SEGMENT] > 0

        tp.writer.flush()
        assert tp.writer.pending == 0
        assert stored_ids(tp) == ["f1", "f2", "f3"]
        # The written segment is deleted; logging goes on in the next one.
        assert segments(settings) == {"segment-000000002.log": 0}

        tp.writer.submit(rows_for(tp, ["f2", "f4"]))
        tp.writer.flush()
        assert (tp.writer.inserted, tp.writer.duplicates, tp.writer.failures) == (4, 1, 0)
        assert stored_ids(tp) == ["f1", "f2", "f3", "f4"]


def test_an_event_a_trigger_waits_for_is_written_at_once_not_at_the_next_interval(
    tmp_path: Path,
) -> None:
    """Rows an enabled event trigger fires on wake the writer (within _HURRY of its last
    write); other rows wait for the interval (ten minutes here)."""
    settings = load_settings(tmp_path / "data", flush_interval_ms=600_000)
    with Touchpoints(settings) as tp:
        tp.triggers.create(
            {
                "key": "abandoned",
                "name": "Abandoned",
                "when": {"event": "Cart Abandoned"},
                "steps": [{"set_trait": "abandoned", "value": True}],
            }
        )
        tp.start_writer()
        assert tp.writer is not None
        tp.writer.submit(rows_for(tp, ["h0"]))
        tp.writer.flush()  # the dispatch that follows reads the definitions
        deadline = time.monotonic() + 10
        while not tp.dispatch.watched and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tp.dispatch.watched == {"Cart Abandoned"}
        tp.writer.submit(rows_for(tp, ["h1"]))  # Trip Completed: no trigger waits for it
        time.sleep(0.5)
        assert stored_ids(tp) == ["h0"]
        awaited = {"type": "track", "userId": "u-h2", "event": "Cart Abandoned", "messageId": "h2"}
        tp.writer.submit(tp.judge({"batch": [awaited]}, "batch", source="writer-test").rows)
        while stored_ids(tp) != ["h0", "h1", "h2"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stored_ids(tp) == ["h0", "h1", "h2"]


def test_a_clean_stop_writes_everything_buffered(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "data", flush_interval_ms=600_000)
    with Touchpoints(settings) as tp:
        tp.start_writer()
        assert tp.write_rows(rows_for(tp, ["w1", "w2"])) == 2
        assert tp.events.count() == 0
    assert segments(settings) == {}
    with Touchpoints(settings) as tp:
        assert stored_ids(tp) == ["w1", "w2"]


def test_backpressure_when_more_than_max_pending_events_wait(tmp_path: Path) -> None:
    settings = load_settings(
        tmp_path / "data",
        max_pending_events=5,
        max_batch_events=5,
        flush_interval_ms=600_000,
        flush_max_events=100,
    )
    with Touchpoints(settings) as tp:
        tp.start_writer()
        writer = tp.writer
        assert writer is not None
        writer.submit(rows_for(tp, ["b1", "b2", "b3"]))

        with pytest.raises(Backpressure) as caught:
            writer.submit(rows_for(tp, ["b4", "b5", "b6"]))  # 3 + 3 > 5
        assert caught.value.retry_after == 1
        assert str(caught.value) == "writer is behind, retry in 1 s"
        with pytest.raises(Backpressure):
            tp.write_rows(rows_for(tp, ["b4", "b5", "b6"]))

        writer.submit(rows_for(tp, ["b4", "b5"]))  # exactly 5: still accepted
        assert writer.pending == 5
        with pytest.raises(Backpressure):
            writer.submit(rows_for(tp, ["b6"]))
        # A refused request is not in the log either: the sender will retry it.
        logged = [row.message_id for row in read_segment(settings.wal_dir / SEGMENT)]
        assert logged == ["b1", "b2", "b3", "b4", "b5"]

        writer.flush()
        assert writer.pending == 0
        writer.submit(rows_for(tp, ["b6", "b7", "b8"]))
        assert writer.pending == 3
    with Touchpoints(settings) as tp:
        assert stored_ids(tp) == ["b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"]


def test_submit_after_stop_is_refused(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "data", flush_interval_ms=600_000)
    with Touchpoints(settings) as tp:
        tp.start_writer()
        writer = tp.writer
        assert writer is not None
        writer.stop()
        with pytest.raises(Backpressure) as caught:
            writer.submit(rows_for(tp, ["late"]))
        assert caught.value.retry_after == 5
        assert tp.events.count() == 0
