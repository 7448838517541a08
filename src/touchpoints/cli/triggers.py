"""triggers: define, list, show, change, pause and delete triggers, and see their firings,
through the API like every command.

A definition is a file (YAML or JSON, ``-`` for standard input); it is read here and sent
to the API as JSON, which checks it and answers a mistake with its place
(``steps[1].delay: …``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from touchpoints.activate.triggers.results import Checked, FiringList, Trigger, TriggerList
from touchpoints.cli.audiences import Source, _definition
from touchpoints.cli.base import DataDir, app, client_for, out
from touchpoints.times import iso

triggers_app = typer.Typer(
    help="Triggers: create, check, list, show, change, enable, disable, delete, firings.",
    no_args_is_help=True,
)
app.add_typer(triggers_app, name="triggers")

Key = Annotated[str, typer.Argument(help="The trigger's key (e.g. cart_reminder)")]
Json = Annotated[bool, typer.Option("--json", help="The answer as JSON")]
Limit = Annotated[int, typer.Option("--limit", help="At most this many")]


def _json(answer: Trigger | TriggerList | FiringList | Checked) -> None:
    out.print_json(answer.model_dump_json())


def _line(trigger: Trigger) -> str:
    state = "" if trigger.enabled else " (disabled)"
    return f"trigger {trigger.key}{state}: {trigger.summary}"


@triggers_app.command("create")
def create(source: Source, data_dir: DataDir = None, as_json: Json = False) -> None:
    """Define a trigger (it fires for what arrives from now on)."""
    body = _definition(source)
    with client_for(data_dir) as api:
        made = api.post("/v1/triggers", body, Trigger)
    if as_json:
        _json(made)
        return
    out.print(_line(made), highlight=False)


@triggers_app.command("check")
def check(source: Source, data_dir: DataDir = None) -> None:
    """Check a definition and what it names, without saving it."""
    body = _definition(source)
    with client_for(data_dir) as api:
        found = api.post("/v1/triggers/validate", body, Checked)
    out.print(f"trigger {found.key} is valid: {found.summary}", highlight=False)


@triggers_app.command("change")
def change(key: Key, source: Source, data_dir: DataDir = None) -> None:
    """A new definition for a trigger (its key stays)."""
    body = _definition(source)
    with client_for(data_dir) as api:
        changed = api.put(f"/v1/triggers/{key}", body, Trigger)
    out.print(_line(changed), highlight=False)


def _switch(key: str, enabled: bool, data_dir: Path | None) -> None:
    with client_for(data_dir) as api:
        found = api.get(f"/v1/triggers/{key}", Trigger)
        body = {**found.definition, "enabled": enabled}
        changed = api.put(f"/v1/triggers/{key}", body, Trigger)
    out.print(_line(changed), highlight=False)


@triggers_app.command("enable")
def enable(key: Key, data_dir: DataDir = None) -> None:
    """Let a paused trigger fire again (for what arrives from now on)."""
    _switch(key, True, data_dir)


@triggers_app.command("disable")
def disable(key: Key, data_dir: DataDir = None) -> None:
    """Pause a trigger: it fires for nothing, and its waiting firings stop when due."""
    _switch(key, False, data_dir)


@triggers_app.command("delete")
def delete(key: Key, data_dir: DataDir = None) -> None:
    """Delete a trigger, its firings and the delays waiting."""
    with client_for(data_dir) as api:
        api.delete(f"/v1/triggers/{key}")
    out.print(f"trigger {key} deleted")


@triggers_app.command("list")
def listing(data_dir: DataDir = None, as_json: Json = False) -> None:
    """The triggers, what they do and how often they fired."""
    with client_for(data_dir) as api:
        found = api.get("/v1/triggers", TriggerList)
    if as_json:
        _json(found)
        return
    table = Table()
    for column in ("key", "name", "definition", "fired", "last 24 h", "waiting", "enabled"):
        table.add_column(column)
    for trigger in found.triggers:
        table.add_row(
            trigger.key,
            trigger.name,
            trigger.summary,
            str(trigger.fired),
            str(trigger.fired_day),
            str(trigger.waiting),
            "yes" if trigger.enabled else "no",
        )
    out.print(table)


@triggers_app.command("show")
def show(key: Key, data_dir: DataDir = None, as_json: Json = False) -> None:
    """One trigger and its definition."""
    with client_for(data_dir) as api:
        found = api.get(f"/v1/triggers/{key}", Trigger)
    if as_json:
        _json(found)
        return
    out.print(_line(found), highlight=False)
    out.print(
        f"  fired {found.fired} times, {found.fired_day} in the last 24 h; {found.waiting} waiting"
    )
    out.print_json(orjson.dumps(found.definition).decode())


@triggers_app.command("firings")
def firings(
    key: Annotated[
        str | None, typer.Argument(help="One trigger's (default: every trigger's)")
    ] = None,
    person: Annotated[
        str | None, typer.Option("--person", help="Any identifier (TYPE:VALUE) or person:N")
    ] = None,
    limit: Limit = 20,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Firings, newest first: what caused each, and what became of it."""
    path = f"/v1/triggers/{key}/firings" if key else "/v1/triggers/firings"
    params: dict[str, object] = {"limit": limit}
    if person is not None and not key:
        params["person"] = person
    with client_for(data_dir) as api:
        found = api.get(path, FiringList, **params)
    if as_json:
        _json(found)
        return
    for firing in found.firings:
        cause = f"{firing.cause.get('type', '')} {firing.cause.get('about', '')}".strip()
        note = f"  ({firing.detail})" if firing.detail else ""
        out.print(
            f"{iso(firing.fired_at)[:19]}  {firing.trigger:<20} {firing.person:<14} "
            f"{firing.state:<8} {cause}{note}",
            highlight=False,
        )
    if not found.firings:
        out.print("no firings")
