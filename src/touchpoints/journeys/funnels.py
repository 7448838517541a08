"""Funnels: how many people (or devices) go through ordered steps within a window, built with
Ibis expressions only, so the same code runs on DuckDB and Spark.

Semantics (as in Amplitude and PostHog, made precise):

- **Order of events** is event time, then arrival (``seq``): a late event that happened earlier
  counts from when it happened; of two events at the same moment, the one that arrived first
  is earlier.
- **Entry**: a unit (a resolved person, or with ``unit="device"`` the event's anchor
  identifier, as a tool without stitching sees it) enters at its *first* step-1 event (within
  ``since``/``until`` when given). One attempt per unit.
- **Window**: a step counts when its event happens no later than entry time + ``window``
  (an event exactly at the window's end counts; one millisecond later does not).
- **Relaxed order** (default): step k is the earliest step-k event strictly after the event of
  step k-1 (later in time, or at the same moment and arrived later). Other events, funnel or
  not, may happen in between. Skipping a step ends the unit's progress there; an event can
  fill one step only.
- **Strict order**: after the entry, the unit's next funnel events (events matching any step)
  must be steps 2, 3, … in turn; a funnel event of another step in between, or a repeat of an
  earlier step, ends the progress. Events matching no step (page views, identifies, a step's
  event whose property filter fails) do not break the order.
- **Time to convert**: for units that reached the last step, from the step-1 event to the
  last step's, in seconds; the median (of an even count: the mean of the middle two) and a
  histogram.
- **Breakdown** (decided at entry): ``channel`` of the entering event; ``device_type``, the
  type of the entering event's anchor identifier (``anonymous_id`` a browser cookie,
  ``device_id`` an app install, ``user_id`` a signed-in account, …); ``age_group`` from the
  ``birthday`` trait (ISO date, latest value) and the age on the entry day, in the same bands
  as the channel mix (``unknown``: no birthday, or outside every band);
  ``trait:<key>``, the latest value of any trait. Units without a value are grouped under
  ``None``.
"""

from __future__ import annotations

from datetime import timedelta
from functools import reduce
from typing import Any

import ibis
import ibis.expr.types as ir

from touchpoints.journeys.ages import band_of, parse_bands
from touchpoints.journeys.queries import (
    BREAKDOWNS,
    MAX_STEPS,
    DropOffsQuery,
    FunnelSpec,
    FunnelStep,
)
from touchpoints.journeys.results import (
    Bucket,
    DropOff,
    DropOffPage,
    FunnelComparison,
    FunnelGroup,
    FunnelResult,
    StepCount,
    TimeToConvert,
)
from touchpoints.journeys.source import Source
from touchpoints.journeys.spec import AnalysisError, validated

__all__ = ["BREAKDOWNS", "MAX_STEPS", "AnalysisError", "FunnelSpec", "FunnelStep", "funnel"]
from touchpoints.journeys.stages import rule_filter

# Histogram of time to convert: (label, lower bound in seconds); the upper bound is the next
# lower bound. Buckets that start beyond the window are left out.
BUCKETS: tuple[tuple[str, int], ...] = (
    ("< 1 min", 0),
    ("1-10 min", 60),
    ("10-60 min", 600),
    ("1-6 h", 3_600),
    ("6-24 h", 21_600),
    ("1-3 d", 86_400),
    ("3-7 d", 259_200),
    ("7-14 d", 604_800),
    ("14-30 d", 1_209_600),
    ("30+ d", 2_592_000),
)


def funnel_spec(data: dict[str, Any] | FunnelSpec) -> FunnelSpec:
    """A validated spec, or :class:`AnalysisError` naming each problem's place."""
    return validated(FunnelSpec, data)


# -- the queries ----------------------------------------------------------------------------
def unit_events(source: Source, unit: str) -> ir.Table:
    """Every event with ``unit``: its person, or its anchor identifier (``device``)."""
    events = source.events()
    return events.mutate(unit=events[unit])


def _matches(source: Source, events: ir.Table, step: FunnelStep) -> ir.Table:
    """(unit, seq, ts) of the events that fill ``step``."""
    return rule_filter(step.rule(), events, source, {}).select("unit", "seq", "ts")


