"""journeys: stages per resolved person, and the stage model."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.table import Table

from touchpoints.cli.base import DataDir, client_for, fail, journeys_app, out
from touchpoints.errors import TouchpointsError
from touchpoints.journeys.model import StageModelError, default_model_text, load_model
from touchpoints.journeys.queries import (
    Answers,
    AttributionQuery,
    ChannelMixQuery,
    DropOffsQuery,
    FunnelComparisonQuery,
    FunnelQuery,
    JourneyMapQuery,
    PathsQuery,
    RetentionQuery,
    StageHistoryQuery,
    StagesQuery,
    VariantsQuery,
)
from touchpoints.journeys.results import FunnelResult, PathCount
from touchpoints.journeys.spec import short_span, validated

R = TypeVar("R", bound=BaseModel)


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
    if key:
        history = _ask(data_dir, StageHistoryQuery, {"person": key})
        if as_json:
            return _dump(history)
        out.print(f"{history.person}: now in {history.current or 'no stage'}", highlight=False)
        table = Table()
        for column in ("stage", "entered", "channel", "by event"):
            table.add_column(column, overflow="fold")
        for entry in history.stages:
            table.add_row(entry.stage, _when(entry.entered_at), entry.channel, entry.event)
        out.print(table)
        return
    found = _ask(data_dir, StagesQuery, {})
    if as_json:
        return _dump(found)
    table = Table(title="persons per journey stage")
    for column in ("stage", "now in it", "ever entered"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in found.stages:
        table.add_row(row.stage, f"{row.current:,}", f"{row.reached:,}")
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


# -- analyses ---------------------------------------------------------------------------------
Json = Annotated[bool, typer.Option("--json", help="The whole answer as JSON")]


def _ask(data_dir: Path | None, kind: type[Answers[R]], params: dict[str, Any]) -> R:
    """Ask a journey question: checked here first (a mistake names its place), then
    answered by the API (``POST /v1/journeys/query``) as its typed answer."""
    try:
        question = validated(kind, params)  # type: ignore[type-var]
    except TouchpointsError as exc:
        raise fail(str(exc)) from None
    with client_for(data_dir) as api:
        return api.query(question)


def _dump(result: BaseModel) -> None:
    sys.stdout.write(result.model_dump_json() + "\n")


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _pct(share: float | None) -> str:
    return "" if share is None else f"{share:.1%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


@journeys_app.command("map")
def journeys_map(
    data_dir: DataDir = None,
    top: Annotated[int, typer.Option(min=1, max=50, help="Channels and touchpoints per stage")] = 5,
    since: Annotated[
        str | None, typer.Option(help="Of what happened from (ISO 8601, UTC; inclusive)")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Of what happened before (ISO 8601, UTC; exclusive)")
    ] = None,
    channel: Annotated[str | None, typer.Option(help="Of the persons who used it")] = None,
    age_group: Annotated[
        str | None, typer.Option(help="Of the persons in this age band (e.g. 25-34, unknown)")
    ] = None,
    segment: Annotated[
        str | None, typer.Option(help="Of the persons with this trait value (e.g. city=Hamburg)")
    ] = None,
    as_json: Json = False,
) -> None:
    """The journey map: per stage, reach, conversion, time to move on, drop-off and top
    channels; pain points and how strongly each goes with dropping out."""
    params = {
        "top": top,
        "since": since,
        "until": until,
        "channel": channel,
        "age_group": age_group,
        "segment": segment,
    }
    result = _ask(data_dir, JourneyMapQuery, {k: v for k, v in params.items() if v is not None})
    if as_json:
        return _dump(result)
    table = Table(title="journey map (persons)")
    for column in ("stage", "reached", "went on", "conversion", "median", "p90", "top channels"):
        table.add_column(column, justify="left" if column in ("stage", "top channels") else "right")
    for row in result.stages:
        channels = ", ".join(f"{c.channel} {c.persons:,}" for c in row.top_channels[:3])
        table.add_row(
            row.stage,
            f"{row.reached:,}",
            "" if row.went_on is None else f"{row.went_on:,}",
            _pct(row.conversion),
            _duration(row.median_seconds),
            _duration(row.p90_seconds),
            channels,
        )
    out.print(table)
    pains = Table(title="pain points")
    for column in ("signal", "persons", "relative risk of dropping out"):
        pains.add_column(column, justify="left" if column == "signal" else "right")
    for pain in result.pain_points:
        risk = pain.relative_risk
        pains.add_row(pain.name, f"{pain.persons:,}", "" if risk is None else f"{risk:.2f}")
    out.print(pains)


@journeys_app.command("funnel")
def journeys_funnel(
    steps: Annotated[list[str], typer.Argument(help="Event names, in order (two or more)")],
    data_dir: DataDir = None,
    window: Annotated[str, typer.Option(help="14d, 12h, 30m, seconds, or ISO 8601")] = "14d",
    order: Annotated[str, typer.Option(help="relaxed or strict")] = "relaxed",
    unit: Annotated[str, typer.Option(help="person (resolved) or device")] = "person",
    by: Annotated[
        str | None, typer.Option(help="channel, device_type, age_group or trait:KEY")
    ] = None,
    compare: Annotated[bool, typer.Option(help="Per person and per device side by side")] = False,
    drop_offs: Annotated[
        int | None, typer.Option(help="List who reached this step and not the next")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Drop-offs to list")] = 20,
    as_json: Json = False,
) -> None:
    """A funnel of events: conversion per step, drop-off and time to convert."""
    spec: dict[str, Any] = {
        "steps": [{"event": name} for name in steps],
        "window": short_span(window),
        "order": order,
        "unit": unit,
        "breakdown": by,
    }
    if drop_offs is not None:
        page = _ask(data_dir, DropOffsQuery, {"funnel": spec, "step": drop_offs, "limit": limit})
        if as_json:
            return _dump(page)
        out.print(f"{page.total:,} reached step {page.step} and no further", highlight=False)
        table = Table()
        for column in ("person", "device", "entered", "reached step"):
            table.add_column(column, overflow="fold")
        for row in page.units:
            table.add_row(
                f"person:{row.person}",
                row.identifier or "",
                _when(row.entered_at),
                _when(row.reached_at),
            )
        out.print(table)
        return
    results: dict[str, FunnelResult]
    if compare:
        both = _ask(data_dir, FunnelComparisonQuery, spec)
        if as_json:
            return _dump(both)
        results = {"person": both.person, "device": both.device}
    else:
        one = _ask(data_dir, FunnelQuery, spec)
        if as_json:
            return _dump(one)
        results = {unit: one}
    for name, found in results.items():
        table = Table(title=f"funnel per {name} ({found.order} order)")
        for column in (
            "step",
            "event",
            name + "s",
            "of step 1",
            "of previous",
            "dropped",
            "median",
        ):
            table.add_column(column, justify="left" if column == "event" else "right")
        for step in found.steps:
            table.add_row(
                str(step.step),
                step.event,
                f"{step.units:,}",
                _pct(step.conversion),
                _pct(step.from_previous),
                f"{step.dropped:,}",
                _duration(step.median_seconds),
            )
        out.print(table)
        for group in found.groups:
            last = group.steps[-1]
            out.print(
                f"  {found.breakdown} = {group.value}: {group.steps[0].units:,} entered, "
                f"{_pct(last.conversion)} converted",
                highlight=False,
            )


@journeys_app.command("retention")
def journeys_retention(
    data_dir: DataDir = None,
    period: Annotated[str, typer.Option(help="week or month")] = "week",
    periods: Annotated[int, typer.Option(min=1, max=104)] = 8,
    start_event: Annotated[str | None, typer.Option(help="Cohort by this event (any)")] = None,
    return_event: Annotated[str | None, typer.Option(help="Counts as a return (any)")] = None,
    unit: Annotated[str, typer.Option(help="person or device")] = "person",
    as_json: Json = False,
) -> None:
    """Cohorts by first event week or month, and the share who came back each period."""
    spec = {
        "period": period,
        "periods": periods,
        "start_event": start_event,
        "return_event": return_event,
        "unit": unit,
    }
    result = _ask(data_dir, RetentionQuery, spec)
    if as_json:
        return _dump(result)
    table = Table(title=f"retention by {period} ({unit}s)")
    table.add_column("cohort")
    table.add_column("size", justify="right")
    for offset in range(result.periods + 1):
        table.add_column(str(offset), justify="right")
    for cohort in result.cohorts:
        table.add_row(
            cohort.cohort.isoformat(), f"{cohort.size:,}", *[_pct(s) for s in cohort.share]
        )
    out.print(table)


@journeys_app.command("paths")
def journeys_paths(
    data_dir: DataDir = None,
    after: Annotated[str | None, typer.Option(help="Paths after this event")] = None,
    before: Annotated[str | None, typer.Option(help="Paths before this event")] = None,
    depth: Annotated[int, typer.Option(min=1, max=20)] = 5,
    step: Annotated[str, typer.Option(help="event or channel")] = "event",
    min_share: Annotated[float, typer.Option(min=0, max=1, help="Rarer steps: (other)")] = 0.05,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    collapse: Annotated[
        bool,
        typer.Option(
            "--collapse/--keep-repeats",
            help="A run of the same step counts once (a reloaded page is one step)",
        ),
    ] = True,
    as_json: Json = False,
) -> None:
    """The most frequent paths after (or before) an event."""
    params = {
        "start": after,
        "end": before,
        "depth": depth,
        "step": step,
        "min_share": min_share,
        "limit": limit,
        "collapse": collapse,
    }
    result = _ask(data_dir, PathsQuery, params)
    if as_json:
        return _dump(result)
    title = f"{result.people:,} people, {result.distinct_paths:,} distinct paths"
    _print_sequences(title, "path", result.paths)


@journeys_app.command("variants")
def journeys_variants(
    data_dir: DataDir = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    as_json: Json = False,
) -> None:
    """Journey variants: the distinct stage sequences and how many people follow each."""
    result = _ask(data_dir, VariantsQuery, {"limit": limit})
    if as_json:
        return _dump(result)
    title = f"{result.distinct_variants:,} variants, {result.people:,} people"
    _print_sequences(title, "stages", result.variants)


def _print_sequences(title: str, name: str, rows: list[PathCount]) -> None:
    """Paths or variants: people, share and the steps joined by arrows."""
    table = Table(title=title)
    for column in ("people", "share", name):
        table.add_column(column, justify="left" if column == name else "right", overflow="fold")
    for row in rows:
        steps = " → ".join(row.steps) or "(no further step)"
        table.add_row(f"{row.people:,}", _pct(row.share), steps)
    out.print(table)


@journeys_app.command("channel-mix")
def journeys_channel_mix(
    data_dir: DataDir = None,
    band: Annotated[
        list[str] | None, typer.Option(help="An age band, e.g. 18-24 or 65+ (repeat)")
    ] = None,
    as_of: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Ages on this day")
    ] = None,
    measure: Annotated[str, typer.Option(help="people_share or contact_share")] = "people_share",
    as_json: Json = False,
) -> None:
    """Which channel reaches which age group: per band, the share of people using each
    channel (or of contacts on each channel)."""
    if measure not in ("people_share", "contact_share"):
        raise fail(f"--measure: give people_share or contact_share, not {measure!r}")
    params: dict[str, Any] = {"as_of": as_of.date() if as_of else None}
    if band:
        params["bands"] = band
    result = _ask(data_dir, ChannelMixQuery, params)
    if as_json:
        return _dump(result)
    # Channels down, bands across: twelve channels do not fit across a terminal.
    title = f"{measure.replace('_', ' ')} by age band (ages on {result.as_of.isoformat()})"
    table = Table(title=title)
    table.add_column("channel")
    for name in result.bands:
        table.add_column(name, justify="right")
    table.add_row("people", *[f"{result.people[name]:,}" for name in result.bands])
    matrix = result.matrix(measure)
    for column, channel in enumerate(result.channels):
        table.add_row(channel, *[_pct(row[column]) for row in matrix])
    out.print(table)


@journeys_app.command("attribution")
def journeys_attribution(
    data_dir: DataDir = None,
    conversion: Annotated[str, typer.Option(help="The conversion event")] = "Order Completed",
    by: Annotated[str, typer.Option(help="channel or campaign")] = "channel",
    lookback_days: Annotated[float, typer.Option(min=0.001, max=3650)] = 30,
    value_property: Annotated[str, typer.Option(help="Property with the value")] = "revenue",
    as_json: Json = False,
) -> None:
    """Conversions credited to channels or campaigns: first, last, linear, time decay,
    position based, and the data-driven Markov model."""
    params = {
        "conversion": conversion,
        "by": by,
        "lookback_days": lookback_days,
        "value_property": value_property,
    }
    result = _ask(data_dir, AttributionQuery, params)
    if as_json:
        return _dump(result)
    out.print(
        f"{result.conversions:,} conversions ({result.unattributed_conversions:,} without "
        f"a touchpoint in {result.lookback_days:g} days), value {result.value:,.2f}",
        highlight=False,
    )
    models = list(result.credits[0].conversions) if result.credits else []
    table = Table(title=f"conversions credited per {by}")
    table.add_column(by)
    for model in models:
        table.add_column(model.replace("_", " "), justify="right")
    table.add_column("removal effect", justify="right")
    for credit in result.credits:
        table.add_row(
            credit.key,
            *[f"{credit.conversions[m]:,.1f}" for m in models],
            _pct(credit.removal_effect),
        )
    out.print(table)
