"""journeys: stages per resolved person, and the stage model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from touchpoints.cli.base import DataDir, client_for, fail, journeys_app, out
from touchpoints.journeys.model import StageModelError, default_model_text, load_model


@journeys_app.command("stages")
def journeys_stages(
    key: Annotated[
        str | None,
        typer.Argument(help="One person's stage history: any identifier (TYPE:VALUE) or person:N"),
    ] = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON")] = False,
) -> None:
    """Persons per journey stage (now, and ever entered), or one person's stage history."""
    with client_for(data_dir) as client:
        result = client.stage_history(key) if key else client.journey_stages()
    if key and result is None:
        raise fail(f"no person has the identifier {key}")
    if as_json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        return
    if key:
        assert isinstance(result, dict)
        out.print(f"{result['person']}: now in {result['current'] or 'no stage'}", highlight=False)
        table = Table()
        for column in ("stage", "entered", "channel", "by event"):
            table.add_column(column, overflow="fold")
        for row in result["stages"]:
            table.add_row(row["stage"], row["entered_at"][:19], row["channel"], row["event"])
        out.print(table)
        return
    assert isinstance(result, list)
    table = Table(title="persons per journey stage")
    for column in ("stage", "now in it", "ever entered"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in result:
        table.add_row(row["stage"], f"{row['current']:,}", f"{row['reached']:,}")
    out.print(table)


@journeys_app.command("model")
def journeys_model(
    check: Annotated[
        Path | None, typer.Option(help="Check this stage model file instead of printing")
    ] = None,
) -> None:
    """Print the built-in stage model (YAML, to copy and edit), or check a model file."""
    if check is None:
        sys.stdout.write(default_model_text())
        return
    try:
        model = load_model(check)
    except StageModelError as exc:
        raise fail(str(exc)) from None
    out.print(
        f"{check}: valid; stages {', '.join(model.names)}; {len(model.pain_points)} pain points",
        highlight=False,
    )
