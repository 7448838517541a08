"""Churn risk's features and label per person at a cutoff, as Ibis expressions over the
journey tables (:class:`~touchpoints.journeys.source.Source`), so DuckDB and Spark compute
the same table (a test compares them).

At a cutoff (a moment, UTC), with the window W (``predictions_churn_window_days``):

- the **population**: persons with an activity event (``predictions_churn_events``; none
  named: any event) in the W days before the cutoff, who have not churned yet; with
  ``purchasers``, only those with a conversion event before it;
- the **features**: what their journey shows before the cutoff, nothing after it (see
  :data:`FEATURES`); pain points are the stage model's own (``pain_signals``, as the journey
  map counts them), counted in the W days before the cutoff;
- the **label** (``churned``, 1 or 0): no activity event in the W days from the cutoff on.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from touchpoints.channels import CHANNELS
from touchpoints.journeys.journey_map import pain_signals
from touchpoints.journeys.model import StageModel
from touchpoints.journeys.source import Source
from touchpoints.journeys.stages import ordered_events, stage_entries
from touchpoints.predictions.churn_spec import KNOWN_TYPES, ChurnSpec, feature_names


def churn_table(
    source: Source,
    model: StageModel,
    spec: ChurnSpec,
    cutoff: datetime,
    *,
    label: bool,
) -> ir.Table:
    """(person, the features of :func:`feature_names`, and with ``label`` ``churned``): one
    row per person of the population at ``cutoff`` (naive UTC)."""
    window = timedelta(days=spec.window_days)
    start = cutoff - window
    events = ordered_events(source)
    before = events.filter(events.ts < cutoff)
    activity = _activity(events, spec)
    active = activity.filter((activity.ts >= start) & (activity.ts < cutoff))
    population = active.select("person").distinct()
    bought = (before.type == "track") & (before.event == spec.conversion_event)
    if spec.population == "purchasers":
        population = population.semi_join(before.filter(bought).select("person"), "person")

    table = population.left_join(_base(before, cutoff, spec), "person").drop("person_right")
    for part in (
        _active_days(before, start),
        _revenue(source, before.filter(bought), spec),
        _stage(source, model, cutoff),
        _pains(source, model, before, cutoff, start),
        _consent(source, before),
        _identified(source, before),
    ):
        table = table.left_join(part, "person").drop("person_right")
    if label:
        later = activity.filter((activity.ts >= cutoff) & (activity.ts < cutoff + window))
        stayed = later.select("person").distinct().mutate(stayed=ibis.literal(1, type="int64"))
        table = table.left_join(stayed, "person").drop("person_right")
        table = table.mutate(churned=1 - table.stayed.fill_null(0)).drop("stayed")
    names = feature_names(model)
    return table.select(
        "person",
        *[_filled(table, name).cast("float64").name(name) for name in names],
        *(["churned"] if label else []),
    )


def _filled(table: ir.Table, name: str) -> ir.Value:
    """A count is 0 for a person without a row in its part; the stage stays unknown."""
    return table[name] if name == "stage" else table[name].fill_null(0)


def _activity(events: ir.Table, spec: ChurnSpec) -> ir.Table:
    """The events that count as activity: those named, or every event."""
    if not spec.events:
        return events
    return events.filter(events.event.isin(list(spec.events)))


def _seconds(ts: ir.TimestampValue) -> ir.NumericValue:
    return ts.epoch_seconds()


def _base(before: ir.Table, cutoff: datetime, spec: ChurnSpec) -> ir.Table:
    """Recency, tenure, frequency, trend, purchases and the channel mix of the window."""
    window = timedelta(days=spec.window_days)
    recent = (before.ts >= cutoff - window).cast("int64")
    late = (before.ts >= cutoff - window / 2).cast("int64")
    bought = ((before.type == "track") & (before.event == spec.conversion_event)).cast("int64")
    counts = before.group_by("person").agg(
        first_ts=before.ts.min(),
        last_ts=before.ts.max(),
        events_total=before.count(),
        events_window=recent.sum(),
        late=late.sum(),
        purchases=bought.sum(),
        **{
            f"n_{channel}": ((before.channel == channel).cast("int64") * recent).sum()
            for channel in CHANNELS
        },
    )
    now = _seconds(ibis.literal(cutoff, type="timestamp"))
    in_window = counts.events_window.cast("float64").nullif(0)  # Spark refuses x / 0
    return counts.select(
        "person",
        "events_total",
        "events_window",
        "purchases",
        recency_days=(now - _seconds(counts.last_ts)) / 86_400,
        tenure_days=(now - _seconds(counts.first_ts)) / 86_400,
        trend=counts.late.cast("float64") / in_window,
        **{
            f"channel_{channel}": counts[f"n_{channel}"].cast("float64") / in_window
            for channel in CHANNELS
        },
    )


def _active_days(before: ir.Table, start: datetime) -> ir.Table:
    recent = before.filter(before.ts >= start)
    days = recent.select("person", day=recent.ts.date()).distinct()
    return days.group_by("person").agg(active_days_window=days.count())


def _revenue(source: Source, purchases: ir.Table, spec: ChurnSpec) -> ir.Table:
    props = source.properties()
    values = props.filter(props.key == spec.revenue_property).select("seq", "number_value")
    joined = purchases.select("person", "seq").join(values, "seq")
    return joined.group_by("person").agg(revenue=joined.number_value.sum())


def _stage(source: Source, model: StageModel, cutoff: datetime) -> ir.Table:
    entries = stage_entries(source, model)
    entered = entries.filter(entries.entered_at < cutoff)
    return entered.group_by("person").agg(stage=entered.stage_index.max())


def _pains(
    source: Source, model: StageModel, before: ir.Table, cutoff: datetime, start: datetime
) -> ir.Table:
    """Per pain point of the model, its signals in the window before the cutoff; and all."""
    entries = stage_entries(source, model)
    signals = pain_signals(
        source, model, before, entries.filter(entries.entered_at < cutoff), ["person", "seq", "ts"]
    )
    if signals is None:
        return before.select("person").distinct().mutate(pain_total=ibis.literal(0, "int64"))
    recent = signals.filter(signals.ts >= start)
    return recent.group_by("person").agg(
        pain_total=recent.count(),
        **{
            f"pain_{i}": (recent.pain == pain.name).cast("int64").sum()
            for i, pain in enumerate(model.pain_points)
        },
    )


def _consent(source: Source, before: ir.Table) -> ir.Table:
    """Categories whose latest choice before the cutoff grants, and denies."""
    choices = source.backend.table("consent_choices")
    made = choices.join(before.select("seq", "ts", "person"), "seq")
    latest = ibis.window(
        group_by=[made.person, made.category], order_by=[ibis.desc(made.ts), ibis.desc(made.seq)]
    )
    ranked = made.mutate(n=ibis.row_number().over(latest))
    current = ranked.filter(ranked.n == 0)
    return current.group_by("person").agg(
        consent_granted=current.granted.cast("int64").sum(),
        consent_denied=(~current.granted).cast("int64").sum(),
    )


def _identified(source: Source, before: ir.Table) -> ir.Table:
    """Whether an event before the cutoff carried an identifier that names the person."""
    carried = source.backend.table("event_identifiers")
    identifiers = source.identifiers()
    known = identifiers.filter(identifiers.type.isin(list(KNOWN_TYPES))).select("sid")
    named = carried.semi_join(known, "sid").select("seq")
    return (
        before.semi_join(named, "seq")
        .select("person")
        .distinct()
        .mutate(identified=ibis.literal(1, type="int64"))
    )