def _first(table: ir.Table) -> ir.Table:
    """Each unit's earliest row by (ts, seq)."""
    window = ibis.window(group_by=table.unit, order_by=[table.ts, table.seq])
    ranked = table.mutate(_n=ibis.row_number().over(window))
    return ranked.filter(ranked._n == 0).drop("_n")


def entries(source: Source, spec: FunnelSpec) -> ir.Table:
    """(unit, person, device, seq, ts, channel, deadline): each unit's first step-1 event."""
    events = unit_events(source, spec.unit)
    matched = rule_filter(spec.steps[0].rule(), events, source, {})
    if spec.since is not None:
        matched = matched.filter(matched.ts >= spec.since)
    if spec.until is not None:
        matched = matched.filter(matched.ts < spec.until)
    first = _first(matched.select("unit", "person", "device", "seq", "ts", "channel"))
    window_ms = int(spec.window / timedelta(milliseconds=1))
    return first.mutate(deadline=first.ts + ibis.interval(milliseconds=window_ms))


def _after(ts: ir.Value, seq: ir.Value, than_ts: ir.Value, than_seq: ir.Value) -> ir.Value:
    """Strictly later in event order: later in time, or the same moment and arrived later."""
    return (ts > than_ts) | ((ts == than_ts) & (seq > than_seq))


def step_times(source: Source, spec: FunnelSpec) -> ir.Table:
    """(unit, step, ts, seq): the event that filled each step a unit reached (step 1: entry)."""
    entry = entries(source, spec)
    if spec.order == "strict":
        return _strict_steps(source, spec, entry)
    return _relaxed_steps(source, spec, entry)


def _funnel_events(source: Source, spec: FunnelSpec) -> ir.Table:
    """(unit, seq, ts, s1 … sn): each event that fills any step, once, with the steps it may
    fill (an event can match several: the same name in two steps)."""
    events = unit_events(source, spec.unit)
    tagged = reduce(
        lambda a, b: a.union(b),
        [
            _matches(source, events, step).mutate(step=ibis.literal(i, type="int64"))
            for i, step in enumerate(spec.steps, start=1)
        ],
    )
    return tagged.group_by("unit", "seq", "ts").agg(
        **{f"s{i}": (tagged.step == i).any() for i in range(1, len(spec.steps) + 1)}
    )


def _relaxed_steps(source: Source, spec: FunnelSpec, entry: ir.Table) -> ir.Table:
    """Relaxed order, built flat. Step k is the earliest step-k event after the event of step
    k-1; chaining one query per step on the last (as this did) nests each step's query in the
    next, about six subqueries a step, past what sqlglot can write (16 steps: RecursionError).
    Instead each unit's funnel events are numbered once in event order (``rank``), and each
    carries, per step k, the number of the next step-k event after it (``nk``, a window over
    the following rows). Step k is then the event numbered ``nk`` of step k-1's event: one
    join per step on the same numbered table, which Ibis writes as one flat chain of joins.
    An event past the deadline ends the progress (every later one is later still)."""
    n = len(spec.steps)
    found = _funnel_events(source, spec)
    order = ibis.window(group_by=found.unit, order_by=[found.ts, found.seq])
    ranked = found.mutate(rank=ibis.row_number().over(order))
    following = ibis.window(group_by=ranked.unit, order_by=ranked.rank, rows=(1, None))
    ranked = ranked.mutate(
        **{
            f"n{k}": ibis.ifelse(ranked[f"s{k}"], ranked.rank, ibis.null()).min().over(following)
            for k in range(2, n + 1)
        }
    )
    start = entry.select("unit", "deadline", ts1="ts", seq1="seq")
    first = ranked.select(unit1="unit", seq_1="seq", n2="n2")
    chain = start.join(first, (start.unit == first.unit1) & (start.seq1 == first.seq_1))
    for k in range(2, n + 1):
        columns = {f"unit{k}": "unit", f"rank{k}": "rank", f"ts{k}": "ts", f"seq{k}": "seq"}
        if k < n:
            columns[f"n{k + 1}"] = f"n{k + 1}"
        view = ranked.select(**columns)
        chain = chain.left_join(
            view, (chain.unit == view[f"unit{k}"]) & (chain[f"n{k}"] == view[f"rank{k}"])
        )
    wide = chain.select(
        "unit", "deadline", *[c for k in range(1, n + 1) for c in (f"ts{k}", f"seq{k}")]
    )
    steps = wide.mutate(step=ibis.literal(list(range(1, n + 1)), type="array<int64>").unnest())
    pick = {
        name: ibis.cases(*[(steps.step == k, steps[f"{name}{k}"]) for k in range(1, n + 1)])
        for name in ("ts", "seq")
    }
    reached = steps.select("unit", "step", "deadline", **pick)
    reached = reached.filter(reached.ts.notnull(), reached.ts <= reached.deadline)
    return reached.select("unit", "step", "ts", "seq")


