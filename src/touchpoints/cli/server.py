"""init, serve and demo: set up a data directory and run the server."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from touchpoints.cli.base import (
    DataDir,
    app,
    err,
    fail,
    out,
    settings_for,
)
from touchpoints.cli.client import ClientError, connect, running_server
from touchpoints.cli.serving import tls_context, uvicorn_config
from touchpoints.config import DEFAULT_CONFIG_TOML, ConfigError, Settings
from touchpoints.core import Touchpoints
from touchpoints.errors import TouchpointsError
from touchpoints.journeys.queries import StagesQuery
from touchpoints.profiles import ProfileNotFound
from touchpoints.warehouse import WarehouseError


# -- init / serve ----------------------------------------------------------------------------
def _initialise(settings: Settings) -> bool:
    """Create the data directory, config and database; True if they were new."""
    fresh = not settings.database_path.exists()
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not settings.config_path.exists():
        fd = os.open(settings.config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(DEFAULT_CONFIG_TOML)
    return fresh


@app.command()
def init(data_dir: DataDir = None) -> None:
    """Create the data directory, its config file and database, and a first write key."""
    settings = settings_for(data_dir)
    if running_server(settings):
        raise fail(f"a server is running on {settings.data_dir}; it is initialised already")
    try:
        fresh = _initialise(settings)
        with connect(settings) as api:
            if not fresh:
                count = api.get("/v1/events/count")["count"]
                out.print(
                    f"{settings.data_dir} is initialised already "
                    f"({count} events). New keys: touchpoints keys create write"
                )
                return
            secret = api.post("/v1/keys", {"role": "write", "name": "first write key"})["secret"]
    except (ClientError, ConfigError, WarehouseError) as exc:
        raise fail(str(exc)) from None
    out.print(f"Created {settings.data_dir}/ with {settings.config_path.name} and the database.")
    out.print(f"Write key (shown once, keep it): [bold]{secret}[/]", highlight=False)
    out.print("Next: touchpoints serve   (then send events to http://127.0.0.1:8080/v1/track)")


def _serve(tp: Touchpoints, on_started: Any = None, holder: dict[str, Any] | None = None) -> None:
    import uvicorn

    from touchpoints.api.app import create_app
    from touchpoints.cli.collectors import CollectorProcesses

    settings = tp.settings
    holder = {} if holder is None else holder
    failures: list[str] = []

    def failed(reason: str) -> None:
        failures.append(reason)
        holder["server"].should_exit = True

    companions = CollectorProcesses(settings) if settings.collectors else None
    app = create_app(tp, on_started=on_started, companions=companions, on_failure=failed)
    config = uvicorn_config(app, settings)
    # The event loop answers; the writer, the decision log and the jobs run in threads. A
    # thread that wants the GIL waits for the one holding it to give it up, by default after
    # 5 ms: a decision could wait that long behind a batch being converted for DuckDB. 1 ms
    # bounds that wait (benchmarks/decide.py, RESULTS.md).
    sys.setswitchinterval(0.001)
    server = uvicorn.Server(config)
    holder["server"] = server
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal with the
    # handlers it found. Finding these no-ops, the command ends normally (exit 0, no traceback).
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failures:
        raise fail(failures[0])
    if not server.started:
        raise fail(f"the server could not start on {settings.host}:{settings.port}")


def _ignore(signum: int, frame: object) -> None:
    """A signal handler that does nothing (see _serve)."""


def _open_for_server(settings: Settings) -> Touchpoints:
    info = running_server(settings)
    if info:
        raise fail(
            f"a server (pid {info['pid']}) already runs on {settings.data_dir}: {info['url']}"
        )
    _initialise(settings)
    try:
        return Touchpoints.open(settings)
    except (ConfigError, WarehouseError) as exc:
        raise fail(str(exc)) from None


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: 8080]")] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="Serve HTTPS with this certificate (PEM, with its chain)"),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="The certificate's private key (PEM)")
    ] = None,
    collectors: Annotated[
        int | None,
        typer.Option(help="Collector processes beside the server, on --collect-port [default: 0]"),
    ] = None,
    collect_port: Annotated[
        int | None,
        typer.Option(help="Port the collector processes share [default: --port + 1]"),
    ] = None,
) -> None:
    """Run the server: collector (/v1/track, /v1/batch, …) and API on one port; with
    --collectors N, N more collector processes on --collect-port."""
    settings = settings_for(
        data_dir,
        host=host,
        port=port,
        tls_cert=tls_cert.resolve() if tls_cert else None,
        tls_key=tls_key.resolve() if tls_key else None,
        collectors=collectors,
        collect_port=collect_port,
    )
    _configure_logging(settings)
    tls_context(settings)  # a certificate that cannot serve stops the command before it opens
    tp = _open_for_server(settings)
    try:
        export_dir = settings.export_dir_path
        if export_dir is not None:
            try:
                tp.exporter.check(export_dir.absolute())
            except TouchpointsError as exc:
                raise fail(f"export_dir: {exc}") from None
        _serve(tp)
    finally:
        tp.close()


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# -- demo ------------------------------------------------------------------------------------
@app.command()
def demo(
    data_dir: DataDir = None,
    people: Annotated[int, typer.Option(min=10, max=1_000_000, help="People to simulate")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed and end, same data)")] = 42,
    end: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="The day the data end, YYYY-MM-DD (UTC; they cover the year before it) "
            "[default: today]",
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: 8080]")] = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep serving after loading")
    ] = True,
) -> None:
    """Simulate a car maker's customers on every channel, load them through the HTTP API,
    and keep the server running."""
    settings = settings_for(data_dir, host=host, port=port)
    _configure_logging(settings)
    logging.getLogger("touchpoints").setLevel(logging.WARNING)
    tp = _open_for_server(settings)
    for key in tp.keys.list():
        if key.name in ("demo write key", "demo read key") and key.revoked_at is None:
            tp.keys.revoke(key.id)
    _, write_key = tp.keys.create("write", "demo write key")
    _, read_key = tp.keys.create("read", "demo read key")
    loader_key = tp.keys.add_ephemeral("write", "demo")
    setup_key = tp.keys.add_ephemeral("admin", "demo-setup")  # its audiences and placement
    state: dict[str, Any] = {}

    def load() -> None:
        out.print(f"Simulating {people:,} people (seed {seed}) and sending their events …")
        command = [
            sys.executable,
            "-m",
            "touchpoints.demo.load",
            "--url",
            _local_url(settings),
            "--people",
            str(people),
            "--seed",
            str(seed),
            "--out",
            str(settings.data_dir / "demo"),
            "--end",
            (end.date() if end is not None else datetime.now(UTC).date()).isoformat(),
        ]
        result = subprocess.run(
            command,
            input=f"{loader_key}\n{setup_key}\n",
            capture_output=True,
            text=True,
            check=False,
        )
        server = state["server"]
        if result.returncode != 0:
            err.print(result.stderr[-3000:])
            state["failed"] = True
            server.should_exit = True
            return
        report = orjson.loads(result.stdout.strip().splitlines()[-1])
        while tp.writer is not None and tp.writer.pending:
            time.sleep(0.1)
        _print_demo_report(tp, settings, report, write_key, read_key, serve_after)
        if not serve_after:
            server.should_exit = True

    try:
        _serve(
            tp,
            on_started=lambda: threading.Thread(target=load, daemon=True).start(),
            holder=state,
        )
    finally:
        tp.close()
    if state.get("failed"):
        raise fail("loading the demo data failed (see above)")


def _local_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def _print_demo_report(
    tp: Touchpoints,
    settings: Settings,
    report: dict[str, Any],
    write_key: str,
    read_key: str,
    serving: bool,
) -> None:
    stats = tp.events.stats()
    table = Table(title="Events by channel", show_lines=False)
    table.add_column("channel")
    table.add_column("events", justify="right")
    for channel, n in stats.by_channel.items():
        table.add_row(channel, f"{n:,}")
    out.print(table)
    url = _local_url(settings)
    out.print(
        f"Loaded {report['people']:,} people: {report['events_sent']:,} events and "
        f"{report['crm_rows_sent']:,} CRM rows sent over HTTP in {report['seconds']} s; "
        f"{stats.total:,} events stored in {settings.database_path}.",
        highlight=False,
    )
    out.print(f"Ground truth and the CRM export: {settings.data_dir / 'demo'}/", highlight=False)
    persons = tp.identity.summary().persons
    out.print(f"Identity resolution: {persons:,} persons.", highlight=False)
    try:
        run = tp.linker.run()
    except TouchpointsError as exc:
        out.print(f"  probabilistic matching did not run: {exc}", highlight=False)
    else:
        persons = tp.identity.summary().persons
        out.print(
            f"  probabilistic matching linked {run.linked:,} pairs in {run.seconds:.1f} s: "
            f"{persons:,} persons\n  {run.review:,} pairs to review: touchpoints identity reviews",
            highlight=False,
        )
    example = report.get("example_email")
    if example and _known(tp, f"email:{example}"):
        out.print(f"  a profile: touchpoints profile email:{example}", highlight=False)
    stages = tp.journeys.run(StagesQuery()).stages
    out.print(
        "Journey stages (persons ever entered): "
        + ", ".join(f"{row.stage} {row.reached:,}" for row in stages)
        + "\n  more: touchpoints journeys stages",
        highlight=False,
    )
    _print_demo_activation(tp, url, write_key, example)
    if not serving:
        return
    out.print(
        f"\n[bold]Server running at {url}[/] (Ctrl-C to stop).\n"
        f"  write key: {write_key}\n  read key:  {read_key}\n"
        f"  dashboard: {url}/ (sign in with the read key)\n"
        f"  send:  curl -u {write_key}: {url}/v1/track -H 'Content-Type: application/json' "
        '-d \'{"userId":"u1","event":"Test Drive Requested"}\'\n'
        f"  count: touchpoints events count   (or: curl -H 'Authorization: Bearer {read_key}' "
        f"{url}/v1/events/count)\n"
        f"  API:   {url}/openapi.json",
        highlight=False,
    )


def _print_demo_activation(tp: Touchpoints, url: str, write_key: str, example: str | None) -> None:
    """The demo's audiences and placement (demo/activation.py), as they stand now."""
    audiences = tp.audiences.listing().audiences
    if not audiences:
        return
    out.print(
        "Audiences: "
        + ", ".join(f"{a.key} {a.size:,}" for a in audiences)
        + "\n  more: touchpoints audiences members KEY",
        highlight=False,
    )
    placements = [p.key for p in tp.placements.listing().placements]
    if "home_hero" in placements:
        who = f"email:{example}" if example else "user_id:ID"
        out.print(
            f"Personalisation: placement home_hero; try: touchpoints decide home_hero {who}\n"
            f"  the demo shop: {url}/demo/shop?writeKey={write_key}&placement=home_hero",
            highlight=False,
        )


def _known(tp: Touchpoints, key: str) -> bool:
    try:
        tp.profiles.resolve(key)
    except ProfileNotFound:
        return False
    return True
