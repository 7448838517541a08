"""audiences and traits: computed traits and audiences, through the API like every command.

A definition is a file (YAML or JSON, ``-`` for standard input) or, for a quick one, JSON
on the command line; it is read here and sent to the API as JSON, which checks it and
answers a mistake with its place (``condition.and[1].event.at_least: …``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from touchpoints.activate.audiences.results import (
    Audience,
    AudienceFileRun,
    AudienceLink,
    AudienceList,
    ComputedTrait,
    ComputedTraitList,
    Evaluated,
    MemberPage,
    MembershipHistory,
    PersonMemberships,
    PersonTraits,
    Preview,
    SizeHistory,
    TraitValues,
)
from touchpoints.activate.audiences.service import loaded
from touchpoints.cli.base import DataDir, app, client_for, fail, out
from touchpoints.errors import TouchpointsError
from touchpoints.times import iso, iso_or_none

audiences_app = typer.Typer(
    help="Audiences: create, preview, list, show, members, history, sizes, send or link to a "
    "destination (a file on a schedule), evaluate.",
    no_args_is_help=True,
)
traits_app = typer.Typer(
    help="Computed traits: create, list, show, values, a person's, change, delete.",
    no_args_is_help=True,
)
app.add_typer(audiences_app, name="audiences")
app.add_typer(traits_app, name="traits")

Key = Annotated[str, typer.Argument(help="The key (e.g. high_intent)")]
Json = Annotated[bool, typer.Option("--json", help="The answer as JSON")]
Limit = Annotated[int, typer.Option("--limit", help="At most this many")]
Source = Annotated[
    str,
    typer.Argument(help="A YAML or JSON file with the definition, '-' for standard input"),
]


def _definition(source: str) -> Any:
    """The definition in ``source`` (a file, or '-': standard input), parsed."""
    if source == "-":
        text = sys.stdin.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise fail(f"{source}: no such file")
        text = path.read_text(encoding="utf-8")
    try:
        return loaded(text, source)
    except TouchpointsError as exc:
        raise fail(str(exc)) from None


def _json(answer: Any) -> None:
    out.print_json(answer.model_dump_json())


# -- computed traits ----------------------------------------------------------------------------
@traits_app.command("create")
def create_trait(source: Source, data_dir: DataDir = None, as_json: Json = False) -> None:
    """Define a computed trait (computed for everyone at once, then kept current)."""
    body = _definition(source)
    with client_for(data_dir) as api:
        made = api.post("/v1/traits/computed", body, ComputedTrait)
    if as_json:
        _json(made)
        return
    out.print(f"computed trait {made.key}: {made.summary}; {made.persons} persons have a value")


@traits_app.command("change")
def change_trait(key: Key, source: Source, data_dir: DataDir = None) -> None:
    """A new definition for a computed trait (its key stays)."""
    body = _definition(source)
    with client_for(data_dir) as api:
        changed = api.put(f"/v1/traits/computed/{key}", body, ComputedTrait)
    out.print(f"computed trait {changed.key}: {changed.summary}; {changed.persons} persons")


@traits_app.command("delete")
def delete_trait(key: Key, data_dir: DataDir = None) -> None:
    """Delete a computed trait and its values (refused while an audience tests it)."""
    with client_for(data_dir) as api:
        api.delete(f"/v1/traits/computed/{key}")
    out.print(f"computed trait {key} deleted")


@traits_app.command("list")
def list_traits(data_dir: DataDir = None, as_json: Json = False) -> None:
    """The computed traits, their definitions and how many persons have a value."""
    with client_for(data_dir) as api:
        found = api.get("/v1/traits/computed", ComputedTraitList)
    if as_json:
        _json(found)
        return
    table = Table()
    for column in ("key", "name", "definition", "persons", "computed"):
        table.add_column(column)
    for trait in found.traits:
        table.add_row(
            trait.key,
            trait.name,
            trait.summary,
            str(trait.persons),
            (iso_or_none(trait.evaluated_at) or "")[:19],
        )
    out.print(table)


@traits_app.command("show")
def show_trait(key: Key, data_dir: DataDir = None, as_json: Json = False) -> None:
    """One computed trait and its definition."""
    with client_for(data_dir) as api:
        found = api.get(f"/v1/traits/computed/{key}", ComputedTrait)
    if as_json:
        _json(found)
        return
    out.print(f"{found.key}: {found.name}\n  {found.summary}\n  {found.persons} persons")
    out.print_json(orjson.dumps(found.definition).decode())


@traits_app.command("values")
def trait_values(
    key: Key, limit: Limit = 20, data_dir: DataDir = None, as_json: Json = False
) -> None:
    """Persons and their values, largest numbers first."""
    with client_for(data_dir) as api:
        found = api.get(f"/v1/traits/computed/{key}/values", TraitValues, limit=limit)
    if as_json:
        _json(found)
        return
    out.print(f"{found.total} persons have {key}")
    for value in found.values:
        out.print(f"{value.person:<16} {orjson.dumps(value.value).decode()}", highlight=False)


@traits_app.command("person")
def person_traits(
    key: Annotated[str, typer.Argument(help="Any identifier (TYPE:VALUE) or person:N")],
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """A person's computed traits."""
    with client_for(data_dir) as api:
        found = api.get(f"/v1/profiles/{key}/computed-traits", PersonTraits)
    if as_json:
        _json(found)
        return
    out.print(found.person)
    for trait in found.traits:
        value = orjson.dumps(trait.value).decode()
        out.print(f"  {trait.key:<24} {value:<24} ({trait.summary})", highlight=False)


