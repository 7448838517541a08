"""The journey map: how persons move through the stages, where they stop, which channels and
touchpoints they use on the way, which negative signals go with stopping, and the transitions
a Sankey diagram draws. Ibis expressions only, so DuckDB and Spark give the same map.

Definitions (a person's *journey* is their stage entries ordered by entry time, then arrival,
then model order; one event may enter two stages, as a first visit that is also a product
view enters awareness and consideration):

- **reached** (stage k): persons who entered k.
- **went on**: persons who, after entering k, entered a later stage of the model (any later
  one: people skip stages). "After" is in the journey's order, so a stage entered before k
  (sharing content, which enters advocacy, before buying) is not moving on from k.
- **next stage**: persons who, after entering k, entered stage k+1 itself.
- **dropped**: reached − went on: nothing further after k. This is "current stage" of
  :func:`~touchpoints.journeys.stages.stage_distribution` except for persons who entered a
  later stage before k. The last stage has no next, so its went on, next stage, dropped,
  conversion and times are ``None``.
- **conversion**: went on / reached.
- **time to move on**: from entering k to entering the first later stage after it, in whole
  seconds (event times are truncated to the second, as Spark's ``unix_timestamp`` does);
  median and 90th percentile, interpolated linearly (DuckDB ``percentile_cont``, Spark
  ``percentile``: both exact).
- **while in a stage**: from entering k (that event included) until the person's next stage
  entry in the journey (excluded), or for ever after the last one. Top channels and top
  touchpoints (event or page/screen names) count the events of that span: persons, then
  events, then the name decides the rank.
- **pain points**: a signal happened in the stage the person was in at that moment. For each
  stage before the last, persons with the signal there are compared with the other persons
  who reached that stage: the drop-out rate of each and their ratio (relative risk). The
  overall figure pools the stages with the Mantel-Haenszel relative risk. Comparing within a
  stage matters: most people drop out early, and a signal that comes late (a complaint after
  buying) would otherwise look protective only because late stages lose fewer people.
- **stage transitions**: consecutive entries in each journey (awareness → consideration);
  **channel transitions**: the directly-follows relation of each person's events ordered by
  time, then arrival (the same relation process-mining tools call the DFG). With
  ``collapse_repeats`` a run of events on one channel counts as one visit (no self-loops,
  which a Sankey cannot draw); without it the counts equal pm4py's ``discover_dfg``.
- **a date range** (``since`` inclusive, ``until`` exclusive) keeps what happened in it: the
  stage entries made in it (reach, moving on to a stage entered in it, the times), the events
  in it (top channels and touchpoints, pain signals, channel transitions). A stage is still
  entered once per person ever: someone who entered awareness before the range and
  consideration in it counts in consideration only.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import date, datetime
from functools import reduce
from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from touchpoints.journeys.model import Rule, StageModel
from touchpoints.journeys.results import (
    ChannelReach,
    ChannelTransition,
    JourneyMap,
    PainPointInStage,
    PainPointStat,
    StageStep,
    StageTransition,
    TouchpointReach,
)
from touchpoints.journeys.source import Source
from touchpoints.journeys.spec import AnalysisError, DateRange, validated
from touchpoints.journeys.stages import (
    facts,
    nullable,
    ordered_events,
    rule_columns,
    rule_filter,
    stage_entries,
    stage_spans,
    with_progress,
)


def journey_map(
    source: Source,
    model: StageModel,
    *,
    top: int = 5,
    collapse_repeats: bool = True,
    since: datetime | None = None,
    until: datetime | None = None,
    persons: ir.Table | None = None,
) -> JourneyMap:
    """The whole map; ``top`` channels and touchpoints per stage; ``collapse_repeats`` for
    the channel transitions; ``since`` (inclusive) and ``until`` (exclusive): what happened
    in that range only; ``persons`` (a table with a ``person`` column): their journeys only
    (see :func:`persons_who` and the module's docstring)."""
    if top < 1:
        raise ValueError(f"top must be at least 1, not {top}")
    period = validated(DateRange, {"since": since, "until": until})

    entries = _chosen(persons, _within(stage_entries(source, model), "entered_at", period))
    # Each stage entry's progress (a self-join of the entries, 0.35 s at 10.6 M events; kept
    # with the entries for whole journeys) is read by the counts and by the pain points:
    # computed once, kept for the block.
    with source.cache(_progress(entries, _whole(period))) as progress:
        return _journey_map(
            source, model, entries, progress, top, collapse_repeats, period, persons
        )


def _journey_map(
    source: Source,
    model: StageModel,
    entries: ir.Table,
    progress: ir.Table,
    top: int,
    collapse_repeats: bool,
    period: DateRange,
    persons: ir.Table | None,
) -> JourneyMap:
    events = _chosen(persons, _within(ordered_events(source), "ts", period))
    last = len(model.stages) - 1

    # One query for the counts and the times (quantiles skip those who did not move on).
    counts = {
        row["stage_index"]: row
        for row in source.rows(
            progress.group_by("stage_index").agg(
                reached=progress.count(),
                went_on=progress.went_on.sum(),
                next_stage=progress.to_next.sum(),
                median=progress.seconds.quantile(0.5),
                p90=progress.seconds.quantile(0.9),
            )
        )
    }
    placed = _chosen(persons, _within(facts(source, model), "ts", period))
    ranked = _top(
        source, placed.filter(placed.stage_index.notnull()), top, kept_firsts=_whole(period)
    )

    steps = []
    for index, name in enumerate(model.names):
        row = counts.get(index, {})
        reached = int(row.get("reached") or 0)
        went_on = int(row.get("went_on") or 0)
        final = index == last
        steps.append(
            StageStep(
                stage=name,
                reached=reached,
                went_on=None if final else went_on,
                next_stage=None if final else int(row.get("next_stage") or 0),
                dropped=None if final else reached - went_on,
                conversion=None if final or not reached else round(went_on / reached, 4),
                median_seconds=None if final else _seconds(row.get("median")),
                p90_seconds=None if final else _seconds(row.get("p90")),
                top_channels=ranked.get(("channel", index), []),
                top_touchpoints=ranked.get(("event", index), []),
            )
        )
    return JourneyMap(
        stages=steps,
        pain_points=_pain_points(source, model, events, entries, progress, placed, steps),
        stage_transitions=stage_transitions(source, entries, model, _whole(period)),
        channel_transitions=[
            ChannelTransition(source=a, target=b, count=n)
            for (a, b), n in sorted(
                directly_follows(
                    source,
                    "channel",
                    collapse_repeats=collapse_repeats,
                    period=period,
                    persons=persons,
                ).items()
            )
        ],
    )


def _chosen(persons: ir.Table | None, table: ir.Table) -> ir.Table:
    """``table`` (with a ``person`` column) of ``persons`` only; all of it without them."""
    return table if persons is None else table.semi_join(persons, "person")


def stage_transitions(
    source: Source, entries: ir.Table, model: StageModel, whole: bool = False
) -> list[StageTransition]:
    """Consecutive stage entries of each journey: (source, target, persons), in model order.
    ``whole``: ``entries`` are every entry of their persons, so the kept next entry holds
    (a window over every entry otherwise, 0.16 s at 10.6 M events)."""
    spans = entries if whole and "next_index" in entries.columns else stage_spans(entries)
    pairs = spans.filter(spans.next_index.notnull())
    counted = pairs.group_by("stage_index", "next_index").agg(persons=pairs.count())
    names = model.names
    return [
        StageTransition(
            source=names[row["stage_index"]],
            target=names[row["next_index"]],
            persons=int(row["persons"]),
        )
        for row in sorted(source.rows(counted), key=lambda r: (r["stage_index"], r["next_index"]))
    ]


def directly_follows(
    source: Source,
    by: Literal["channel", "event"] = "channel",
    *,
    collapse_repeats: bool = False,
    period: DateRange | None = None,
    persons: ir.Table | None = None,
) -> dict[tuple[str, str], int]:
    """How often ``by`` value b directly follows a in a person's events, ordered by time then
    arrival. Without ``collapse_repeats`` this is the directly-follows graph of process
    mining (pm4py's ``discover_dfg`` with case = person, activity = ``by``); with it, a run of
    equal values counts once, so there are no self-loops. With ``period``, the events in it
    only (a step from an event before it does not count)."""
    if by not in ("channel", "event"):
        raise ValueError(f"by must be 'channel' or 'event', not {by!r}")
    events = _within(source.events(), "ts", period)
    if persons is not None:
        events = events.semi_join(persons, "person")
    if by == "channel" and _whole(period) and "previous_channel" in events.columns:
        # Kept with the facts: the channel of each event's predecessor, no window needed.
        steps = events.select(a=events.previous_channel, b=events.channel)
        steps = steps.filter(steps.a.notnull())
        if collapse_repeats:
            steps = steps.filter(steps.a != steps.b)
        counted = steps.group_by("a", "b").agg(n=steps.count())
        return {(row["a"], row["b"]): int(row["n"]) for row in source.rows(counted)}
    window = ibis.window(group_by=events.person, order_by=[events.ts, events.seq])
    steps = events.select(a=events[by], b=events[by].lead().over(window))
    steps = steps.filter(steps.b.notnull())
    if collapse_repeats:
        steps = steps.filter(steps.a != steps.b)
    counted = steps.group_by("a", "b").agg(n=steps.count())
    return {(row["a"], row["b"]): int(row["n"]) for row in source.rows(counted)}


def persons_who(
    source: Source,
    *,
    channel: str | None = None,
    age_group: str | None = None,
    bands: list[str] | None = None,
    as_of: date | None = None,
    period: DateRange | None = None,
    segment: str | None = None,
) -> ir.Table | None:
    """(person): those who used ``channel`` (in ``period`` when given), whose age on
    ``as_of`` (default today) falls in the band labelled ``age_group`` of ``bands`` (the
    channel mix's bands; ``unknown``: no birthday or age trait), and whose latest value of a
    trait is the one ``segment`` names (``key=value``, e.g. ``city=Hamburg``; letter case
    aside); None when none of these is asked."""
    from touchpoints.journeys.ages import DEFAULT_BANDS, UNKNOWN, band_of, parse_bands
    from touchpoints.journeys.channel_mix import person_ages

    if channel is None and age_group is None and segment is None:
        return None
    events = _within(source.events(), "ts", period)
    if channel is not None:
        events = events.filter(events.channel == channel)
    chosen = events.select("person").distinct()
    if segment is not None:
        key, sep, value = segment.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise AnalysisError(
                f"segment: {segment!r} is not a trait and a value; give key=value, "
                "e.g. city=Hamburg"
            )
        traits = source.latest_traits(key.strip())
        members = traits.filter(traits.text_value.lower() == value.strip().lower())
        chosen = chosen.semi_join(members, "person")
    if age_group is not None:
        parsed = parse_bands(list(bands or DEFAULT_BANDS))
        labels = [b.label for b in parsed] + [UNKNOWN]
        if age_group not in labels:
            raise AnalysisError(
                f"age_group: {age_group!r} is not one of the bands {', '.join(labels)}"
            )
        ages = person_ages(source, as_of or date.today())
        aged = chosen.left_join(ages, "person")
        aged = aged.select(person=aged.person, band=band_of(aged.age, parsed))
        chosen = aged.filter(aged.band == age_group).select("person")
    return chosen


# -- pieces ---------------------------------------------------------------------------------
def _whole(period: DateRange | None) -> bool:
    """Whether ``period`` leaves the whole of every journey (what the kept facts count)."""
    return period is None or (period.since is None and period.until is None)


def _within(table: ir.Table, column: str, period: DateRange | None) -> ir.Table:
    """The rows of ``table`` whose ``column`` falls in ``period`` (all without one)."""
    if period is None or _whole(period):
        return table
    if period.since is not None:
        table = table.filter(table[column] >= period.since)
    if period.until is not None:
        table = table.filter(table[column] < period.until)
    return table


def _progress(entries: ir.Table, whole: bool) -> ir.Table:
    """(person, stage_index, went_on, to_next, seconds): per stage entry, whether a later
    stage was entered after it (1/0), whether stage k+1 was, and the seconds to the first.
    ``whole``: ``entries`` are every entry of their persons, so the progress kept with them
    holds (:func:`~touchpoints.journeys.stages.with_progress`); computed within the entries
    given otherwise."""
    if not (whole and "went_on_at" in entries.columns):
        entries = with_progress(entries)
    return entries.select(
        "person",
        "stage_index",
        went_on=entries.went_on_at.notnull().cast("int64"),
        to_next=entries.to_next.cast("int64"),
        seconds=_epoch(entries.went_on_at) - _epoch(entries.entered_at),
    )


def _epoch(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Whole seconds since 1970: the same on DuckDB (epoch) and Spark (unix_timestamp)."""
    return ts.epoch_seconds().floor().cast("int64")


def _top(
    source: Source, in_stage: ir.Table, top: int, kept_firsts: bool = False
) -> dict[tuple[str, int], list[Any]]:
    """The ``top`` channels and events of each stage, in one query: {(column, stage_index):
    [ChannelReach or TouchpointReach]}. With ``kept_firsts`` (the whole of each journey),
    the facts' marks of each person's first event per stage and channel (or event) count
    the persons: a sum instead of a distinct count."""
    parts = []
    marks = ("first_channel_in_stage", "first_event_in_stage")
    if kept_firsts and all(m in in_stage.columns for m in marks):
        # Sums and counts add up: one grouping by stage, channel and event (a few thousand
        # rows) is rolled up both ways, where each way was a grouping of every event (0.27 s
        # at 10.6 M events, 0.16 s now; 2026-12-03).
        fine = in_stage.group_by("stage_index", "channel", "event").agg(
            **{m: in_stage[m].cast("int64").sum() for m in marks}, events=in_stage.count()
        )
        for column in ("channel", "event"):
            counted = fine.group_by("stage_index", name=fine[column]).agg(
                persons=fine[f"first_{column}_in_stage"].sum(), events=fine.events.sum()
            )
            parts.append(counted.mutate(kind=ibis.literal(column)))
    else:
        for column in ("channel", "event"):
            counted = in_stage.group_by("stage_index", name=in_stage[column]).agg(
                persons=in_stage.person.nunique(), events=in_stage.count()
            )
            parts.append(counted.mutate(kind=ibis.literal(column)))
    counted = parts[0].union(parts[1])
    window = ibis.window(
        group_by=[counted.kind, counted.stage_index],
        order_by=[ibis.desc(counted.persons), ibis.desc(counted.events), counted.name],
    )
    ranked = counted.mutate(rank=ibis.row_number().over(window))
    best = ranked.filter(ranked.rank < top)
    out: dict[tuple[str, int], list[Any]] = {}
    for row in sorted(source.rows(best), key=lambda r: (r["kind"], r["stage_index"], r["rank"])):
        persons, events = int(row["persons"]), int(row["events"])
        reach = (
            ChannelReach(channel=row["name"], persons=persons, events=events)
            if row["kind"] == "channel"
            else TouchpointReach(event=row["name"], persons=persons, events=events)
        )
        out.setdefault((row["kind"], row["stage_index"]), []).append(reach)
    return out


def _repeated(matched: ir.Table, min_count: int, within_days: float | None) -> ir.Table:
    """The events that make a person's ``min_count``-th matching event, counting only those
    since ``within_days`` before it (a self-join on the person: a range window over time is
    not portable); with ``min_count`` 1, every matching event."""
    if min_count <= 1:
        return matched
    if within_days is None:
        window = ibis.window(group_by=matched.person, order_by=[matched.ts, matched.seq])
        ranked = matched.mutate(n=ibis.row_number().over(window))
        return ranked.filter(ranked.n == min_count - 1).drop("n")
    earlier = matched.select(person="person", e_ts="ts", e_seq="seq")
    span = ibis.interval(seconds=int(within_days * 86_400))
    pairs = matched.join(
        earlier,
        [
            matched.person == earlier.person,
            earlier.e_ts >= matched.ts - span,
            (earlier.e_ts < matched.ts)
            | ((earlier.e_ts == matched.ts) & (earlier.e_seq <= matched.seq)),
        ],
    )
    keys = [c for c in ("person", "seq", "ts", "stage_index") if c in matched.columns]
    counted = pairs.group_by(keys).agg(n=pairs.count())
    return counted.filter(counted.n >= min_count).drop("n")


def _signals(
    rules: tuple[Rule, ...],
    events: ir.Table,
    source: Source,
    entries: dict[str, ir.Table],
    keep: list[str],
) -> ir.Table:
    """The events matching any of a pain point's ``rules``, each once, with ``keep``."""
    parts = [nullable(rule_filter(r, events, source, entries).select(*keep)) for r in rules]
    return reduce(lambda a, b: a.union(b, distinct=True), parts)


def pain_signals(
    source: Source,
    model: StageModel,
    events: ir.Table,
    entries: ir.Table,
    keep: list[str],
) -> ir.Table | None:
    """(``keep`` columns, pain): the events of ``events`` that are a signal of one of the
    model's pain points (a person's ``min_count``-th matching event for a repeated one), each
    with the pain point's name; ``entries`` the stage entries that ``after`` rules read. The
    one definition of a pain signal: the journey map weighs them, churn risk counts them.
    None when the model has no pain points."""
    if not model.pain_points:
        return None
    by_name = {name: entries.filter(entries.stage == name) for name in model.names}
    return reduce(
        lambda a, b: a.union(b),
        [
            _repeated(
                _signals(pain.rules, events, source, by_name, keep),
                pain.min_count,
                pain.within_days,
            ).select(*keep, pain=ibis.literal(pain.name))
            for pain in model.pain_points
        ],
    )


def _pain_event_names(model: StageModel) -> list[str] | None:
    """The events any pain point's rules can match, when every rule names its events."""
    names: set[str] = set()
    for pain in model.pain_points:
        for rule in pain.rules:
            if rule.event is None:
                return None
            names.update(rule.event)
    return sorted(names)


def _pain_cells(
    source: Source, signals: ir.Table, placed: ir.Table, progress: ir.Table, staged: bool
) -> dict[str, dict[int, tuple[int, int]]]:
    """{pain: {stage_index: (persons, dropped)}}: per stage, the persons with the signal there
    and how many of them went no further; at -1, the persons with it anywhere."""
    if staged:
        where = signals.filter(signals.stage_index.notnull())
    else:
        stages = placed.filter(placed.stage_index.notnull()).select("seq", "stage_index")
        where = signals.join(stages, "seq")
    where = where.select("pain", "person", "stage_index").distinct()
    outcome = where.join(
        progress.select("person", "stage_index", "went_on"), ["person", "stage_index"]
    )
    per_stage = outcome.group_by("pain", "stage_index").agg(
        persons=outcome.count(), dropped=(1 - outcome.went_on).sum()
    )
    # With, in the same query, the persons with each signal anywhere (stage_index -1).
    anywhere = signals.group_by("pain").agg(
        stage_index=ibis.literal(-1, type="int64"),
        persons=signals.person.nunique(),
        dropped=ibis.literal(0, type="int64"),
    )
    cells: dict[str, dict[int, tuple[int, int]]] = {}
    for row in source.rows(per_stage.union(anywhere)):
        cells.setdefault(row["pain"], {})[row["stage_index"]] = (
            int(row["persons"]),
            int(row["dropped"]),
        )
    return cells


def _pain_points(
    source: Source,
    model: StageModel,
    events: ir.Table,
    entries: ir.Table,
    progress: ir.Table,
    placed: ir.Table,
    steps: list[StageStep],
) -> list[PainPointStat]:
    # Kept facts carry the stage of each event: a signal needs no join to find its stage.
    staged = "stage_index" in events.columns
    keep = ["person", "seq", "ts", *(["stage_index"] if staged else [])]
    if not model.pain_points:
        return []
    with ExitStack() as kept:
        names = _pain_event_names(model)
        if names is not None:
            # Every rule names its events: one scan finds all of them, and each rule looks
            # among those rather than scanning every event again (at 10.6 M events: nine
            # scans and a self-join, 0.48 s; the one scan 0.13 s and the rules on what it
            # found 0.12 s).
            # Only the columns the rules read are copied: all sixteen of the facts took
            # 0.24 s at 10.6 M events, these 0.10 s (2026-12-03).
            read = {
                c for pain in model.pain_points for r in pain.rules for c in rule_columns(r, events)
            }
            columns = [*keep, *sorted(read - set(keep))]
            found = events.filter(events.event.isin(names)).select(*columns)
            events = kept.enter_context(source.cache(found))
        signals = pain_signals(source, model, events, entries, keep)
        assert signals is not None
        # Read twice (per stage and anywhere): computed once.
        signals = kept.enter_context(source.cache(signals))
        cells = _pain_cells(source, signals, placed, progress, staged)
    out = []
    for pain in model.pain_points:
        rows = []
        pooled_with = pooled_without = 0.0
        for index, step in enumerate(steps[:-1]):
            if index not in cells.get(pain.name, {}):
                continue
            persons, dropped = cells[pain.name][index]
            others = step.reached - persons
            others_dropped = (step.dropped or 0) - dropped
            rate = dropped / persons
            other_rate = others_dropped / others if others else None
            rows.append(
                PainPointInStage(
                    stage=step.stage,
                    persons=persons,
                    dropped=dropped,
                    drop_rate=round(rate, 4),
                    others=others,
                    others_dropped=others_dropped,
                    others_drop_rate=None if other_rate is None else round(other_rate, 4),
                    relative_risk=round(rate / other_rate, 4) if other_rate else None,
                )
            )
            # Mantel-Haenszel: sum(a * n0 / N) / sum(c * n1 / N) over the stages.
            pooled_with += dropped * others / step.reached
            pooled_without += others_dropped * persons / step.reached
        out.append(
            PainPointStat(
                name=pain.name,
                persons=cells.get(pain.name, {}).get(-1, (0, 0))[0],
                relative_risk=round(pooled_with / pooled_without, 4) if pooled_without else None,
                by_stage=rows,
            )
        )
    return out


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)
