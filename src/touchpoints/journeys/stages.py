"""Stages per person, computed from events with Ibis expressions only (no per-event Python),
so the same code runs on DuckDB and Spark.

A person enters a stage with their first event that matches one of its rules (earliest by
event time, then by arrival); their current stage is the furthest stage entered. People may
skip stages (a store purchase with no web visit enters purchase without consideration); the
history shows only the stages they entered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from typing import Any

import ibis
import ibis.expr.types as ir

from touchpoints.journeys.model import NumberTest, Rule, StageModel
from touchpoints.journeys.source import Source


def rule_filter(
    rule: Rule, events: ir.Table, source: Source, entries: dict[str, ir.Table]
) -> ir.Table:
    """The events (with person) that ``rule`` matches."""
    conditions = []
    if rule.event is not None:
        conditions.append(events.event.isin(list(rule.event)))
    if rule.type is not None:
        conditions.append(events.type.isin(list(rule.type)))
    if rule.channel is not None:
        conditions.append(events.channel.isin(list(rule.channel)))
    if rule.path_prefix is not None:
        conditions.append(events.path.startswith(rule.path_prefix))
    if rule.campaign is not None:
        has = events.campaign.notnull() | events.medium.notnull()
        conditions.append(has if rule.campaign else ~has)
    if rule.first is not None:
        conditions.append((events.order_in_person == 0) == rule.first)
    matched = events.filter(*conditions) if conditions else events
    for key, wanted in (rule.properties or {}).items():
        props = source.properties()
        props = props.filter(props.key == key)
        if isinstance(wanted, NumberTest):
            value = props.number_value
            tests = [
                value >= wanted.gte if wanted.gte is not None else None,
                value <= wanted.lte if wanted.lte is not None else None,
                value > wanted.gt if wanted.gt is not None else None,
                value < wanted.lt if wanted.lt is not None else None,
            ]
            props = props.filter(*[t for t in tests if t is not None])
        elif isinstance(wanted, bool):
            props = props.filter(props.text_value == ("true" if wanted else "false"))
        elif isinstance(wanted, float | int):
            props = props.filter(props.number_value == float(wanted))
        else:
            props = props.filter(props.text_value == wanted)
        matched = matched.filter(matched.seq.isin(props.seq))
    if rule.after is not None:
        entered = entries[rule.after].select(person="person", after_ts="entered_at")
        matched = matched.join(entered, "person").filter(lambda t: t.ts > t.after_ts)
        matched = matched.drop("after_ts")
    return matched


def ordered_events(source: Source, model: StageModel) -> ir.Table:
    """Events with person; with ``order_in_person`` (0 = the person's first event) when a
    rule of the model asks for the first event."""
    events = source.events()
    rules = [r for s in model.stages for r in s.rules] + [
        r for p in model.pain_points for r in p.rules
    ]
    if not any(rule.first is not None for rule in rules):
        return events
    window = ibis.window(group_by=events.person, order_by=[events.ts, events.seq])
    return events.mutate(order_in_person=ibis.row_number().over(window))


def matching_events(
    rules: tuple[Rule, ...], events: ir.Table, source: Source, entries: dict[str, ir.Table]
) -> ir.Table:
    """Events matching any of ``rules``: (person, seq, ts, channel, event), each once."""
    parts = [
        rule_filter(rule, events, source, entries).select("person", "seq", "ts", "channel", "event")
        for rule in rules
    ]
    return reduce(lambda a, b: a.union(b, distinct=True), parts)


def stage_entries(source: Source, model: StageModel) -> ir.Table:
    """(person, stage, stage_index, entered_at, entered_seq, channel, event): one row for each
    stage each person entered, with the event that entered it."""
    events = ordered_events(source, model)
    entries: dict[str, ir.Table] = {}
    tables = []
    for index, stage in enumerate(model.stages):
        matched = matching_events(stage.rules, events, source, entries)
        window = ibis.window(group_by=matched.person, order_by=[matched.ts, matched.seq])
        first = matched.mutate(n=ibis.row_number().over(window)).filter(lambda t: t.n == 0)
        entry = first.select(
            "person",
            stage=ibis.literal(stage.name),
            stage_index=ibis.literal(index, type="int64"),
            entered_at=first.ts,
            entered_seq=first.seq,
            channel=first.channel,
            event=first.event,
        )
        entries[stage.name] = entry
        tables.append(entry)
    return reduce(lambda a, b: a.union(b), tables)


def current_stages(source: Source, model: StageModel) -> ir.Table:
    """(person, stage, stage_index, entered_at): each person's furthest stage."""
    entries = stage_entries(source, model)
    window = ibis.window(group_by=entries.person, order_by=[ibis.desc(entries.stage_index)])
    ranked = entries.mutate(n=ibis.row_number().over(window))
    return ranked.filter(ranked.n == 0).select("person", "stage", "stage_index", "entered_at")


@dataclass(frozen=True)
class StageCount:
    stage: str
    current: int  # persons whose furthest stage this is
    reached: int  # persons who entered it (whatever came after)


def stage_distribution(source: Source, model: StageModel) -> list[StageCount]:
    """For each stage: how many persons are in it now, and how many ever entered it (one
    query: a person's current stage is their entry with the highest stage index)."""
    entries = stage_entries(source, model)
    furthest = entries.stage_index.max().over(ibis.window(group_by=entries.person))
    marked = entries.mutate(now=(entries.stage_index == furthest).cast("int64"))
    counts = marked.group_by("stage").agg(reached=marked.count(), current=marked.now.sum())
    found = {row["stage"]: row for row in counts.to_pyarrow().to_pylist()}
    return [
        StageCount(
            name,
            int(found.get(name, {}).get("current") or 0),
            int(found.get(name, {}).get("reached") or 0),
        )
        for name in model.names
    ]


def stage_history(source: Source, model: StageModel, person: int) -> list[dict[str, Any]]:
    """The stages one person entered, in journey order, with when and through which event."""
    entries = stage_entries(source, model)
    rows = (
        entries.filter(entries.person == person)
        .order_by("stage_index")
        .select("stage", "entered_at", "channel", "event")
        .to_pyarrow()
        .to_pylist()
    )
    return [{**row, "entered_at": _iso(row["entered_at"])} for row in rows]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds") + "Z"