# -- audiences ----------------------------------------------------------------------------------
@audiences_app.command("create")
def create(source: Source, data_dir: DataDir = None, as_json: Json = False) -> None:
    """Define an audience (evaluated for everyone at once, then kept live)."""
    body = _definition(source)
    with client_for(data_dir) as api:
        made = api.post("/v1/audiences", body, Audience)
    if as_json:
        _json(made)
        return
    out.print(f"audience {made.key}: {made.size} members")


@audiences_app.command("change")
def change(key: Key, source: Source, data_dir: DataDir = None) -> None:
    """A new definition for an audience (its key stays); evaluated again for everyone."""
    body = _definition(source)
    with client_for(data_dir) as api:
        changed = api.put(f"/v1/audiences/{key}", body, Audience)
    out.print(f"audience {changed.key}: {changed.size} members")


@audiences_app.command("delete")
def delete(key: Key, data_dir: DataDir = None) -> None:
    """Delete an audience, its members and history (refused while another names it)."""
    with client_for(data_dir) as api:
        api.delete(f"/v1/audiences/{key}")
    out.print(f"audience {key} deleted")


@audiences_app.command("preview")
def preview(source: Source, data_dir: DataDir = None, as_json: Json = False) -> None:
    """How many persons a definition (or just its condition) holds for now; saves nothing."""
    body = _definition(source)
    if isinstance(body, dict) and "condition" not in body:
        body = {"condition": body}
    with client_for(data_dir) as api:
        found = api.post("/v1/audiences/preview", body, Preview)
    if as_json:
        _json(found)
        return
    out.print(f"{found.size} of {found.persons} persons")


@audiences_app.command("list")
def listing(data_dir: DataDir = None, as_json: Json = False) -> None:
    """The audiences with their sizes and destinations."""
    with client_for(data_dir) as api:
        found = api.get("/v1/audiences", AudienceList)
    if as_json:
        _json(found)
        return
    table = Table()
    for column in ("key", "name", "members", "destinations", "evaluated"):
        table.add_column(column)
    for audience in found.audiences:
        table.add_row(
            audience.key,
            audience.name,
            str(audience.size),
            ", ".join(f"{d.destination} ({d.mode})" for d in audience.destinations),
            (iso_or_none(audience.evaluated_at) or "")[:19],
        )
    out.print(table)


@audiences_app.command("show")
def show(key: Key, data_dir: DataDir = None, as_json: Json = False) -> None:
    """One audience: its condition, size and destinations."""
    with client_for(data_dir) as api:
        found = api.get(f"/v1/audiences/{key}", Audience)
    if as_json:
        _json(found)
        return
    out.print(f"{found.key}: {found.name} ({found.size} members)", highlight=False)
    if found.description:
        out.print(found.description, highlight=False)
    for link in found.destinations:
        out.print(f"  {_link_line(link)}", highlight=False)
    out.print_json(orjson.dumps(found.condition).decode())


@audiences_app.command("members")
def members(key: Key, limit: Limit = 100, data_dir: DataDir = None, as_json: Json = False) -> None:
    """The audience's members, longest first."""
    with client_for(data_dir) as api:
        found = api.get(f"/v1/audiences/{key}/members", MemberPage, limit=limit)
    if as_json:
        _json(found)
        return
    out.print(f"{found.size} members")
    for member in found.members:
        out.print(f"{member.person:<16} since {iso(member.entered_at)[:19]}", highlight=False)