def _strict_steps(source: Source, spec: FunnelSpec, entry: ir.Table) -> ir.Table:
    events = unit_events(source, spec.unit)
    n = len(spec.steps)
    tagged = reduce(
        lambda a, b: a.union(b),
        [
            _matches(source, events, step).mutate(step=ibis.literal(i, type="int64"))
            for i, step in enumerate(spec.steps, start=1)
        ],
    )
    funnel_events = tagged.group_by("unit", "seq", "ts").agg(
        **{f"s{i}": (tagged.step == i).any() for i in range(2, n + 1)}
    )
    start = entry.select("unit", "deadline", entry_ts="ts", entry_seq="seq")
    later = funnel_events.join(start, "unit")
    later = later.filter(
        _after(later.ts, later.seq, later.entry_ts, later.entry_seq), later.ts <= later.deadline
    )
    window = ibis.window(group_by=later.unit, order_by=[later.ts, later.seq])
    ranked = later.mutate(rank=ibis.row_number().over(window) + 1)  # 1: next funnel event
    ranked = ranked.filter(ranked.rank < n)
    ranked = ranked.mutate(
        ok=ibis.cases(*[(ranked.rank == r, ranked[f"s{r + 1}"]) for r in range(1, n)], else_=False)
    )
    fails = ranked.group_by("unit").agg(first_fail=ranked.rank.min(where=~ranked.ok))
    kept = ranked.join(fails, "unit")  # every ranked unit has a row; first_fail may be NULL
    kept = kept.filter(kept.first_fail.isnull() | (kept.rank < kept.first_fail))
    steps = kept.select("unit", step=(kept.rank + 1).cast("int64"), ts="ts", seq="seq")
    first = entry.select("unit", step=ibis.literal(1, type="int64"), ts="ts", seq="seq")
    return first.union(steps)


def _anchor_types(source: Source) -> ir.Table:
    """(device, device_type): each identifier's type. The identity map is one of the journey
    tables, the same on every engine."""
    identifiers = source.identifiers()
    return identifiers.select(device=identifiers.sid, device_type=identifiers.type)


def breakdown_values(source: Source, spec: FunnelSpec, entry: ir.Table) -> ir.Table:
    """(unit, value): the breakdown value of each unit, decided at its entry."""
    name = spec.breakdown
    if name == "channel":
        return entry.select("unit", value=entry.channel)
    if name == "device_type":
        typed = entry.left_join(_anchor_types(source), "device")
        return typed.select("unit", value=typed.device_type)
    key = "birthday" if name == "age_group" else str(name).removeprefix("trait:")
    traits = source.latest_traits()
    traits = traits.filter(traits.key == key).select("person", "text_value")
    valued = entry.left_join(traits, "person").select("unit", "ts", "text_value")
    if name != "age_group":
        return valued.select("unit", value=valued.text_value)
    born = valued.text_value.substr(0, 10).try_cast("date")
    day = valued.ts.date()
    birthday_not_yet = (day.month() < born.month()) | (
        (day.month() == born.month()) & (day.day() < born.day())
    )
    age = day.year() - born.year() - ibis.ifelse(birthday_not_yet, 1, 0)
    return valued.select("unit", value=band_of(age, parse_bands(spec.age_bands)))


