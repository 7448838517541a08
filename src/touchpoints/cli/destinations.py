"""destinations: where activation sends messages, through the API like every command.

A secret (a webhook's signing secret, a collector's write key, an SMTP password) is read from
standard input with ``--secret-stdin``, never taken as an argument (it would stay in the
shell's history and the process list); a webhook's secret is made when none is given and
printed this once. Without a running server, ``test`` and ``replay`` put messages in the
outbox; the server's delivery worker sends them when it runs.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from touchpoints.activate.results import (
    AttemptList,
    CreatedDestination,
    Destination,
    DestinationList,
    Enqueued,
    MessageList,
    Replayed,
)
from touchpoints.cli.base import DataDir, app, client_for, fail, out
from touchpoints.times import iso, iso_or_none

destinations_app = typer.Typer(
    help="Destinations: add, list, show, disable, enable, deliveries, dead letters, replay, test.",
    no_args_is_help=True,
)
app.add_typer(destinations_app, name="destinations")

Id = Annotated[int, typer.Argument(help="The destination's id (touchpoints destinations list)")]
Json = Annotated[bool, typer.Option("--json", help="The answer as JSON")]
Of = Annotated[int | None, typer.Option("--destination", help="Only this destination's")]
Limit = Annotated[int, typer.Option("--limit", help="At most this many, newest first")]
_SECRET_NAME = {"webhook": "secret", "segment": "write_key", "email": "password"}


@destinations_app.command("add")
def add(
    kind: Annotated[str, typer.Argument(help="webhook, segment, email or file")],
    name: Annotated[str, typer.Argument(help="A name to know it by")],
    url: Annotated[
        str | None, typer.Option(help="webhook: where to POST; segment: the collector's base URL")
    ] = None,
    forward: Annotated[
        str | None,
        typer.Option(help="segment: forward what is collected, e.g. track,identify"),
    ] = None,
    host: Annotated[str | None, typer.Option(help="email: the SMTP server")] = None,
    port: Annotated[int | None, typer.Option(help="email: its port (25)")] = None,
    sender: Annotated[str | None, typer.Option(help="email: the From address")] = None,
    user: Annotated[str | None, typer.Option(help="email: the SMTP user")] = None,
    starttls: Annotated[bool, typer.Option(help="email: STARTTLS before sending")] = False,
    directory: Annotated[str | None, typer.Option(help="file: where files go (absolute)")] = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="file: csv or parquet")
    ] = None,
    purpose: Annotated[
        list[str] | None,
        typer.Option("--purpose", help="A consent purpose a person must have granted (repeat)"),
    ] = None,
    secret_stdin: Annotated[
        bool,
        typer.Option(
            "--secret-stdin",
            help="Read the secret from standard input: a webhook's whsec_ secret, a "
            "collector's write key, an SMTP password",
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Add a destination; a webhook's signing secret is printed this once."""
    given = {
        "url": url,
        "forward": forward,
        "host": host,
        "port": port,
        "sender": sender,
        "user": user,
        "directory": directory,
        "format": file_format,
        "starttls": starttls or None,
    }
    config = {key: value for key, value in given.items() if value is not None}
    secrets: dict[str, str] = {}
    if secret_stdin:
        if kind not in _SECRET_NAME:
            raise fail(f"--secret-stdin: a {kind} destination has no secret")
        secret = sys.stdin.readline().rstrip("\r\n")
        if not secret:
            raise fail("--secret-stdin: standard input holds no secret")
        secrets[_SECRET_NAME[kind]] = secret
    body = {
        "kind": kind,
        "name": name,
        "config": config,
        "purposes": purpose or [],
        "secrets": secrets,
    }
    with client_for(data_dir) as api:
        made = api.post("/v1/destinations", body, CreatedDestination)
    out.print(f"added destination {made.destination.id} ({kind}, {name})", highlight=False)
    if kind == "webhook" and not secret_stdin:
        out.print(f"signing secret (shown once): {made.secrets['secret']}", highlight=False)


@destinations_app.command("list")
def listing(data_dir: DataDir = None, as_json: Json = False) -> None:
    """The destinations with their messages per state and success rates."""
    with client_for(data_dir) as api:
        found = api.get("/v1/destinations", DestinationList)
    if as_json:
        out.print_json(found.model_dump_json())
        return
    table = Table()
    for column in ("id", "kind", "name", "state", "pending", "delivered", "dead", "success"):
        table.add_column(column)
    for d in found.destinations:
        table.add_row(
            str(d.id),
            d.kind,
            d.name,
            d.state,
            str(d.pending),
            str(d.delivered),
            str(d.dead),
            "" if d.success_rate is None else f"{d.success_rate:.1%}",
        )
    out.print(table)


