"""A Spark session for the jobs, or a refusal saying plainly why there is none.

Started from the command line, PySpark launches a JVM; when that fails (no Java, a master
URL Spark does not know), the JVM prints a stack trace and PySpark says only that the
"Java gateway process exited". So the causes we can see are checked before launching, and the
JVM's own output goes to a log file, from which a failure's reason is read back. Under
``spark-submit`` the JVM is already running and the session is the one it made.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from touchpoints.errors import TouchpointsError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The masters Spark accepts (SparkContext.createTaskScheduler): local modes, a standalone
# cluster, YARN, Kubernetes.
_MASTER = re.compile(
    r"local(\[(\*|\d+)(,\s*\d+)?\])?|local-cluster\[\d+,\s*\d+,\s*\d+\]|spark://\S+|yarn|k8s://\S+"
)

# Settings the jobs want whatever the cluster: UTC (the export's times are UTC instants) and
# Arrow for the per-component replay in pandas.
CONFIG = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


class SparkUnavailable(TouchpointsError):
    """Spark could not start (no PySpark, no Java, a bad master): nothing was run."""

    status = 503


def check_master(master: str) -> None:
    if not _MASTER.fullmatch(master):
        raise SparkUnavailable(
            f"--master: {master!r} is not a Spark master; give local[N] (N cores on this "
            "machine), local[*], spark://HOST:PORT, yarn or k8s://URL"
        )


def _local_cores(master: str) -> int:
    """The cores a local master uses: local[N] N, local and local[*] this machine's."""
    found = re.fullmatch(r"local\[(\d+)(,\s*\d+)?\]", master)
    return int(found[1]) if found else os.cpu_count() or 1


def _java() -> None:
    """Refuse before launching when there is no Java to launch."""
    home = os.environ.get("JAVA_HOME")
    if home:
        if not (Path(home) / "bin" / "java").is_file():
            raise SparkUnavailable(
                f"Spark needs Java (17 or 21): JAVA_HOME is {home}, which has no bin/java; "
                "set JAVA_HOME to a Java installation, or unset it to use java on the PATH"
            )
    elif shutil.which("java") is None:
        raise SparkUnavailable(
            "Spark needs Java (17 or 21): JAVA_HOME is not set and there is no java on the "
            "PATH; install a Java runtime (e.g. apt-get install openjdk-17-jre-headless)"
        )


@contextmanager
def _jvm_output(log: Path) -> Iterator[None]:
    """Standard error (which the JVM inherits when launched) into ``log`` for the block."""
    saved = os.dup(2)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def _reason(log: Path) -> str:
    """The JVM's reason for failing, from its output: the exception's message."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "no reason given"
    for line in lines:
        if line.startswith("Exception in thread") or line.startswith("Error:"):
            return line.split(": ", 1)[-1].strip() if ": " in line else line.strip()
    meaningful = [line for line in lines if line.strip() and not line.startswith("\tat ")]
    return meaningful[-1].strip() if meaningful else "no reason given"


def spark_session(
    master: str | None = "local[*]", config: dict[str, str] | None = None
) -> tuple[SparkSession, Path | None]:
    """The session the jobs run in, and where the JVM's log goes (None: spark-submit's).

    ``master`` None: the one spark-submit was given. Refuses with
    :class:`SparkUnavailable`, saying why, when Spark cannot start."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(
            "Spark is not installed here: pip install 'touchpoints[spark]' (PySpark 4.0)"
        ) from None
    builder: Any = SparkSession.builder.appName("touchpoints")
    for key, value in {**CONFIG, **(config or {})}.items():
        builder = builder.config(key, value)
    if os.environ.get("PYSPARK_GATEWAY_PORT"):  # under spark-submit: its JVM, its master
        return builder.getOrCreate(), None
    if master is not None:
        check_master(master)
        builder = builder.master(master)
        if master.startswith("local"):
            # Python workers on this machine: this interpreter, which has touchpoints
            # (PySpark reads the variable when its context starts).
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            if "spark.sql.shuffle.partitions" not in (config or {}):
                # Spark's default (200) is a cluster's; on one machine each propagation
                # step would run 200 tiny tasks per shuffle.
                builder = builder.config(
                    "spark.sql.shuffle.partitions", str(_local_cores(master) * 4)
                )
    _java()
    handle, name = tempfile.mkstemp(prefix="touchpoints-spark-", suffix=".log")
    os.close(handle)
    log = Path(name)
    try:
        with _jvm_output(log):
            session = builder.getOrCreate()
    except Exception as exc:  # PySpark's launch errors carry no reason; the JVM's log does
        raise SparkUnavailable(
            f"Spark could not start (master {master}): {_reason(log)}; the JVM's output is in {log}"
        ) from exc
    session.sparkContext.setLogLevel("WARN")
    return session, log
