"""What every command shares: the app, consoles, options, errors and the client."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from touchpoints.cli.client import Api, ClientError, connect, running_server
from touchpoints.config import ConfigError, Settings, load_settings
from touchpoints.errors import TouchpointsError
from touchpoints.events import StoredEvent
from touchpoints.times import iso
from touchpoints.warehouse import WarehouseError

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
journeys_app = typer.Typer(
    help="Journey analytics per resolved person: stages and the stage model.",
    no_args_is_help=True,
)
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(identity_app, name="identity")
app.add_typer(journeys_app, name="journeys")

# Messages are never broken into lines (a path or a key stays whole to copy, and a script
# reads one line per message); tables still fit the terminal's width.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

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
def client_for(data_dir: Path | None) -> Iterator[Api]:
    """The API of the data directory; any refusal ends the command with its reason."""
    settings = settings_for(data_dir)
    if not settings.database_path.exists() and running_server(settings) is None:
        raise fail(
            f"no touchpoints data in {settings.data_dir}; run 'touchpoints init' "
            "(or pass --data-dir)"
        )
    try:
        with connect(settings) as api:
            yield api
    except (ClientError, TouchpointsError, WarehouseError, ConfigError) as exc:
        raise fail(str(exc)) from None


def print_events(events: list[StoredEvent], as_json: bool) -> None:
    if as_json:
        for item in events:
            sys.stdout.write(item.model_dump_json() + "\n")
        return
    table = Table(show_lines=False)
    for column in ("seq", "timestamp", "type", "event / name", "channel", "user / anonymous"):
        table.add_column(column, overflow="fold")
    for item in events:
        table.add_row(
            str(item.seq),
            iso(item.timestamp)[:19],
            item.type,
            item.event or item.name or "",
            item.channel,
            item.user_id or item.anonymous_id or item.previous_id or "",
        )
    out.print(table)
