"""profile, search and identity: one person across devices and channels."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from touchpoints.cli.base import (
    DataDir,
    app,
    client_for,
    fail,
    identity_app,
    out,
    print_events,
)
from touchpoints.client import ClientError


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
        print_events(timeline, as_json=False)


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
