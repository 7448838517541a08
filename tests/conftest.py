"""Fixtures that build the real thing: a DuckDB file under tmp_path, a real server process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from touchpoints.config import Settings, load_settings
from touchpoints.core import Touchpoints


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """For ``pytest -n auto --dist loadgroup`` (make test): every Spark test on one worker
    (one JVM, not one per worker), and the tests of a module that share a browser or a demo
    server on one worker (the module-scoped fixture built once, not once per worker)."""
    for item in items:
        if item.get_closest_marker("spark"):
            item.add_marker(pytest.mark.xdist_group("spark"))
        elif {"demo_server", "browser"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def dashboard_sign_in(client: httpx.Client, key: str) -> httpx.Response:
    """Sign ``client`` in to the dashboard with an API key, as the login page's key form does
    (with the form's CSRF token); the answer to the form (303 when the key opens a session)."""
    import re

    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None, form.text[:300]
    return client.post("/login", data={"csrf": token[1], "key": key}, follow_redirects=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path / "data")


@pytest.fixture
def tp(settings: Settings) -> Iterator[Touchpoints]:
    """The core object on a fresh DuckDB file, in local mode (no writer thread)."""
    core = Touchpoints(settings)
    yield core
    core.close()


def run_cli(
    *args: str, data_dir: Path, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``touchpoints`` command as a user would."""
    full_env = {**os.environ, "TOUCHPOINTS_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "touchpoints", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=120,
        check=False,
    )


@dataclass
class Server:
    """A ``touchpoints serve`` process on a loopback port."""

    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    write_key: str
    read_key: str
    log_path: Path

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            timeout=30,
            headers={"Authorization": f"Bearer {key or self.read_key}"},
        )

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """A request as a sender makes it (no key unless given: ``auth=…``)."""
        return httpx.post(f"{self.url}{path}", timeout=30, **kwargs)

    def admin_key(self) -> str:
        return run_cli("keys", "create", "admin", data_dir=self.data_dir).stdout.strip()

    def count(self) -> int:
        with self.client() as client:
            return int(client.get("/v1/events/count").json()["count"])

    def wait_for_count(self, expected: int, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        count = -1
        while time.monotonic() < deadline:
            count = self.count()
            if count >= expected:
                return count
            time.sleep(0.1)
        return count

    def wait_idle(self, timeout: float = 15) -> None:
        """Wait until the writer has written everything acknowledged so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(f"{self.url}/health", timeout=5).json()["pending_events"] == 0:
                return
            time.sleep(0.05)
        raise AssertionError("the writer did not catch up")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass
class AppServer:
    """The server's app in this process, writer and write-ahead log running as in
    ``touchpoints serve``, answered through :class:`InProcessTransport` (no port, no
    process): for the tests of what the API does, where the process itself does not matter.
    It holds the DuckDB file, so a CLI process cannot open it meanwhile."""

    tp: Touchpoints
    app: Any
    data_dir: Path
    write_key: str
    read_key: str
    url: str = "http://touchpoints.in-process"

    def client(self, key: str | None = None) -> httpx.Client:
        from touchpoints.cli.client import in_process_client

        return in_process_client(self.app, key or self.read_key)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        from touchpoints.cli.client import in_process_client

        with in_process_client(self.app) as client:
            return client.post(path, **kwargs)

    def admin_key(self) -> str:
        return self.tp.keys.create("admin", "test admin")[1]

    def count(self) -> int:
        return self.tp.events.count()

    def wait_idle(self, timeout: float = 15) -> None:
        """Wait until the writer has written everything acknowledged so far."""
        deadline = time.monotonic() + timeout
        while self.tp.writer is not None and self.tp.writer.pending:
            if time.monotonic() > deadline:
                raise AssertionError("the writer did not catch up")
            time.sleep(0.02)

    @contextmanager
    def codes_later(self, minutes: int) -> Iterator[None]:
        """The assistant's one-time codes read the clock ``minutes`` ahead meanwhile (so a
        code sent before has expired)."""
        codes = self.tp.assistant.codes
        before = codes.clock
        codes.clock = lambda: datetime.now(UTC) + timedelta(minutes=minutes)
        try:
            yield
        finally:
            codes.clock = before

    def stop(self) -> None:
        self.tp.close()


def start_app(data_dir: Path, **overrides: Any) -> AppServer:
    """The app on ``data_dir`` (settings ``overrides`` as ``serve`` would take them from the
    environment), its writer started, a write and a read key made."""
    from touchpoints.api.app import create_app

    tp = Touchpoints.open(load_settings(data_dir, **overrides))
    tp.start_writer()
    write_key = tp.keys.create("write", "test write key")[1]
    read_key = tp.keys.create("read", "test read key")[1]
    return AppServer(tp, create_app(tp), data_dir, write_key, read_key)


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[AppServer]:
    found = start_app(tmp_path / "data")
    yield found
    found.stop()


def cli(
    *args: str, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a ``touchpoints`` command in this process (Typer's runner): the same commands,
    without starting an interpreter for each; answered as :func:`run_cli` answers. Use
    :func:`run_cli` where the process itself matters (signals, exit on its own, a second
    process beside a server)."""
    from typer.testing import CliRunner

    from touchpoints.cli import app

    result = CliRunner().invoke(
        app,
        list(args),
        env={"TOUCHPOINTS_DATA_DIR": str(data_dir), "COLUMNS": "200", **(env or {})},
        catch_exceptions=False,
    )
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def start_server(
    data_dir: Path,
    extra_env: dict[str, str] | None = None,
    serve_args: tuple[str, ...] = (),
    verify: Any = True,
) -> Server:
    """Initialise ``data_dir`` if needed, make keys, start a server and wait until it answers
    (``serve_args`` given to ``touchpoints serve``; with ``--tls-cert``, over HTTPS checked
    with ``verify``)."""
    if not (data_dir / "touchpoints.duckdb").exists():
        assert cli("init", data_dir=data_dir).returncode == 0
    write_key = cli("keys", "create", "write", data_dir=data_dir).stdout.strip()
    read_key = cli("keys", "create", "read", data_dir=data_dir).stdout.strip()
    assert write_key.startswith("tp_write_"), write_key
    port = free_port()
    log_path = data_dir.parent / f"server-{port}.log"
    # The assistant's model loads at the first message, not as each server starts (4 s of
    # CPU each, for the many servers that never meet a customer); its own tests load it.
    env = {
        **os.environ,
        "TOUCHPOINTS_DATA_DIR": str(data_dir),
        "TOUCHPOINTS_ASSISTANT_WARM": "false",
        **(extra_env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "touchpoints", "serve", "--port", str(port), *serve_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    scheme = "https" if "--tls-cert" in serve_args else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a loaded CI machine imports slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1, verify=verify).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError(f"server did not start:\n{log_path.read_text()}")
    return Server(process, url, data_dir, write_key, read_key, log_path)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local Spark session for the run (about 5 s to start): journey analytics must give
    the same answers on Spark as on DuckDB."""
    from pyspark.sql import SparkSession

    # Python workers (the identity rebuild's replay) in this interpreter, which has
    # touchpoints and its dependencies, not whatever python3 the PATH finds.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("touchpoints-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        # Small data, many short queries: compiling generated code for each query costs
        # more than it saves here, and adaptive planning adds stages to every shuffle.
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def spark_source(spark: object, tp: Touchpoints) -> object:
    """The warehouse's journey tables copied into Spark views of the same names."""
    from ibis import pyspark as ibis_pyspark

    from touchpoints.journeys.source import TABLES
    from touchpoints.journeys.store import refresh

    refresh(tp.warehouse)
    for name in TABLES:
        table = tp.warehouse.fetch_arrow(f"SELECT * FROM {name}")
        # Rows, not pandas: pandas would turn a missing number into NaN, which Spark keeps.
        rows = [tuple(row.values()) for row in table.to_pylist()]
        frame = spark.createDataFrame(rows, schema=_spark_schema(table))  # type: ignore[attr-defined]
        frame.createOrReplaceTempView(name)
    from touchpoints.journeys.source import Source

    return Source(ibis_pyspark.connect(spark))


def _spark_schema(table: object) -> object:
    from pyspark.sql import types as T

    kinds = {
        "int64": T.LongType(),
        "int16": T.ShortType(),
        "string": T.StringType(),
        "large_string": T.StringType(),
        "double": T.DoubleType(),
        "bool": T.BooleanType(),
        "timestamp[us]": T.TimestampType(),
    }
    return T.StructType(
        [T.StructField(f.name, kinds[str(f.type)], True) for f in table.schema]  # type: ignore[attr-defined]
    )


# -- the dashboard's browser tests (helpers: tests/e2e/e2e_browser.py) ----------------------
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on 300 simulated people (their events, CRM rows and identity map), one for
    the whole run (of each xdist worker): the dashboard's tests compare each page with what
    the API answers at that moment, so what one test adds (an event, a key, a link) does not
    break another."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from identity import load

    base = tmp_path_factory.mktemp("dashboard")
    data_dir = base / "data"
    with Touchpoints(load_settings(data_dir)) as tp:
        load(tp, 300, 11, base / "files")
    server = start_server(data_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.fail("the browser tests need Debian's chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        found = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield found
        found.close()
