"""Paths: what people do after a start event or before an end event, and journey variants.

:func:`top_paths` anchors each person at their *first* ``start`` event (or their first
``end`` event) and takes the next (or the previous) ``depth`` steps. A step is a track, page
or screen event, named by its event (track name, page or screen name) or, with
``step="channel"``, by its channel; identify, group and alias calls are not steps. Ordering is
by event time, then arrival; the anchor event itself is not a step. By default consecutive
repeats of a step are collapsed into one (a reloaded page is one step) before the depth is
counted. Steps that occur in fewer than ``min_share`` of the paths are grouped as
``(other)`` so that rare pages do not split the picture into thousands of one-person paths.
A path shorter than the depth ends there (a person with no step at all has the empty path).
Paths are listed from the most to the least frequent, in time order (for ``end``, the last
step is the one right before the end event).

:func:`journey_variants` lists the distinct sequences of stages people went through (in the
order they entered them: by time, then arrival, then the model's stage order) and how many
people follow each.

Both pivot the first ``depth`` steps into columns with filtered aggregates and count groups:
Ibis expressions only, identical on DuckDB and Spark, no ordered string aggregation.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from touchpoints.journeys.model import StageModel
from touchpoints.journeys.queries import STEP_KINDS, PathsQuery
from touchpoints.journeys.results import PathCount, PathReport, VariantReport
from touchpoints.journeys.source import Source
from touchpoints.journeys.spec import AnalysisError
from touchpoints.journeys.stages import order_columns, order_keys, stage_entries

OTHER = "(other)"
STEP_TYPES = ("track", "page", "screen")


class PathsError(AnalysisError):
    """A parameter of a path analysis that cannot work, with what to give instead."""


def _pivot(steps: ir.Table, people: ir.Table, depth: int, key: str) -> ir.Table:
    """(step_0 … step_{depth-1}, people): each person's first ``depth`` steps as columns
    (null past the end of their path), counted by pattern. ``people`` has one row per person
    to count, with or without steps."""
    columns = {f"step_{k}": steps[key].max(where=steps.pos == k) for k in range(depth)}
    wide = steps.group_by("person").agg(**columns)
    wide = people.left_join(wide, "person").drop("person_right")
    names = list(columns)
    return wide.group_by(names).agg(people=wide.person.count())


def _ranked(
    rows: list[dict[str, Any]], depth: int, total: int, limit: int, reverse: bool
) -> tuple[list[PathCount], int]:
    names = [f"step_{k}" for k in range(depth)]
    found = []
    for row in rows:
        steps = [row[n] for n in names if row[n] is not None]
        found.append((list(reversed(steps)) if reverse else steps, int(row["people"])))
    found.sort(key=lambda item: (-item[1], item[0]))
    shown = [
        PathCount(steps=s, people=n, share=n / total if total else 0.0) for s, n in found[:limit]
    ]
    return shown, sum(n for _s, n in found[limit:])


def _check(depth: int, min_share: float, limit: int, step: str) -> None:
    if depth < 1:
        raise PathsError(f"depth: {depth} must be at least 1")
    if not 0 <= min_share < 1:
        raise PathsError(f"min_share: {min_share} must be at least 0 and below 1")
    if limit < 1:
        raise PathsError(f"limit: {limit} must be at least 1")
    if step not in STEP_KINDS:
        raise PathsError(f"step: {step!r} is not a kind of step; give one of {STEP_KINDS}")


def top_paths(
    source: Source,
    *,
    start: str | None = None,
    end: str | None = None,
    depth: int = 5,
    step: str = "event",
    min_share: float = 0.05,
    collapse_repeats: bool = True,
    limit: int = 20,
) -> PathReport:
    """The most frequent paths of ``depth`` steps after each person's first ``start`` event,
    or before their first ``end`` event (give exactly one of them)."""
    if (start is None) == (end is None):
        raise PathsError("give exactly one of start (paths after it) or end (paths before it)")
    _check(depth, min_share, limit, step)
    anchor_event = start if start is not None else end
    assert anchor_event is not None
    after = start is not None
    events = source.events()
    events = events.filter(events.type.isin(list(STEP_TYPES)))
    events = events.mutate(key=ibis.coalesce(events[step], ibis.literal("(none)")))
    anchors = events.filter(events.event == anchor_event)
    first = ibis.window(group_by=anchors.person, order_by=[anchors.ts, anchors.seq])
    anchors = anchors.mutate(n=ibis.row_number().over(first))
    anchors = anchors.filter(anchors.n == 0).select(
        "person", anchor_ts=anchors.ts, anchor_seq=anchors.seq
    )
    with source.cache(anchors) as anchors:
        return _top_paths(
            source,
            events,
            anchors,
            anchor_event,
            after,
            depth,
            step,
            min_share,
            collapse_repeats,
            limit,
        )


def _top_paths(
    source: Source,
    events: ir.Table,
    anchors: ir.Table,
    anchor_event: str,
    after: bool,
    depth: int,
    step: str,
    min_share: float,
    collapse_repeats: bool,
    limit: int,
) -> PathReport:
    steps = events.join(anchors, "person")
    if after:
        steps = steps.filter(
            (steps.ts > steps.anchor_ts)
            | ((steps.ts == steps.anchor_ts) & (steps.seq > steps.anchor_seq))
        )
    else:
        steps = steps.filter(
            (steps.ts < steps.anchor_ts)
            | ((steps.ts == steps.anchor_ts) & (steps.seq < steps.anchor_seq))
        )
    extra = [c for c in order_columns(steps) if c not in ("ts", "seq")]
    steps = steps.select("person", "seq", "ts", "key", *extra)

    def away(t: ir.Table) -> Any:
        """Each person's steps ordered away from the anchor: forwards after a start,
        backwards before an end."""
        keys = order_keys(t)
        order = keys if after else [ibis.desc(k) for k in keys]
        return ibis.window(group_by=t.person, order_by=order)

    if collapse_repeats:
        steps = steps.mutate(previous=steps.key.lag().over(away(steps)))
        steps = steps.filter(steps.previous.isnull() | (steps.previous != steps.key))
    steps = steps.mutate(pos=ibis.row_number().over(away(steps)))
    steps = steps.filter(steps.pos < depth).select("person", "key", "pos")
    people = int(source.arrow(anchors.count()).as_py())
    with source.cache(steps) as steps:  # at most ``depth`` rows a person, read twice
        if min_share > 0:
            seen = steps.group_by("key").agg(users=steps.person.nunique())
            rare = seen.filter(seen.users < min_share * people).select(rare_key=seen.key)
            steps = steps.left_join(rare, steps.key == rare.rare_key)
            steps = steps.mutate(
                key=ibis.cases((steps.rare_key.notnull(), ibis.literal(OTHER)), else_=steps.key)
            ).drop("rare_key")
        counted = _pivot(steps, anchors.select("person"), depth, "key")
        rows = source.rows(counted)
    paths, rest = _ranked(rows, depth, people, limit, reverse=not after)
    return PathReport(
        anchor="start" if after else "end",
        event=anchor_event,
        depth=depth,
        step=step,
        people=people,
        distinct_paths=len(rows),
        other_people=rest,
        paths=paths,
    )


def journey_variants(source: Source, model: StageModel, *, limit: int = 20) -> VariantReport:
    """The distinct stage sequences (in the order people entered the stages) and how many
    people follow each, most frequent first."""
    if limit < 1:
        raise PathsError(f"limit: {limit} must be at least 1")
    entries = stage_entries(source, model)
    window = ibis.window(
        group_by=entries.person,
        order_by=[entries.entered_at, entries.entered_seq, entries.stage_index],
    )
    entries = entries.mutate(pos=ibis.row_number().over(window))
    people = entries.select("person").distinct()
    depth = len(model.stages)
    counted = _pivot(entries, people, depth, "stage")
    rows = source.rows(counted)
    total = sum(int(r["people"]) for r in rows)
    variants, rest = _ranked(rows, depth, total, limit, reverse=False)
    return VariantReport(
        people=total, distinct_variants=len(rows), other_people=rest, variants=variants
    )


def paths_for(source: Source, query: PathsQuery) -> PathReport:
    """:func:`top_paths` for a validated question."""
    return top_paths(
        source,
        start=query.start,
        end=query.end,
        depth=query.depth,
        step=query.step,
        min_share=query.min_share,
        collapse_repeats=query.collapse,
        limit=query.limit,
    )
