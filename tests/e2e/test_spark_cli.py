"""``touchpoints spark rebuild`` and ``touchpoints identity load`` as a user runs them: an
export rebuilt on Spark in its own process (its own JVM) and loaded back; a Spark that
cannot start, and a result that is not finished, refused with a plain message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

pytestmark = pytest.mark.e2e


def spark_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``touchpoints spark …`` in a process of its own (a JVM starts: minutes on a loaded
    machine, hence its own timeout)."""
    return subprocess.run(
        [sys.executable, "-m", "touchpoints", "spark", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=900,
        check=False,
    )


def no_stack_trace(done: subprocess.CompletedProcess[str]) -> None:
    both = done.stdout + done.stderr
    assert "Traceback" not in both and "\tat org." not in both and "py4j" not in both, both


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    messages = [
        {"type": "identify", "anonymousId": f"phone-{n}", "userId": f"u{n}", "messageId": f"i{n}"}
        for n in range(4)
    ] + [
        {"type": "identify", "anonymousId": "kiosk", "userId": "u1", "messageId": "k1"},
        {"type": "identify", "anonymousId": "kiosk", "userId": "u2", "messageId": "k2"},
    ]
    with Touchpoints.open(load_settings(data)) as tp:
        outcome = tp.judge({"batch": messages}, "batch", source="t")
        tp.write_rows(outcome.rows)
    done = run_cli("export", "--to", str(tmp_path / "lake"), data_dir=data)
    assert done.returncode == 0, done.stderr
    return tmp_path / "lake"


def test_rebuilt_on_spark_and_loaded_back(lake: Path, tmp_path: Path) -> None:
    data, result = tmp_path / "data", tmp_path / "result"
    done = spark_cli("rebuild", "--from", str(lake), "--to", str(result), "--master", "local[1]")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "9 identifiers → 4 persons" in done.stdout  # the kiosk refused into u1's or u2's
    assert "1 components replayed" in done.stdout
    loaded = run_cli("identity", "load", str(result), data_dir=data)
    assert loaded.returncode == 0, loaded.stderr
    assert "9 identifiers → 4 persons loaded (0 with another person than before, 1 links" in (
        loaded.stdout
    )
    # An event since the export: the result is older than the map, and refused plainly.
    with Touchpoints.open(load_settings(data)) as tp:
        outcome = tp.judge({"type": "page", "anonymousId": "new"}, "page", source="t")
        tp.write_rows(outcome.rows)
    stale = run_cli("identity", "load", str(result), data_dir=data)
    assert stale.returncode == 1
    assert "computed from an older export" in stale.stderr
    no_stack_trace(stale)


def test_a_spark_that_cannot_start_is_refused_plainly(lake: Path, tmp_path: Path) -> None:
    result = tmp_path / "result"
    bad_master = spark_cli("rebuild", "--from", str(lake), "--to", str(result), "--master", "x")
    assert bad_master.returncode == 1
    assert "--master: 'x' is not a Spark master" in bad_master.stderr
    no_stack_trace(bad_master)
    no_java = spark_cli(
        "rebuild", "--from", str(lake), "--to", str(result), env={"JAVA_HOME": "/nowhere"}
    )
    assert no_java.returncode == 1
    assert "Spark needs Java (17 or 21): JAVA_HOME is /nowhere, which has no bin/java" in (
        no_java.stderr
    )
    no_stack_trace(no_java)
    assert not result.exists()


def test_a_result_the_job_did_not_finish_is_never_loaded(lake: Path, tmp_path: Path) -> None:
    half = tmp_path / "half"
    (half / "persons").mkdir(parents=True)
    (half / "persons" / "part-00000.parquet").write_bytes(b"PAR1 cut short")
    done = run_cli("identity", "load", str(half), data_dir=tmp_path / "data")
    assert done.returncode == 1
    assert "holds no finished result (no _result.json)" in done.stderr
    no_stack_trace(done)
