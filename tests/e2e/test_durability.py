"""Acknowledged means stored: a killed server loses nothing, a stopped one flushes first."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import Server, run_cli, start_server
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

pytestmark = pytest.mark.e2e

# The writer would only write after a minute: at kill time, events live in the log alone.
SLOW_WRITER = {"TOUCHPOINTS_FLUSH_INTERVAL_MS": "60000", "TOUCHPOINTS_FLUSH_MAX_EVENTS": "1000000"}


def _send(server: Server, requests: int) -> set[str]:
    """Send single events and batches from 8 threads; return the acknowledged messageIds."""

    def one(n: int) -> list[str]:
        with httpx.Client(base_url=server.url, auth=(server.write_key, ""), timeout=30) as http:
            if n % 2:
                ids = [f"kill-{n}-{i}" for i in range(20)]
                body = {
                    "batch": [
                        {
                            "type": "track",
                            "userId": f"u{n}",
                            "event": "Trip Completed",
                            "messageId": mid,
                        }
                        for mid in ids
                    ]
                }
                response = http.post("/v1/batch", json=body)
            else:
                ids = [f"kill-{n}"]
                response = http.post(
                    "/v1/track", json={"userId": f"u{n}", "event": "Lead", "messageId": ids[0]}
                )
            return ids if response.status_code == 200 else []

    with ThreadPoolExecutor(8) as pool:
        return {mid for ids in pool.map(one, range(requests)) for mid in ids}


def _stored_ids(data_dir: Path) -> list[str]:
    with Touchpoints(load_settings(data_dir)) as tp:
        return [row[0] for row in tp.warehouse.fetchall("SELECT message_id FROM events")]


def test_events_acknowledged_before_a_kill_9_are_stored_once_after_restart(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, SLOW_WRITER)
    acknowledged = _send(server, 200)
    assert len(acknowledged) == 100 + 100 * 20
    server.stop(signal.SIGKILL)
    assert server.process.returncode == -signal.SIGKILL
    log = list((data_dir / "wal").glob("*.log"))
    assert sum(p.stat().st_size for p in log) > 0, "the events should be only in the log"

    restarted = start_server(data_dir)  # replays the log before it answers
    restarted.stop()
    stored = _stored_ids(data_dir)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert acknowledged <= set(stored)


def test_an_offline_command_after_a_kill_9_shows_what_the_log_holds(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, SLOW_WRITER)
    acknowledged = _send(server, 100)
    server.stop(signal.SIGKILL)
    assert (data_dir / "server.json").exists(), "a killed server leaves its announcement"
    assert _stored_ids(data_dir) == [], "the events should be only in the log"

    # No server runs: the command opens the data directory, and recovers the log first.
    counted = run_cli("events", "count", data_dir=data_dir)
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout == f"{len(acknowledged)}\n"
    assert list((data_dir / "wal").glob("*.log")) == []  # replayed, committed, removed
    again = run_cli("events", "count", "--user-id", "u1", data_dir=data_dir)
    assert again.stdout == "20\n"  # the batch of u1, once
    assert set(_stored_ids(data_dir)) == acknowledged


def test_sigterm_writes_everything_buffered_before_exiting(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, SLOW_WRITER)
    acknowledged = _send(server, 40)
    assert server.stop(signal.SIGTERM) == 0
    assert list((data_dir / "wal").glob("*.log")) == []
    assert not (data_dir / "server.json").exists()
    assert set(_stored_ids(data_dir)) == acknowledged


def test_fsync_mode_acknowledges_and_stores(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, {"TOUCHPOINTS_WAL_FSYNC": "true"})
    acknowledged = _send(server, 40)
    server.wait_idle()
    assert server.count() == len(acknowledged) == 20 + 20 * 20
    server.stop()
