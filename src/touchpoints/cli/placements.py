"""placements and decide: personalisation through the API, like every command.

A placement is a file (YAML or JSON, ``-`` for standard input), read here and sent to the
API as JSON, which checks it and answers a mistake with its place
(``rules[0].condition.audience: …``). ``decide`` asks what a person would be shown, as the
website does (and is logged as a decision like the website's).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from touchpoints.activate.decide.results import Decision, Placement, PlacementList, Uplift
from touchpoints.cli.audiences import Json, Key, Source, _definition, _json
from touchpoints.cli.base import DataDir, app, client_for, out
from touchpoints.times import iso_or_none

placements_app = typer.Typer(
    help="Placements (personalisation): create, list, show, change, delete, uplift.",
    no_args_is_help=True,
)
app.add_typer(placements_app, name="placements")


def _summary(placement: Placement) -> str:
    control = f", {placement.control_percent:g}% held out" if placement.control_percent else ""
    return f"{placement.strategy}, {len(placement.rules)} rules{control}"


@placements_app.command("create")
def create(source: Source, data_dir: DataDir = None, as_json: Json = False) -> None:
    """Define a placement (decisions use it at once)."""
    body = _definition(source)
    with client_for(data_dir) as api:
        made = api.post("/v1/placements", body, Placement)
    if as_json:
        _json(made)
        return
    out.print(f"placement {made.key}: {_summary(made)}")


@placements_app.command("change")
def change(key: Key, source: Source, data_dir: DataDir = None) -> None:
    """A new definition for a placement (its key stays)."""
    body = _definition(source)
    with client_for(data_dir) as api:
        changed = api.put(f"/v1/placements/{key}", body, Placement)
    out.print(f"placement {changed.key}: {_summary(changed)}")


@placements_app.command("delete")
def delete(key: Key, data_dir: DataDir = None) -> None:
    """Delete a placement and its decision log."""
    with client_for(data_dir) as api:
        api.delete(f"/v1/placements/{key}")
    out.print(f"placement {key} deleted")


@placements_app.command("list")
def listing(data_dir: DataDir = None, as_json: Json = False) -> None:
    """The placements, their strategies, rules and decisions."""
    with client_for(data_dir) as api:
        found = api.get("/v1/placements", PlacementList)
    if as_json:
        _json(found)
        return
    table = Table()
    for column in ("key", "name", "strategy", "rules", "control %", "decisions", "last"):
        table.add_column(column)
    for placement in found.placements:
        table.add_row(
            placement.key,
            placement.name,
            placement.strategy,
            ", ".join(str(rule["key"]) for rule in placement.rules) or "-",
            f"{placement.control_percent:g}",
            str(placement.decisions),
            iso_or_none(placement.last_decided_at) or "-",
        )
    out.print(table)


@placements_app.command("show")
def show(key: Key, data_dir: DataDir = None) -> None:
    """One placement as JSON (its definition and how many decisions it made)."""
    with client_for(data_dir) as api:
        _json(api.get(f"/v1/placements/{key}", Placement))


@placements_app.command("uplift")
def uplift(key: Key, data_dir: DataDir = None, as_json: Json = False) -> None:
    """The control group against the rest: conversion rates, their difference and its 95%
    interval."""
    with client_for(data_dir) as api:
        found = api.get(f"/v1/placements/{key}/uplift", Uplift)
    if as_json:
        _json(found)
        return
    if found.conversion_event is None:
        out.print(f"placement {key} has no conversion_event: nothing to compare")
    table = Table()
    for column in ("group", "persons", "converted", "rate"):
        table.add_column(column)
    for name, group in (("treatment", found.treatment), ("control", found.control)):
        rate = f"{group.rate:.1%}" if group.rate is not None else "-"
        table.add_row(name, str(group.persons), str(group.converted), rate)
    out.print(table)
    if found.uplift is not None and found.low is not None and found.high is not None:
        verdict = "significant" if found.significant else "not significant"
        out.print(
            f"uplift {found.uplift:+.1%} (95% interval {found.low:+.1%} to {found.high:+.1%}), "
            f"{verdict}"
        )
    else:
        out.print("uplift: not yet (no persons in one of the groups)")


@app.command("decide")
def decide(
    placement: Annotated[str, typer.Argument(help="The placement's key")],
    identifier: Annotated[
        str, typer.Argument(help="Whom for: TYPE:VALUE (anonymous_id:…, user_id:…, email:…)")
    ],
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """What a person would be shown in a placement, and why (logged as a decision)."""
    with client_for(data_dir) as api:
        found = api.post("/v1/decide", {"placement": placement, "identifier": identifier}, Decision)
    if as_json:
        _json(found)
        return
    out.print_json(data=found.content)
    why = f"rule {found.rule}" if found.rule else "the default"
    out.print(f"{why} ({found.reason}, strategy {found.strategy})")
