"""import, export, events, keys and quarantine: data in and out of a data directory."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import orjson
import typer
from rich.table import Table

from touchpoints.access.keys import ROLES, KeyInfo, KeyList, NewKeyInfo
from touchpoints.channels import CHANNELS
from touchpoints.cli.base import (
    DataDir,
    app,
    client_for,
    err,
    events_app,
    fail,
    keys_app,
    out,
    print_events,
    quarantine_app,
    settings_for,
)
from touchpoints.cli.client import Api, ClientError
from touchpoints.collect.importer import (
    Format,
    ImportError_,
    detect_format,
    import_file,
    load_mapping,
    read_lines,
)
from touchpoints.collect.process import build_normalizer
from touchpoints.collect.quarantine import QuarantineItem, QuarantinePage, ReplayResult
from touchpoints.events import EventCount, EventPage
from touchpoints.export import ExportQuery, ExportRun
from touchpoints.times import iso, iso_or_none, naive_utc
from touchpoints.warehouse.events import EventStats


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
        client_for(data_dir) as api,
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
                lambda messages, _rows: _send_chunk(api, messages),
                reject_path,
                on_progress=lambda line: progress.update(task, completed=line),
            )
        except ImportError_ as exc:
            raise fail(str(exc)) from None
        if summary.reject_file:
            # So that an erasure finds the person's rejected lines there too.
            api.post("/v1/privacy/reject-files", {"path": str(Path(summary.reject_file).resolve())})
    stored = (
        "sent to the running server"
        if summary.stored is None
        else f"{summary.stored:,} stored, {summary.accepted - summary.stored:,} already "
        "present or suppressed"
    )
    out.print(
        f"{file.name}: {summary.lines:,} lines, {summary.accepted:,} accepted ({stored}), "
        f"{summary.rejected:,} rejected",
        highlight=False,
    )
    if summary.reject_file:
        out.print(f"rejected lines with reasons: {summary.reject_file}", highlight=False)
        raise typer.Exit(2 if summary.accepted == 0 else 0)


def _send_chunk(api: Api, messages: list[dict[str, object]]) -> int | None:
    """One chunk of good lines to ``/v1/import``: the events newly stored when the answer
    says (in process it is written before the answer), else None (a server's writer)."""
    response = api.send_batch("/v1/import", orjson.dumps({"batch": messages}))
    if response.status_code >= 400:
        raise ClientError(f"the server refused a chunk: {response.text[:500]}")
    stored = response.json().get("stored")
    return stored if isinstance(stored, int) else None


def _format(value: str) -> Format:
    if value not in ("jsonl", "csv", "parquet"):
        raise ImportError_(f"--format must be jsonl, csv or parquet, not {value!r}")
    return value  # type: ignore[return-value]


def _count_lines(path: Path) -> int | None:
    if not path.exists():
        return None
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


# -- export ----------------------------------------------------------------------------------
@app.command("export")
def export(
    to: Annotated[
        Path,
        typer.Option(
            "--to",
            help="The export directory (created if need be; a directory exported to before "
            "gets only what is new)",
        ),
    ],
    data_dir: DataDir = None,
) -> None:
    """Write events, identifiers, identity links, journey facts and consent choices as
    Parquet, partitioned by event date, for DuckDB, Spark and other engines: only what is
    new since the last export, with a manifest (DIR/_manifest.json)."""
    directory = to.expanduser().absolute()
    with client_for(data_dir) as api:
        run = api.post("/v1/export", ExportQuery(to=str(directory)), ExportRun)
    table = Table(title=f"exported to {run.directory} in {run.seconds:.1f} s")
    table.add_column("table", no_wrap=True)
    for column in ("written", "files", "removed", "rewritten", "rows", "up to seq"):
        table.add_column(column, justify="right", no_wrap=True)
    for item in run.tables:
        table.add_row(
            item.table,
            f"{item.rows_written:,}",
            f"{item.files_written:,}",
            f"{item.files_removed:,}",
            f"{item.partitions_rewritten:,}",
            f"{item.rows:,}",
            f"{item.high_water_mark:,}",
        )
    out.print(table)
    if run.leftovers_removed:
        out.print(f"removed {run.leftovers_removed:,} file(s) an interrupted export had left")
    out.print(
        f"manifest: {run.manifest}" if run.changed else f"nothing new; manifest: {run.manifest}",
        highlight=False,
    )


# -- events ----------------------------------------------------------------------------------
def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: {value!r} is not an ISO-8601 date or date-time") from None
    try:
        return naive_utc(moment)
    except ValueError as exc:
        raise fail(f"{option}: {exc}") from None


def _event_filter(
    type_: str | None,
    event: str | None,
    channel: str | None,
    user_id: str | None,
    anonymous_id: str | None,
    since: str | None,
    until: str | None,
) -> dict[str, Any]:
    """The filters as ``GET /v1/events`` takes them (options checked here, with their name)."""
    if channel is not None and channel not in CHANNELS:
        raise fail(f"--channel must be one of {', '.join(CHANNELS)}")
    return {
        "type": type_,
        "event": event,
        "channel": channel,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "since": _parse_time(since, "--since"),
        "until": _parse_time(until, "--until"),
    }


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
    with client_for(data_dir) as api:
        print(api.get("/v1/events/count", EventCount, **flt).count)


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
    order = "oldest" if oldest_first else "newest"
    with client_for(data_dir) as api:
        found = api.get("/v1/events", EventPage, **flt, limit=limit, order=order)
        print_events(found.events, as_json)


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
    with client_for(data_dir) as api:
        newest = api.get("/v1/events", EventPage, limit=lines, order="newest").events
        latest = list(reversed(newest))
        print_events(latest, as_json)
        last_seq = latest[-1].seq if latest else 0
        try:
            while follow:
                time.sleep(interval)
                fresh = api.get(
                    "/v1/events", EventPage, after_seq=last_seq, limit=1000, order="oldest"
                ).events
                if fresh:
                    print_events(fresh, as_json)
                    last_seq = fresh[-1].seq
        except KeyboardInterrupt:
            pass


@events_app.command("stats")
def events_stats(data_dir: DataDir = None) -> None:
    """Events by channel, type and source."""
    with client_for(data_dir) as api:
        stats = api.get("/v1/events/stats", EventStats)
    out.print(f"{stats.total:,} events")
    for title, counts in (
        ("by_channel", stats.by_channel),
        ("by_type", stats.by_type),
        ("by_source", stats.by_source),
    ):
        table = Table(title=title.replace("_", " "))
        table.add_column(title.removeprefix("by_"))
        table.add_column("events", justify="right")
        for name, n in counts.items():
            table.add_row(str(name), f"{n:,}")
        out.print(table)


# -- keys ------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    role: Annotated[str | None, typer.Argument(help="write, read or admin")] = None,
    data_dir: DataDir = None,
    name: Annotated[str | None, typer.Option(help="What the key is for")] = None,
    role_option: Annotated[
        str | None, typer.Option("--role", help="The role, as an option (write, read, admin)")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="A write key's source: its events are stamped with it (web-shop)"),
    ] = None,
) -> None:
    """Create a key and print only the key (it is not shown again)."""
    if role is not None and role_option is not None and role != role_option:
        raise fail(f"two roles given: {role!r} and --role {role_option!r}")
    role = role or role_option
    if role not in ROLES:
        raise fail(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    body = {"role": role, "name": name, "source": source}
    with client_for(data_dir) as api:
        print(api.post("/v1/keys", body, NewKeyInfo).secret)


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """List keys (never their secrets)."""
    with client_for(data_dir) as api:
        keys = api.get("/v1/keys", KeyList).keys
    table = Table()
    for column in ("id", "role", "name", "source", "prefix", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key.id,
            key.role,
            key.name or "",
            key.source or "",
            key.prefix + "…",
            iso(key.created_at)[:19],
            (iso_or_none(key.revoked_at) or "")[:19],
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument()], data_dir: DataDir = None) -> None:
    """Revoke a key by its id; it stops working at once."""
    with client_for(data_dir) as api:
        key = api.call("DELETE", f"/v1/keys/{quote(key_id, safe='')}", KeyInfo)
    out.print(f"revoked {key.id} ({key.role}, {key.name or 'no name'})")


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
    with client_for(data_dir) as api:
        page = api.get("/v1/quarantine", QuarantinePage, status=status, limit=limit)
    table = Table(title=f"{page.count:,} {status} item(s)")
    for column in ("id", "received", "route", "kind", "status", "reasons"):
        table.add_column(column, overflow="fold")
    for item in page.items:
        reasons = "; ".join(
            f"{'event ' + str(r['index']) + ' ' if 'index' in r else ''}"
            f"{r['field'] + ': ' if r.get('field') else ''}{r['message']}"
            for r in item.reasons
        )
        table.add_row(
            str(item.id),
            iso(item.received_at)[:19],
            item.route,
            item.kind,
            item.status,
            reasons,
        )
    out.print(table)


@quarantine_app.command("show")
def quarantine_show(item_id: int, data_dir: DataDir = None) -> None:
    """Print one item as JSON, raw payload included."""
    with client_for(data_dir) as api:
        item = api.get(f"/v1/quarantine/{item_id}", QuarantineItem)
    sys.stdout.write(item.model_dump_json(indent=2) + "\n")


@quarantine_app.command("replay")
def quarantine_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Item ids [default: all held]")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run held items through today's rules; what passes is stored."""
    with client_for(data_dir) as api:
        result = api.post("/v1/quarantine/replay", {"ids": ids or None}, ReplayResult)
    out.print(
        f"replayed {result.replayed} item(s) ({result.events_stored} event(s) stored); "
        f"{result.still_held} still held"
    )


@quarantine_app.command("delete")
def quarantine_delete(item_id: int, data_dir: DataDir = None) -> None:
    """Delete an item for good (when it should never be stored)."""
    with client_for(data_dir) as api:
        api.delete(f"/v1/quarantine/{item_id}")
    out.print(f"deleted quarantined item {item_id}")
