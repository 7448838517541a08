"""``touchpoints export`` as a user runs it: without a server and through one, again with
nothing new, into a directory it may not write, and killed at random moments."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from conftest import cli, run_cli, start_server
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

pytestmark = pytest.mark.e2e
START = datetime(2026, 3, 1, tzinfo=UTC)


def events(n: int, days: int = 30) -> list[dict[str, Any]]:
    return [
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": f"a{i % 500}",
            "properties": {"sku": f"sku-{i % 97}"},
            "timestamp": (START + timedelta(days=i % days, hours=i % 24)).isoformat(),
            "messageId": f"m{i}",
        }
        for i in range(n)
    ]


def load(data_dir: Path, messages: list[dict[str, Any]]) -> None:
    with Touchpoints.open(load_settings(data_dir)) as tp:
        for start in range(0, len(messages), 2000):
            outcome = tp.judge({"batch": messages[start : start + 2000]}, "batch", source="t")
            tp.write_rows(outcome.rows)


def exported(directory: Path, table: str = "events") -> int:
    """The rows a reader of the directory sees (every file must read)."""
    files = list((directory / table).rglob("*.parquet"))
    if not files:
        return 0
    found = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{directory / table}/**/*.parquet', "
        "hive_partitioning = true)"
    ).fetchall()
    return int(found[0][0])


def test_export_writes_the_tables_and_a_second_run_says_nothing_new(tmp_path: Path) -> None:
    data_dir, lake = tmp_path / "data", tmp_path / "lake"
    assert cli("init", data_dir=data_dir).returncode == 0
    load(data_dir, events(300))
    first = cli("export", "--to", str(lake), data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    assert f"exported to {lake}" in first.stdout
    assert re.search(r"│ events +│ +300 │", first.stdout), first.stdout  # widths follow the names
    assert f"manifest: {lake}/_manifest.json" in first.stdout
    assert exported(lake) == 300
    again = cli("export", "--to", str(lake), data_dir=data_dir)
    assert again.returncode == 0, again.stderr
    assert f"nothing new; manifest: {lake}/_manifest.json" in again.stdout


def test_export_refuses_a_directory_it_may_not_write_plainly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert cli("init", data_dir=data_dir).returncode == 0
    target = Path("/sys/touchpoints-export")  # refused even to root
    result = run_cli("export", "--to", str(target), data_dir=data_dir)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert f"error: cannot write to {target}" in result.stderr
    server = run_cli(
        "serve",
        "--port",
        "1",
        data_dir=data_dir,
        env={"TOUCHPOINTS_EXPORT_DIR": str(target)},
    )
    assert server.returncode == 1  # checked before the server starts
    assert f"error: export_dir: cannot write to {target}" in server.stderr


def test_export_goes_through_a_running_server(tmp_path: Path) -> None:
    data_dir, lake = tmp_path / "data", tmp_path / "lake"
    server = start_server(data_dir)
    try:
        body = {"batch": events(50)}
        response = httpx.post(f"{server.url}/v1/batch", json=body, auth=(server.write_key, ""))
        assert response.status_code == 200
        server.wait_idle()
        result = run_cli("export", "--to", str(lake), data_dir=data_dir)
        assert result.returncode == 0, result.stderr
        assert exported(lake) == 50
    finally:
        server.stop()


@pytest.mark.slow
def test_an_export_killed_at_random_moments_leaves_only_whole_files_and_resumes(
    tmp_path: Path,
) -> None:
    data_dir, lake = tmp_path / "data", tmp_path / "lake"
    assert cli("init", data_dir=data_dir).returncode == 0
    load(data_dir, events(40_000, days=60))
    rng = random.Random(15)
    command = [sys.executable, "-m", "touchpoints", "export", "--to", str(lake)]
    env = {**os.environ, "TOUCHPOINTS_DATA_DIR": str(data_dir)}
    for _ in range(4):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        # Killed while it writes: once its staging directory is there, at a random moment.
        deadline = time.monotonic() + 60
        while not list(lake.glob(".staging-*")) and process.poll() is None:
            assert time.monotonic() < deadline, "the export never started writing"
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 1.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        exported(lake)  # whatever a kill left, every file a reader lists reads whole
        exported(lake, "journey_facts")
    result = run_cli("export", "--to", str(lake), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert not [p for p in lake.iterdir() if p.name.startswith(".")]
    assert exported(lake) == 40_000
    assert exported(lake, "journey_facts") == 40_000
    again = run_cli("export", "--to", str(lake), data_dir=data_dir)
    assert "nothing new" in again.stdout