@destinations_app.command("show")
def show(destination: Id, data_dir: DataDir = None, as_json: Json = False) -> None:
    """One destination: where it sends (never its secrets), state, counts."""
    with client_for(data_dir) as api:
        found = api.get(f"/v1/destinations/{destination}", Destination)
    if as_json:
        out.print_json(found.model_dump_json())
        return
    _print_destination(found)


def _print_destination(d: Destination) -> None:
    lines: list[tuple[str, Any]] = [
        ("destination", f"{d.id} ({d.kind}, {d.name})"),
        ("state", d.state + (f": {d.state_reason}" if d.state_reason else "")),
        *((f"config {key}", value) for key, value in d.config.items()),
        ("purposes", ", ".join(d.purposes) or "(none)"),
        ("messages", f"{d.pending} pending, {d.delivered} delivered, {d.dead} dead"),
        ("attempts", f"{d.attempts_ok} delivered, {d.attempts_failed} failed"),
        ("skipped", f"{d.skipped} (no consent, since the server started)"),
    ]
    for label, value in lines:
        out.print(f"{label:<12} {value}", highlight=False)


@destinations_app.command("disable")
def disable(
    destination: Id,
    reason: Annotated[str | None, typer.Option(help="Why (shown with the state)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Stop sending; messages wait in the outbox until it is enabled."""
    with client_for(data_dir) as api:
        found = api.post(f"/v1/destinations/{destination}/disable", {"reason": reason}, Destination)
    out.print(f"destination {found.id} is disabled", highlight=False)


@destinations_app.command("enable")
def enable(destination: Id, data_dir: DataDir = None) -> None:
    """Send again, starting with what waited."""
    with client_for(data_dir) as api:
        found = api.post(f"/v1/destinations/{destination}/enable", None, Destination)
    out.print(f"destination {found.id} is enabled", highlight=False)


@destinations_app.command("deliveries")
def deliveries(
    of: Of = None, limit: Limit = 50, data_dir: DataDir = None, as_json: Json = False
) -> None:
    """The delivery log: every attempt, its answer and how long it took."""
    with client_for(data_dir) as api:
        found = api.get("/v1/destinations/deliveries", AttemptList, destination=of, limit=limit)
    if as_json:
        out.print_json(found.model_dump_json())
        return
    table = Table()
    for column in ("at", "destination", "message", "attempt", "status", "outcome", "ms", "error"):
        table.add_column(column)
    for a in found.attempts:
        table.add_row(
            iso(a.attempted_at)[:19],
            str(a.destination),
            a.message_id,
            str(a.attempt),
            "" if a.status is None else str(a.status),
            a.outcome,
            f"{a.latency_ms:.0f}",
            a.error or "",
        )
    out.print(table)


@destinations_app.command("dead-letters")
def dead_letters(
    of: Of = None, limit: Limit = 50, data_dir: DataDir = None, as_json: Json = False
) -> None:
    """Messages that failed every attempt (or were refused at once): replay them."""
    with client_for(data_dir) as api:
        found = api.get(
            "/v1/destinations/messages", MessageList, destination=of, state="dead", limit=limit
        )
    if as_json:
        out.print_json(found.model_dump_json())
        return
    table = Table()
    for column in ("message", "destination", "person", "attempts", "last status", "error", "at"):
        table.add_column(column)
    for m in found.messages:
        table.add_row(
            m.message_id,
            str(m.destination),
            "" if m.person is None else f"person:{m.person}",
            str(m.attempts),
            "" if m.last_status is None else str(m.last_status),
            m.last_error or "",
            (iso_or_none(m.done_at) or "")[:19],
        )
    out.print(table)


@destinations_app.command("replay")
def replay(
    destination: Id,
    message_ids: Annotated[
        list[str] | None, typer.Argument(help="Dead letters to send again; none: every one")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Send dead letters again, with their message ids (webhook-id) unchanged."""
    with client_for(data_dir) as api:
        done = api.post(
            f"/v1/destinations/{destination}/replay", {"message_ids": message_ids or []}, Replayed
        )
    out.print(f"{done.replayed} dead letters back in the outbox", highlight=False)


@destinations_app.command("test")
def test(
    destination: Id,
    to: Annotated[str | None, typer.Option(help="email: the address to send the test to")] = None,
    data_dir: DataDir = None,
) -> None:
    """Send a test message through the outbox (see it with 'destinations deliveries')."""
    with client_for(data_dir) as api:
        sent = api.post(f"/v1/destinations/{destination}/test", {"to": to}, Enqueued)
    out.print(f"test message {sent.message_id} is in the outbox", highlight=False)
