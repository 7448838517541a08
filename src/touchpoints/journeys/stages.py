"""Stages per person, computed from events with Ibis expressions only (no per-event Python),
so the same code runs on DuckDB and Spark.

A person enters a stage with their first event that matches one of its rules (earliest by
event time, then by arrival); their current stage is the furthest stage entered. People may
skip stages (a store purchase with no web visit enters purchase without consideration); the
history shows only the stages they entered.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from typing import Any, get_args

import ibis
import ibis.expr.types as ir

from touchpoints.journeys.model import EventType, NumberTest, Rule, StageModel
from touchpoints.journeys.results import StageCount, StageEntry
from touchpoints.journeys.source import Source


def rule_filter(
    rule: Rule, events: ir.Table, source: Source, entries: dict[str, ir.Table]
) -> ir.Table:
    """The events (with person) that ``rule`` matches."""
    conditions = []
    if rule.event is not None:
        conditions.append(events.event.isin(list(rule.event)))
    if rule.type is not None:
        conditions.append(of_types(events.type, rule.type))
    if rule.channel is not None:
        conditions.append(events.channel.isin(list(rule.channel)))
    if rule.path_prefix is not None:
        conditions.append(events.path.startswith(rule.path_prefix))
    if rule.campaign is not None:
        has = events.campaign.notnull() | events.medium.notnull()
        conditions.append(has if rule.campaign else ~has)
    if rule.first is not None:
        if "order_in_person" in events.columns:
            is_first = events.order_in_person == 0
        else:  # events marked by first_marked()
            is_first = events.is_first
        conditions.append(is_first == rule.first)
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


def rule_columns(rule: Rule, events: ir.Table) -> list[str]:
    """The columns of ``events`` that :func:`rule_filter` reads for ``rule`` (besides
    ``person``, ``seq`` and ``ts``, which it always may): what a narrower copy of the events
    must keep for the rule to match on it as on the events."""
    wanted = [
        ("event", rule.event is not None),
        ("type", rule.type is not None),
        ("channel", rule.channel is not None),
        ("path", rule.path_prefix is not None),
        ("campaign", rule.campaign is not None),
        ("medium", rule.campaign is not None),
        (
            "order_in_person" if "order_in_person" in events.columns else "is_first",
            rule.first is not None,
        ),
    ]
    return [column for column, used in wanted if used]


# The three types of touches; the other three are calls that say who someone is rather than
# what they did.
TOUCH_TYPES: tuple[EventType, ...] = ("track", "page", "screen")


def of_types(event_type: ir.StringValue, types: Sequence[EventType]) -> ir.BooleanValue:
    """Whether events of ``event_type`` are of one of ``types``: said as "none of the other
    types" (the six of :data:`EventType` are all there are: the collector refuses any other),
    which DuckDB checks while it scans the column. Filtering the 10.6 M kept facts by
    ``type NOT IN`` the three calls took 25-31 ms, by ``type IN`` the three touches
    130-170 ms, for the same rows (2026-12-03)."""
    others = [kind for kind in get_args(EventType) if kind not in types]
    return event_type.notin(others) if others else event_type.notnull()


def is_touch(event_type: ir.StringValue) -> ir.BooleanValue:
    """Whether events of ``event_type`` are touches (track, page, screen)."""
    return of_types(event_type, TOUCH_TYPES)


def ordered_events(source: Source) -> ir.Table:
    """Events with person and ``order_in_person`` (0 = the person's first event, by event
    time then arrival)."""
    events = source.events()
    if "order_in_person" in events.columns:  # the kept facts
        return events
    window = ibis.window(group_by=events.person, order_by=[events.ts, events.seq])
    return events.mutate(order_in_person=ibis.row_number().over(window))


def earliest(table: ir.Table, by: str, *keep: str, least: Sequence[str] = ("seq",)) -> ir.Table:
    """(``by``, ts, ``keep``…, ``least``…): each ``by`` group's earliest rows by time, and of
    those the smallest value of each ``least`` column (with ``seq``: the earliest row by time,
    then arrival). ``keep`` are columns with one value per group. Two grouped minimums (hash
    aggregation, on every core) where numbering each group's rows in order is a window: the
    sort of every row that the analyses avoid."""
    firsts = table.group_by(by).agg(first_ts=table.ts.min())
    tied = table.join(firsts, [table[by] == firsts[by], table.ts == firsts.first_ts])
    grouped = tied.group_by([tied[by], tied.ts, *[tied[k] for k in keep]])
    return grouped.agg(**{column: tied[column].min() for column in least})


def first_marked(source: Source) -> ir.Table:
    """Events with person and ``is_first``: whether it is the person's first event (by event
    time, then arrival), what a ``first`` rule asks; from the kept facts' order when they are
    read. Two grouped minimums and a join (hash aggregation, parallel): numbering every
    event in order with a window, for this one mark, took 0.39 s of the 0.64 s that the
    stage entries of a million events take (DuckDB's profile, 2026-12-03)."""
    events = source.events()
    if "order_in_person" in events.columns:
        return events
    firsts = earliest(events, "person").select(first_seq="seq")
    marked = events.left_join(firsts, events.seq == firsts.first_seq)
    return marked.mutate(is_first=marked.first_seq.notnull()).drop("first_seq")


def matching_events(
    rules: tuple[Rule, ...], events: ir.Table, source: Source, entries: dict[str, ir.Table]
) -> ir.Table:
    """Events matching any of ``rules``: (person, seq, ts, channel, event), each once."""
    parts = [
        nullable(
            rule_filter(rule, events, source, entries).select(
                "person", "seq", "ts", "channel", "event"
            )
        )
        for rule in rules
    ]
    return reduce(lambda a, b: a.union(b, distinct=True), parts)


def nullable(table: ir.Table) -> ir.Table:
    """``table`` with every column typed as nullable: a union needs equal schemas, and a
    column from a NOT NULL table and the same column out of an outer join differ in that."""
    schema = table.schema()
    if all(dtype.nullable for dtype in schema.values()):
        return table
    return table.cast({name: dtype.copy(nullable=True) for name, dtype in schema.items()})


def stage_entries(source: Source, model: StageModel) -> ir.Table:
    """(person, stage, stage_index, entered_at, entered_seq, channel, event): one row for each
    stage each person entered, with the event that entered it."""
    if source.derived(model):
        return source.kept("journey_stage_entries")
    return computed_stage_entries(source, model)


def computed_stage_entries(source: Source, model: StageModel) -> ir.Table:
    """The stage entries computed from the events (what ``journey_stage_entries`` keeps)."""
    events = first_marked(source)
    entries: dict[str, ir.Table] = {}
    tables = []
    for index, stage in enumerate(model.stages):
        matched = matching_events(stage.rules, events, source, entries)
        # Each person's first match by grouped minimums (:func:`earliest`), where numbering
        # the matches in order was a window per stage: the stage entries of a full
        # derivation at 10.6 M events took 5.6-6.0 s with the windows, 4.3-5.1 s now
        # (three and two runs, 2026-12-03; the same entries).
        firsts = earliest(matched, "person").select(first_seq="seq")
        first = matched.join(firsts, matched.seq == firsts.first_seq)
        entry = first.select(
            "person",
            stage=ibis.literal(stage.name),
            stage_index=ibis.literal(index, type="int64"),
            entered_at=first.ts,
            entered_seq=first.seq,
            channel=first.channel,
            event=first.event,
        )
        entry = nullable(entry)
        entries[stage.name] = entry
        tables.append(entry)
    return reduce(lambda a, b: a.union(b), tables)


ENTRY_COLUMNS = (
    "person",
    "stage",
    "stage_index",
    "entered_at",
    "entered_seq",
    "channel",
    "event",
    "next_index",
    "went_on_at",
    "to_next",
)


_PROGRESS = ENTRY_COLUMNS[7:]


def with_progress(entries: ir.Table) -> ir.Table:
    """``entries`` with each entry's progress, what ``journey_stage_entries`` keeps:
    ``next_index``, the stage of the person's next entry in their journey (null after the
    last); ``went_on_at``, when the person first entered a later stage (a higher index)
    with or after this entry (null: never); ``to_next``, whether the next stage (index + 1)
    was one of those. Computed within the entries given: of a period's entries, the
    progress in that period (what was kept of the whole journeys is set aside)."""
    entries = entries.select(*[c for c in entries.columns if c not in _PROGRESS])
    later = entries.select(
        "person", later_index="stage_index", later_at="entered_at", later_seq="entered_seq"
    )
    after = entries.join(
        later,
        [
            entries.person == later.person,
            later.later_index > entries.stage_index,
            (later.later_at > entries.entered_at)
            | ((later.later_at == entries.entered_at) & (later.later_seq >= entries.entered_seq)),
        ],
    )
    found = after.group_by("person", "stage_index").agg(
        went_on_at=after.later_at.min(),
        to_next=(after.later_index == after.stage_index + 1).max(),
    )
    ordered = entries.mutate(next_index=entries.stage_index.lead().over(journey_order(entries)))
    joined = ordered.left_join(found, ["person", "stage_index"])
    return joined.select(
        *[joined[c] for c in entries.columns],
        next_index=joined.next_index,
        went_on_at=joined.went_on_at,
        to_next=joined.to_next.fill_null(False),
    )


def journey_order(entries: ir.Table) -> Any:
    """A person's *journey*: their stage entries ordered by entry time, then arrival, then
    model order."""
    return ibis.window(
        group_by=entries.person,
        order_by=[entries.entered_at, entries.entered_seq, entries.stage_index],
    )


def stage_spans(entries: ir.Table) -> ir.Table:
    """(person, stage_index, stage, entered_at, entered_seq, until_at, until_seq, next_index):
    each stage entry with the next entry of the person's journey (null after the last). A
    person's *journey* is their stage entries ordered by entry time, then arrival, then model
    order."""
    window = journey_order(entries)
    return entries.select(
        "person",
        "stage_index",
        "stage",
        "entered_at",
        "entered_seq",
        until_at=entries.entered_at.lead().over(window),
        until_seq=entries.entered_seq.lead().over(window),
        next_index=entries.stage_index.lead().over(window),
    )


def in_span(ts: ir.Value, seq: ir.Value, spans: ir.Table) -> ir.BooleanValue:
    """The event (ts, seq) falls from the entry (included) to the next entry (excluded)."""
    from_entry = (ts > spans.entered_at) | ((ts == spans.entered_at) & (seq >= spans.entered_seq))
    before_next = (
        spans.until_at.isnull()
        | (ts < spans.until_at)
        | ((ts == spans.until_at) & (seq < spans.until_seq))
    )
    return from_entry & before_next


FACT_COLUMNS = (
    "seq",
    "ts",
    "type",
    "event",
    "channel",
    "source",
    "path",
    "campaign",
    "medium",
    "device",
    "person",
    "order_in_person",
    "stage_index",
    "previous_channel",
    "first_channel_in_stage",
    "first_event_in_stage",
)


def facts(source: Source, model: StageModel) -> ir.Table:
    """Every event with person, device, ``order_in_person``, ``stage_index``: the stage
    its person was in at that event (from the entry, included, to the next entry of the
    journey; null before the first; one event can enter two stages at once, a first visit
    that is a product view: it is in the later one of the journey),
    ``previous_channel``: the channel of the person's event before (null for the first),
    and ``first_channel_in_stage`` / ``first_event_in_stage``: whether this is the first
    event of the person with its channel (event name) in its stage."""
    if source.derived(model):
        return source.kept("journey_facts")
    return computed_facts(source, model)


def computed_facts(source: Source, model: StageModel, entries: ir.Table | None = None) -> ir.Table:
    """The facts computed from the events (what ``journey_facts`` keeps); ``entries`` the
    stage entries of the same persons when they are at hand. One expression: it reads the
    placed events three times (:func:`marked_facts`), which an engine may compute three
    times; the derivation keeps them in a table first."""
    return marked_facts(placed_facts(source, model, entries))


def placed_facts(source: Source, model: StageModel, entries: ir.Table | None = None) -> ir.Table:
    """The facts without their first-in-stage marks: every event with person, device,
    ``order_in_person``, ``stage_index`` and ``previous_channel`` (see :func:`facts`)."""
    events = source.events()
    window = ibis.window(group_by=events.person, order_by=[events.ts, events.seq])
    # The place in the person's events and the channel before, in one window (one sort of
    # every event: two nested windows sorted them twice, 0.38 s against 0.27 s at 1M events).
    previous = events.channel.lag().over(window)
    if "order_in_person" in events.columns:
        events = events.mutate(previous_channel=previous)
    else:
        events = events.mutate(
            order_in_person=ibis.row_number().over(window), previous_channel=previous
        )
    spans = stage_spans(entries if entries is not None else computed_stage_entries(source, model))
    placed = spans.select(
        "person", "stage_index", "entered_at", "entered_seq", "until_at", "until_seq"
    )
    joined = events.left_join(
        placed,
        [events.person == placed.person, in_span(events.ts, events.seq, placed)],
    )
    return joined.select(
        *[joined[c] for c in FACT_COLUMNS[:-5]],
        order_in_person=joined.order_in_person.cast("int64"),
        stage_index=joined.stage_index,
        previous_channel=joined.previous_channel,
    )


def marked_facts(placed: ir.Table) -> ir.Table:
    """``placed`` (:func:`placed_facts`) with ``first_channel_in_stage`` and
    ``first_event_in_stage``: whether the event is the person's first with its channel
    (event name) in its stage. Each (person, stage, value)'s smallest order is found by a
    grouping (null stages and values grouped as one, as a window's partition does) and
    joined back on (person, order), a person's orders being distinct.

    Windows partitioned by (person, stage, value) did this before, in the same query as the
    placing: at 10.6 M events that query took 20.7 s of a 32 s derivation, 24 s of its CPU
    time in the two windows (DuckDB's profile). With the placed events kept in a table first
    (the derivation does), placing took 6.5 s and marking 7.6 s (2026-12-03; the same facts).
    In one expression the grouping joined back makes DuckDB place the events three times."""

    marked = placed
    for column in ("channel", "event"):
        firsts = placed.group_by(placed.person, placed.stage_index, placed[column]).agg(
            first_order=placed.order_in_person.min()
        )
        firsts = firsts.select(first_person="person", first_order="first_order")
        joined = marked.left_join(
            firsts,
            [
                marked.person == firsts.first_person,
                marked.order_in_person == firsts.first_order,
            ],
        )
        marked = joined.select(
            *[joined[c] for c in marked.columns],
            **{f"first_{column}_in_stage": joined.first_order.notnull()},
        )
    return marked


def stage_distribution(source: Source, model: StageModel) -> list[StageCount]:
    """For each stage: how many persons are in it now, and how many ever entered it (one
    query: a person's current stage is their entry with the highest stage index)."""
    entries = stage_entries(source, model)
    furthest = entries.stage_index.max().over(ibis.window(group_by=entries.person))
    marked = entries.mutate(now=(entries.stage_index == furthest).cast("int64"))
    counts = marked.group_by("stage").agg(reached=marked.count(), current=marked.now.sum())
    found = {row["stage"]: row for row in source.rows(counts)}
    return [
        StageCount(
            stage=name,
            current=int(found.get(name, {}).get("current") or 0),
            reached=int(found.get(name, {}).get("reached") or 0),
        )
        for name in model.names
    ]


def stage_history(source: Source, model: StageModel, person: int) -> list[StageEntry]:
    """The stages one person entered, in journey order, with when and through which event."""
    entries = stage_entries(source, model)
    rows = source.rows(
        entries.filter(entries.person == person)
        .order_by("stage_index")
        .select("stage", "entered_at", "channel", "event")
    )
    return [StageEntry(**row) for row in rows]