@audiences_app.command("history")
def history(
    key: Annotated[str | None, typer.Argument(help="One audience's (default: all)")] = None,
    limit: Limit = 100,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Entries into and exits from audiences, newest first."""
    path = f"/v1/audiences/{key}/history" if key else "/v1/audiences/history"
    with client_for(data_dir) as api:
        found = api.get(path, MembershipHistory, limit=limit)
    if as_json:
        _json(found)
        return
    for change in found.changes:
        line = f"{iso(change.at)[:19]}  {change.audience:<24} {change.person:<16} {change.change}"
        out.print(line, highlight=False)


@audiences_app.command("sizes")
def sizes(
    key: Key,
    days: Annotated[int, typer.Option(help="The last N days")] = 30,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """The audience's size at the end of each day, with its entries and exits."""
    with client_for(data_dir) as api:
        found = api.get(f"/v1/audiences/{key}/sizes", SizeHistory, days=days)
    if as_json:
        _json(found)
        return
    for point in found.sizes:
        out.print(
            f"{point.day.isoformat()}  {point.size:>8}  +{point.entered} -{point.exited}",
            highlight=False,
        )


@audiences_app.command("person")
def person(
    key: Annotated[str, typer.Argument(help="Any identifier (TYPE:VALUE) or person:N")],
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """The audiences a person is in, and their entries and exits."""
    with client_for(data_dir) as api:
        found = api.get(f"/v1/profiles/{key}/audiences", PersonMemberships)
    if as_json:
        _json(found)
        return
    out.print(found.person)
    for audience in found.audiences:
        out.print(f"  in {audience.key} since {iso(audience.entered_at)[:19]}", highlight=False)
    for change in found.history:
        out.print(f"  {iso(change.at)[:19]} {change.change} {change.audience}", highlight=False)


@audiences_app.command("send")
def send(
    key: Key,
    destination: Annotated[int, typer.Argument(help="The destination's id")],
    mode: Annotated[
        str, typer.Option(help="identify (<key>: true|false) or track (Audience Entered/Exited)")
    ] = "identify",
    data_dir: DataDir = None,
) -> None:
    """Send the audience to a destination: every member now, then each entry and exit."""
    _link(key, destination, mode, None, data_dir)


@audiences_app.command("link")
def link(
    key: Key,
    destination: Annotated[int, typer.Argument(help="The destination's id")],
    schedule: Annotated[
        str | None,
        typer.Option(
            help="A file destination's schedule: 'every 15 minutes', 'every 2 hours', "
            "'daily at 06:00' (UTC)"
        ),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="identify, track or file (default: file for a file destination, else identify)"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Link the audience to a destination: a file destination gets every member as one CSV
    or Parquet file now and on the schedule; a webhook or collector, as send does."""
    _link(key, destination, mode, schedule, data_dir)


@audiences_app.command("export-now")
def export_now(
    key: Key,
    destination: Annotated[int, typer.Argument(help="The file destination's id")],
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Write a file link's file now, besides its schedule."""
    with client_for(data_dir) as api:
        run = api.post(
            f"/v1/audiences/{key}/destinations/{destination}/export", None, AudienceFileRun
        )
    if as_json:
        _json(run)
        return
    out.print(
        f"audience {key}: {run.rows} members to destination {destination} "
        f"(message {run.message_id}; {run.skipped} without consent left out); "
        f"next run {iso(run.next_run_at)[:16]}",
        highlight=False,
    )


def _link(
    key: str, destination: int, mode: str | None, schedule: str | None, data_dir: Path | None
) -> None:
    body: dict[str, Any] = {"destination": destination, "mode": mode}
    if schedule is not None:
        body["schedule"] = schedule
    with client_for(data_dir) as api:
        found = api.post(f"/v1/audiences/{key}/destinations", body, Audience)
    made = next(d for d in found.destinations if d.destination == destination)
    if made.mode == "file":
        out.print(f"audience {key}: {_link_line(made)}", highlight=False)
    else:
        out.print(
            f"audience {key} is sent to destination {destination} ({made.mode}): "
            f"{made.sent} messages"
        )


def _link_line(link: AudienceLink) -> str:
    if link.mode == "file":
        return (
            f"written to destination {link.destination} as a file {link.schedule}: "
            f"{link.rows} members at the last run, next {iso_or_none(link.next_run_at)}"
        )
    return f"sent to destination {link.destination} ({link.mode}), {link.sent} messages"


@audiences_app.command("stop-sending")
def stop_sending(
    key: Key,
    destination: Annotated[int, typer.Argument(help="The destination's id")],
    data_dir: DataDir = None,
) -> None:
    """Stop sending the audience to a destination."""
    with client_for(data_dir) as api:
        api.delete(f"/v1/audiences/{key}/destinations/{destination}")
    out.print(f"audience {key} is no longer sent to destination {destination}")


@audiences_app.command("evaluate")
def evaluate(data_dir: DataDir = None, as_json: Json = False) -> None:
    """Evaluate every computed trait and audience for everyone now."""
    with client_for(data_dir) as api:
        done = api.post("/v1/audiences/evaluate", None, Evaluated)
    if as_json:
        _json(done)
        return
    out.print(
        f"{done.audiences} audiences, {done.traits} computed traits: {done.entered} entered, "
        f"{done.exited} exited, {done.messages} messages, in {done.seconds:.2f} s"
    )
