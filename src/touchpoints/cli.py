"""The ``touchpoints`` command: a thin face over the core (parse options, build, hand over).

Every command takes ``--data-dir`` (or TOUCHPOINTS_DATA_DIR). While a server owns the data
directory, commands go through its API; otherwise they open the DuckDB file directly.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from touchpoints.client import Client, ClientError, connect, running_server
from touchpoints.collect.importer import (
    Format,
    ImportError_,
    detect_format,
    import_file,
    load_mapping,
    read_lines,
)
from touchpoints.config import (
    CHANNELS,
    DEFAULT_CONFIG_TOML,
    ConfigError,
    Settings,
    load_settings,
)
from touchpoints.core import Touchpoints, build_normalizer
from touchpoints.privacy.keys import ROLES, KeyRefused
from touchpoints.warehouse import EventFilter, WarehouseError

app = typer.Typer(
    help=(
        "touchpoints: a self-hosted customer data platform.\n\n"
        "Start with 'touchpoints demo' (sample data and a running server) or "
        "'touchpoints init' then 'touchpoints serve'."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
events_app = typer.Typer(help="Count, list and follow stored events.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
quarantine_app = typer.Typer(
    help="Refused events, kept with their reasons: list, show, replay, delete.",
    no_args_is_help=True,
)
app.add_typer(events_app, name="events")
app.add_typer(keys_app, name="keys")
identity_app = typer.Typer(
    help="The identity map: rebuild it, unmerge a wrongly linked identifier.",
    no_args_is_help=True,
)
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(identity_app, name="identity")

out = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        "-d",
        help="Data directory [env: TOUCHPOINTS_DATA_DIR; default: ./touchpoints-data]",
        show_default=False,
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def settings_for(data_dir: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(data_dir, **overrides)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@contextmanager
def client_for(data_dir: Path | None) -> Iterator[Client]:
    settings = settings_for(data_dir)
    if not settings.database_path.exists() and running_server(settings) is None:
        raise fail(
            f"no touchpoints data in {settings.data_dir}; run 'touchpoints init' "
            "(or pass --data-dir)"
        )
    try:
        client = connect(settings)
    except WarehouseError as exc:
        raise fail(str(exc)) from None
    try:
        yield client
    except (ClientError, WarehouseError, KeyRefused) as exc:
        raise fail(str(exc)) from None
    finally:
        client.close()


# -- init / serve ----------------------------------------------------------------------------
def _initialise(settings: Settings) -> bool:
    """Create the data directory, config and database; True if they were new."""
    fresh = not settings.database_path.exists()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not settings.config_path.exists():
        settings.config_path.write_text(DEFAULT_CONFIG_TOML)
    return fresh


@app.command()
def init(data_dir: DataDir = None) -> None:
    """Create the data directory, its config file and database, and a first write key."""
    settings = settings_for(data_dir)
    if running_server(settings):
        raise fail(f"a server is running on {settings.data_dir}; it is initialised already")
    try:
        fresh = _initialise(settings)
        with Touchpoints(settings) as tp:
            if not fresh:
                out.print(
                    f"{settings.data_dir} is initialised already "
                    f"({tp.events.count()} events). New keys: touchpoints keys create write"
                )
                return
            _, secret = tp.keys.create("write", "first write key")
    except WarehouseError as exc:
        raise fail(str(exc)) from None
    out.print(f"Created {settings.data_dir}/ with {settings.config_path.name} and the database.")
    out.print(f"Write key (shown once, keep it): [bold]{secret}[/]", highlight=False)
    out.print("Next: touchpoints serve   (then send events to http://127.0.0.1:8080/v1/track)")


def _serve(tp: Touchpoints, on_started: Any = None, holder: dict[str, Any] | None = None) -> None:
    import uvicorn

    settings = tp.settings
    config = uvicorn.Config(
        tp.app(on_started=on_started),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
        server_header=False,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    if holder is not None:
        holder["server"] = server
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal with the
    # handlers it found. Finding these no-ops, the command ends normally (exit 0, no traceback).
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
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
        return Touchpoints(settings)
    except WarehouseError as exc:
        raise fail(str(exc)) from None


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: 8080]")] = None,
) -> None:
    """Run the server: collector (/v1/track, /v1/batch, …) and API on one port."""
    settings = settings_for(data_dir, host=host, port=port)
    _configure_logging(settings)
    tp = _open_for_server(settings)
    try:
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
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data)")] = 42,
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
        ]
        result = subprocess.run(
            command, input=loader_key + "\n", capture_output=True, text=True, check=False
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
    for channel, n in stats["by_channel"].items():
        table.add_row(channel, f"{n:,}")
    out.print(table)
    url = _local_url(settings)
    out.print(
        f"Loaded {report['people']:,} people: {report['events_sent']:,} events and "
        f"{report['crm_rows_sent']:,} CRM rows sent over HTTP in {report['seconds']} s; "
        f"{stats['total']:,} events stored in {settings.database_path}.",
        highlight=False,
    )
    out.print(f"Ground truth and the CRM export: {settings.data_dir / 'demo'}/", highlight=False)
    tp.identity.catch_up()
    persons = tp.warehouse.scalar("SELECT count(DISTINCT person) FROM identifiers")
    example = tp.warehouse.scalar(
        "SELECT value FROM identifiers WHERE type = 'email' ORDER BY sid LIMIT 1"
    )
    out.print(f"Identity resolution: {persons:,} persons.", highlight=False)
    if example:
        out.print(f"  a profile: touchpoints profile email:{example}", highlight=False)
    if not serving:
        return
    out.print(
        f"\n[bold]Server running at {url}[/] (Ctrl-C to stop).\n"
        f"  write key: {write_key}\n  read key:  {read_key}\n"
        f"  send:  curl -u {write_key}: {url}/v1/track -H 'Content-Type: application/json' "
        '-d \'{"userId":"u1","event":"Test Drive Requested"}\'\n'
        f"  count: touchpoints events count   (or: curl -H 'Authorization: Bearer {read_key}' "
        f"{url}/v1/events/count)\n"
        f"  API:   {url}/openapi.json",
        highlight=False,
    )


# -- import ----------------------------------------------------------------------------------
@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="JSONL (Segment format), CSV or Parquet file")],
    data_dir: DataDir = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl, csv or parquet [default: by suffix]")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="Column mapping (TOML) for a CSV file")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Where rejected lines go [default: FILE.rejects.jsonl]")
    ] = None,
) -> None:
    """Import events from a file; bad lines go to a reject file, good ones are kept."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    settings = settings_for(data_dir)
    try:
        chosen: Format = detect_format(file) if fmt is None else _format(fmt)
        csv_mapping = load_mapping(mapping) if mapping is not None else None
        lines = read_lines(file, chosen, csv_mapping)
    except ImportError_ as exc:
        raise fail(str(exc)) from None
    reject_path = rejects or file.with_name(file.name + ".rejects.jsonl")
    total_lines = _count_lines(file) if chosen != "parquet" else None
    with (
        client_for(data_dir) as client,
        Progress(
            TextColumn("importing {task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,} / {task.total:,} lines"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task(file.name, total=total_lines)
        try:
            summary = import_file(
                lines,
                build_normalizer(settings),
                client.import_chunk,
                reject_path,
                on_progress=lambda line: progress.update(task, completed=line),
            )
        except ImportError_ as exc:
            raise fail(str(exc)) from None
    stored = (
        "sent to the running server"
        if summary.stored is None
        else f"{summary.stored:,} stored, {summary.accepted - summary.stored:,} already present"
    )
    out.print(
        f"{file.name}: {summary.lines:,} lines, {summary.accepted:,} accepted ({stored}), "
        f"{summary.rejected:,} rejected",
        highlight=False,
    )
    if summary.reject_file:
        out.print(f"rejected lines with reasons: {summary.reject_file}", highlight=False)
        raise typer.Exit(2 if summary.accepted == 0 else 0)


def _format(value: str) -> Format:
    if value not in ("jsonl", "csv", "parquet"):
        raise ImportError_(f"--format must be jsonl, csv or parquet, not {value!r}")
    return value  # type: ignore[return-value]


def _count_lines(path: Path) -> int | None:
    if not path.exists():
        return None
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


# -- events ----------------------------------------------------------------------------------
def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: {value!r} is not an ISO-8601 date or date-time") from None
    if moment.tzinfo is not None:
        from datetime import UTC

        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _event_filter(
    type_: str | None,
    event: str | None,
    channel: str | None,
    user_id: str | None,
    anonymous_id: str | None,
    since: str | None,
    until: str | None,
) -> EventFilter:
    if channel is not None and channel not in CHANNELS:
        raise fail(f"--channel must be one of {', '.join(CHANNELS)}")
    return EventFilter(
        type=type_,
        event=event,
        channel=channel,
        user_id=user_id,
        anonymous_id=anonymous_id,
        since=_parse_time(since, "--since"),
        until=_parse_time(until, "--until"),
    )


TypeOpt = Annotated[str | None, typer.Option("--type", help="track, identify, page, …")]
EventOpt = Annotated[str | None, typer.Option(help="Event name, e.g. 'Order Completed'")]
ChannelOpt = Annotated[str | None, typer.Option(help=f"One of: {', '.join(CHANNELS)}")]
UserOpt = Annotated[str | None, typer.Option("--user-id")]
AnonOpt = Annotated[str | None, typer.Option("--anonymous-id")]
SinceOpt = Annotated[str | None, typer.Option(help="Event time from (ISO-8601, UTC)")]
UntilOpt = Annotated[str | None, typer.Option(help="Event time before (ISO-8601, UTC)")]


@events_app.command("count")
def events_count(
    data_dir: DataDir = None,
    type_: TypeOpt = None,
    event: EventOpt = None,
    channel: ChannelOpt = None,
    user_id: UserOpt = None,
    anonymous_id: AnonOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Print the number of stored events (only the number)."""
    flt = _event_filter(type_, event, channel, user_id, anonymous_id, since, until)
    with client_for(data_dir) as client:
        print(client.count(flt))


def _print_events(events: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for item in events:
            sys.stdout.write(orjson.dumps(item).decode() + "\n")
        return
    table = Table(show_lines=False)
    for column in ("seq", "timestamp", "type", "event / name", "channel", "user / anonymous"):
        table.add_column(column, overflow="fold")
    for item in events:
        table.add_row(
            str(item["seq"]),
            item["timestamp"][:19],
            item["type"],
            item.get("event") or item.get("name") or "",
            item["channel"],
            item.get("user_id") or item.get("anonymous_id") or item.get("previous_id") or "",
        )
    out.print(table)


@events_app.command("query")
def events_query(
    data_dir: DataDir = None,
    type_: TypeOpt = None,
    event: EventOpt = None,
    channel: ChannelOpt = None,
    user_id: UserOpt = None,
    anonymous_id: AnonOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    oldest_first: Annotated[bool, typer.Option("--oldest-first")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line")] = False,
) -> None:
    """List stored events matching the filters (newest first)."""
    flt = _event_filter(type_, event, channel, user_id, anonymous_id, since, until)
    with client_for(data_dir) as client:
        _print_events(client.list(flt, limit, not oldest_first), as_json)


@events_app.command("tail")
def events_tail(
    data_dir: DataDir = None,
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, max=10_000)] = 10,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls")] = 1.0,
) -> None:
    """Show the most recently stored events; with --follow, keep showing new ones."""
    with client_for(data_dir) as client:
        latest = list(reversed(client.list(EventFilter(), lines, True)))
        _print_events(latest, as_json)
        last_seq = latest[-1]["seq"] if latest else 0
        try:
            while follow:
                time.sleep(interval)
                fresh = client.list(EventFilter(after_seq=last_seq), 1000, False)
                if fresh:
                    _print_events(fresh, as_json)
                    last_seq = fresh[-1]["seq"]
        except KeyboardInterrupt:
            pass


@events_app.command("stats")
def events_stats(data_dir: DataDir = None) -> None:
    """Events by channel, type and source."""
    with client_for(data_dir) as client:
        stats = client.stats()
    out.print(f"{stats['total']:,} events")
    for title in ("by_channel", "by_type", "by_source"):
        table = Table(title=title.replace("_", " "))
        table.add_column(title.removeprefix("by_"))
        table.add_column("events", justify="right")
        for name, n in stats[title].items():
            table.add_row(str(name), f"{n:,}")
        out.print(table)


# -- keys ------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Argument(help="write, read or admin")],
    data_dir: DataDir = None,
    name: Annotated[str | None, typer.Option(help="What the key is for")] = None,
) -> None:
    """Create a key and print only the key (it is not shown again)."""
    if role not in ROLES:
        raise fail(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    with client_for(data_dir) as client:
        print(client.create_key(role, name)["secret"])


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """List keys (never their secrets)."""
    with client_for(data_dir) as client:
        keys = client.list_keys()
    table = Table()
    for column in ("id", "role", "name", "prefix", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key["id"],
            key["role"],
            key["name"] or "",
            key["prefix"] + "…",
            key["created_at"][:19],
            (key["revoked_at"] or "")[:19],
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument()], data_dir: DataDir = None) -> None:
    """Revoke a key by its id; it stops working at once."""
    with client_for(data_dir) as client:
        key = client.revoke_key(key_id)
    out.print(f"revoked {key['id']} ({key['role']}, {key['name'] or 'no name'})")


# -- quarantine ------------------------------------------------------------------------------
@quarantine_app.command("list")
def quarantine_list(
    data_dir: DataDir = None,
    status: Annotated[str, typer.Option(help="held, replayed or all")] = "held",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """List quarantined items with their reasons."""
    if status not in ("held", "replayed", "all"):
        raise fail("--status must be held, replayed or all")
    with client_for(data_dir) as client:
        total, items = client.quarantine_list(None if status == "all" else status, limit)
    table = Table(title=f"{total:,} {status} item(s)")
    for column in ("id", "received", "route", "kind", "status", "reasons"):
        table.add_column(column, overflow="fold")
    for item in items:
        reasons = "; ".join(
            f"{'event ' + str(r['index']) + ' ' if 'index' in r else ''}"
            f"{r['field'] + ': ' if r.get('field') else ''}{r['message']}"
            for r in item["reasons"]
        )
        table.add_row(
            str(item["id"]),
            item["received_at"][:19],
            item["route"],
            item["kind"],
            item["status"],
            reasons,
        )
    out.print(table)


@quarantine_app.command("show")
def quarantine_show(item_id: int, data_dir: DataDir = None) -> None:
    """Print one item as JSON, raw payload included."""
    with client_for(data_dir) as client:
        item = client.quarantine_get(item_id)
    if item is None:
        raise fail(f"no quarantined item {item_id}")
    sys.stdout.write(orjson.dumps(item, option=orjson.OPT_INDENT_2).decode() + "\n")


@quarantine_app.command("replay")
def quarantine_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Item ids [default: all held]")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run held items through today's rules; what passes is stored."""
    with client_for(data_dir) as client:
        result = client.quarantine_replay(ids or None)
    out.print(
        f"replayed {result['replayed']} item(s) ({result['events_stored']} event(s) stored); "
        f"{result['still_held']} still held"
    )


@quarantine_app.command("delete")
def quarantine_delete(item_id: int, data_dir: DataDir = None) -> None:
    """Delete an item for good (when it should never be stored)."""
    with client_for(data_dir) as client:
        if not client.quarantine_delete(item_id):
            raise fail(f"no quarantined item {item_id}")
    out.print(f"deleted quarantined item {item_id}")


# -- profiles and identity -------------------------------------------------------------------
@app.command()
def profile(
    key: Annotated[
        str,
        typer.Argument(help="Any identifier as TYPE:VALUE (email:anna@example.com) or person:N"),
    ],
    data_dir: DataDir = None,
    events: Annotated[int, typer.Option(min=0, max=1000, help="Recent events to show")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="The profile as JSON")] = False,
    history: Annotated[bool, typer.Option(help="With every value each trait had")] = False,
) -> None:
    """The 360° profile of one person: identifiers, traits, channels, orders, timeline."""
    with client_for(data_dir) as client:
        try:
            found = client.profile(key, history)
            timeline = client.timeline(key, events) if events and found else []
        except ClientError as exc:
            raise fail(str(exc)) from None
    if found is None:
        raise fail(f"no person has the identifier {key}")
    if as_json:
        sys.stdout.write(orjson.dumps({**found, "timeline": timeline}).decode() + "\n")
        return
    _print_profile(found, timeline or [])


def _print_profile(found: dict[str, Any], timeline: list[dict[str, Any]]) -> None:
    computed = found["computed"]
    out.print(f"[bold]{found['person']}[/bold]", highlight=False)
    out.print(
        f"first seen {computed['first_seen']}, last seen {computed['last_seen']}; "
        f"{computed['events']:,} events; {computed['orders']} orders, revenue "
        f"{computed['revenue']:,.2f}"
        + (
            f", last purchase {computed['days_since_last_purchase']} days ago"
            if computed["days_since_last_purchase"] is not None
            else ""
        ),
        highlight=False,
    )
    channels = ", ".join(f"{name} {count}" for name, count in computed["channels"].items())
    out.print(f"channels: {channels}", highlight=False)
    ids = Table(title="identifiers")
    for column in ("type", "value", "first seen"):
        ids.add_column(column, overflow="fold")
    for id_type, values in found["identifiers"].items():
        for item in values:
            ids.add_row(id_type, item["value"], (item["first_seen"] or "")[:19])
    out.print(ids)
    if found["traits"]:
        traits = Table(title="traits")
        for column in ("trait", "value", "source", "as of"):
            traits.add_column(column, overflow="fold")
        for name, item in found["traits"].items():
            traits.add_row(name, str(item["value"]), item["source"], item["timestamp"][:19])
        out.print(traits)
    for merge in found["merges"]:
        out.print(
            f"{merge['kind']} {merge['at'][:19]}: {merge['absorbed'] or ''} → {merge['kept']} "
            f"by {merge['identifier']}" + (f" ({merge['note']})" if merge["note"] else ""),
            highlight=False,
        )
    for item in found["rejected_links"]:
        out.print(
            f"refused link: {item['identifier']} ({item['rule']}) between {item['person']} "
            f"and {item['other']}",
            highlight=False,
        )
    if timeline:
        _print_events(timeline, as_json=False)


@app.command()
def search(
    trait: Annotated[str, typer.Argument(help="Trait name, e.g. city or last_name")],
    value: Annotated[str, typer.Argument(help="Value (case-insensitive)")],
    data_dir: DataDir = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Persons whose trait has a value, one person id a line."""
    with client_for(data_dir) as client:
        try:
            persons = client.search(trait, value, limit)
        except ClientError as exc:
            raise fail(str(exc)) from None
    for person in persons:
        out.print(person, highlight=False)


@identity_app.command("rebuild")
def identity_rebuild(data_dir: DataDir = None) -> None:
    """Recompute the whole identity map from the events (set-based; agrees with live updates)."""
    with client_for(data_dir) as client:
        try:
            result = client.rebuild_identity()
        except ClientError as exc:
            raise fail(str(exc)) from None
    out.print(
        f"{result['events']:,} events, {result['identifiers']:,} identifiers, "
        f"{result['links']:,} links → {result['persons']:,} persons "
        f"({result['iterations']} propagation steps, {result['replayed_components']:,} "
        f"components replayed under the merge rules) in {result['seconds']:.1f} s",
        highlight=False,
    )


@identity_app.command("unmerge")
def identity_unmerge(
    identifier: Annotated[
        str, typer.Argument(help="The wrongly linked identifier, e.g. anonymous_id:tablet-1")
    ],
    data_dir: DataDir = None,
    note: Annotated[str, typer.Option(help="Why (kept in the merge log)")] = "",
) -> None:
    """Detach an identifier: it is never linked again, and the person it joined splits."""
    with client_for(data_dir) as client:
        try:
            result = client.unmerge(identifier, note)
        except ClientError as exc:
            raise fail(str(exc)) from None
    out.print(
        f"detached {result['detached']}; now {len(result['persons'])} persons: "
        + ", ".join(result["persons"]),
        highlight=False,
    )


def main() -> None:
    app()