def _medians(table: ir.Table, keys: list[str], value: str) -> ir.Table:
    """(keys…, median) of ``value``: the middle row, or the mean of the middle two. Exact and
    the same on every engine (engines' own medians differ: interpolated or approximate)."""
    window = ibis.window(group_by=[table[k] for k in keys], order_by=table[value])
    counted = table.mutate(
        _n=ibis.row_number().over(window),
        _c=table[value].count().over(ibis.window(group_by=[table[k] for k in keys])),
    )
    middle = counted.filter(
        (counted._n * 2 == counted._c - 1)
        | (counted._n * 2 == counted._c - 2)
        | (counted._n * 2 == counted._c)
    )
    return middle.group_by(keys).agg(median=middle[value].mean())


def _bucket_index(ms: ir.IntegerValue) -> ir.IntegerValue:
    cases = [(ms < lower * 1000, i - 1) for i, (_, lower) in enumerate(BUCKETS) if i > 0]
    return ibis.cases(*cases, else_=len(BUCKETS) - 1)


def funnel(source: Source, spec: FunnelSpec | dict[str, Any]) -> FunnelResult:
    """Units per step, conversion, time to convert; per breakdown value when one is asked."""
    spec = funnel_spec(spec)
    entry = entries(source, spec)
    times = step_times(source, spec)
    if spec.breakdown is not None:
        values = breakdown_values(source, spec, entry)
    else:
        values = entry.select("unit", value=ibis.null().cast("string"))
    start = entry.select("unit", entry_ts="ts").join(values, "unit")
    timed = times.join(start, "unit")
    timed = timed.mutate(ms=timed.ts.delta(timed.entry_ts, unit="millisecond"))

    # The steps each unit reached, computed once (a few rows per unit that entered) and
    # kept for the figures below: each would compute it again from the events otherwise.
    with source.cache(timed) as timed:
        counts = source.rows(timed.group_by("value", "step").agg(units=timed.unit.nunique()))
        medians = source.rows(_medians(timed, ["value", "step"], "ms"))
        last = timed.filter(timed.step == len(spec.steps))
        overall_median = source.rows(_medians(last.mutate(all=ibis.literal(1)), ["all"], "ms"))
        group_median = source.rows(_medians(last, ["value"], "ms"))
        bucketed = last.mutate(bucket=_bucket_index(last.ms))
        buckets = source.rows(
            bucketed.group_by("value", "bucket").agg(units=bucketed.unit.nunique())
        )
        total_median = {
            r["step"]: r["median"] for r in source.rows(_medians(timed, ["step"], "ms"))
        }

    window_seconds = spec.window.total_seconds()
    by_value: dict[Any, dict[int, int]] = {}
    for row in counts:
        by_value.setdefault(row["value"], {})[row["step"]] = row["units"]
    median_of = {(r["value"], r["step"]): r["median"] for r in medians}
    buckets_of: dict[Any, dict[int, int]] = {}
    for row in buckets:
        buckets_of.setdefault(row["value"], {})[row["bucket"]] = row["units"]

    def steps_for(reached: dict[int, int], median: dict[int, float | None]) -> list[StepCount]:
        return _step_counts(spec, reached, median)

    total_reached = {
        k: sum(v.get(k, 0) for v in by_value.values()) for k in range(1, len(spec.steps) + 1)
    }
    total_buckets: dict[int, int] = {}
    for per in buckets_of.values():
        for index, units in per.items():
            total_buckets[index] = total_buckets.get(index, 0) + units
    result_steps = steps_for(total_reached, total_median)
    ttc = TimeToConvert(
        median_seconds=_seconds(overall_median[0]["median"]) if overall_median else None,
        histogram=_histogram(total_buckets, window_seconds),
    )
    groups = []
    if spec.breakdown is not None:
        for value in sorted(by_value, key=lambda v: (v is None, str(v))):
            group_median_value = next(
                (r["median"] for r in group_median if r["value"] == value), None
            )
            groups.append(
                FunnelGroup(
                    value=value,
                    steps=steps_for(
                        by_value[value],
                        {k: median_of.get((value, k)) for k in range(1, len(spec.steps) + 1)},
                    ),
                    time_to_convert=TimeToConvert(
                        median_seconds=_seconds(group_median_value),
                        histogram=_histogram(buckets_of.get(value, {}), window_seconds),
                    ),
                )
            )
    return FunnelResult(
        unit=spec.unit,
        order=spec.order,
        window_seconds=window_seconds,
        steps=result_steps,
        time_to_convert=ttc,
        breakdown=spec.breakdown,
        groups=groups,
    )


def funnel_by_unit(source: Source, spec: FunnelSpec | dict[str, Any]) -> FunnelComparison:
    """The same funnel per resolved person and per device, side by side: how much
    cross-device stitching changes the numbers."""
    spec = funnel_spec(spec)
    return FunnelComparison(
        person=funnel(source, spec.model_copy(update={"unit": "person"})),
        device=funnel(source, spec.model_copy(update={"unit": "device"})),
    )


def drop_offs(
    source: Source,
    spec: FunnelSpec | dict[str, Any],
    step: int,
    limit: int = 50,
    offset: int = 0,
) -> DropOffPage:
    """The units that reached ``step`` (1-based) and not the next, by entry time, one page."""
    spec = funnel_spec(spec)
    if not 1 <= step < len(spec.steps):
        raise AnalysisError(
            f"step: give a step from 1 to {len(spec.steps) - 1} (the last step has no drop-off)"
        )
    if limit < 1 or offset < 0:
        raise AnalysisError("limit: give at least 1; offset: give 0 or more")
    entry = entries(source, spec)
    times = step_times(source, spec)
    furthest = times.group_by("unit").agg(reached=times.step.max())
    stuck = furthest.filter(furthest.reached == step)
    at = times.filter(times.step == step).select("unit", reached_at="ts")
    rows = (
        entry.join(stuck, "unit")
        .join(at, "unit")
        .select("unit", "person", "device", entered_at="ts", reached_at="reached_at")
    )
    if spec.unit == "device":
        identifiers = source.identifiers()
        named = identifiers.select(
            device=identifiers.sid,
            identifier=identifiers.type.concat(":", identifiers.value),
        )
        rows = rows.join(named, "device")
    total = int(source.arrow(rows.count()).as_py())
    listed = source.listed(rows)
    withheld = (
        total - int(source.arrow(listed.count()).as_py()) if source.unlisted is not None else 0
    )
    page = source.rows(listed.order_by(["entered_at", "unit"]).limit(limit, offset=offset))
    device = spec.unit == "device"
    units = [
        DropOff(
            person=row["person"],
            device=row["device"] if device else None,
            identifier=row["identifier"] if device else None,
            entered_at=row["entered_at"],
            reached_at=row["reached_at"],
        )
        for row in page
    ]
    return DropOffPage(step=step, total=total, withheld=withheld, units=units)


def drop_off_page(source: Source, query: DropOffsQuery) -> DropOffPage:
    """:func:`drop_offs` for a validated question."""
    return drop_offs(source, query.funnel, query.step, query.limit, query.offset)


# -- assembling -----------------------------------------------------------------------------
def _step_counts(
    spec: FunnelSpec, reached: dict[int, int], medians: dict[int, float | None]
) -> list[StepCount]:
    out = []
    first = reached.get(1, 0)
    for index, step in enumerate(spec.steps, start=1):
        units = reached.get(index, 0)
        previous = reached.get(index - 1, 0) if index > 1 else units
        out.append(
            StepCount(
                step=index,
                event=str(step.event),
                units=units,
                conversion=_share(units, first),
                from_previous=_share(units, previous),
                dropped=previous - units if index > 1 else 0,
                median_seconds=_seconds(medians.get(index)),
            )
        )
    return out


def _histogram(units: dict[int, int], window_seconds: float) -> list[Bucket]:
    out = []
    for index, (label, lower) in enumerate(BUCKETS):
        if lower > window_seconds:
            break
        upper = BUCKETS[index + 1][1] if index + 1 < len(BUCKETS) else None
        out.append(
            Bucket(label=label, lower_seconds=lower, upper_seconds=upper, units=units.get(index, 0))
        )
    return out


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 3)
