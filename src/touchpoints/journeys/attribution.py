"""Attribution: which channels (or campaigns) earn the credit for conversions.

A *conversion* is an event named ``conversion`` (default ``Order Completed``), worth the
number in its ``value_property`` (default ``revenue``; 0 when it has none). Its *touchpoints*
are the person's track, page and screen events that carry a key (a channel, or a campaign
when ``by="campaign"``) and happened before it (by event time, then arrival), after the
person's previous conversion and at most ``lookback_days`` before it. Conversion events are
never touchpoints; identify, group and alias calls are not touches either.

Touchpoints after a person's last conversion (or of a person who never converted) make a
*null path*: a journey that did not convert, limited to the ``lookback_days`` before its last
touch. Null paths carry no credit but are what the Markov model learns "not converting" from.

Six models share out each conversion (and its value) over its touchpoints:

- ``first_touch`` and ``last_touch``: all to the first or the last touch;
- ``linear``: equal parts to every touch;
- ``time_decay``: parts proportional to ``2 ** (-age / half_life)``, ``age`` being the time
  from the touch to the conversion (default half-life: 7 days);
- ``position_based``: 40 % each to the first and last touch, 20 % shared by those between
  (one touch: all of it; two: half each);
- ``markov``: the data-driven model. Paths become a first-order Markov chain over the keys
  (start → keys → conversion or null) after consecutive repeats of a key are collapsed into
  one step (email → email → web is email → web: a channel does not "lead to itself"). The
  *removal effect* of a key is the share of the chain's conversion probability lost when the
  key is removed (its incoming transitions go to null); conversions and value are shared in
  proportion to the removal effects. The probabilities are solved exactly (absorbing Markov
  chain, a linear system per key), not simulated.

Conversions without any touchpoint are counted as unattributed and take no part in the
models. Everything up to the per-key sums and the transition counts is one set of Ibis
expressions (DuckDB and Spark agree); the chain itself (a few keys) is solved with numpy.
"""

from __future__ import annotations

import math
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np

from touchpoints.journeys.queries import (
    ATTRIBUTION_CONVERSION,
    ATTRIBUTION_LOOKBACK_DAYS,
    AttributionQuery,
)
from touchpoints.journeys.queries import ATTRIBUTION_KEYS as KEYS
from touchpoints.journeys.results import Attribution, Credit
from touchpoints.journeys.source import Source
from touchpoints.journeys.spec import AnalysisError
from touchpoints.journeys.stages import is_touch, ordered_events

MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based", "markov")
START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"


class AttributionError(AnalysisError):
    """A parameter of an attribution that cannot work, with what to give instead."""


def _check(by: str, lookback_days: float, half_life_days: float) -> None:
    if by not in KEYS:
        raise AttributionError(f"by: {by!r} is not a key to attribute to; give one of {KEYS}")
    if not lookback_days > 0:
        raise AttributionError(f"lookback_days: {lookback_days} must be more than 0")
    if not half_life_days > 0:
        raise AttributionError(f"half_life_days: {half_life_days} must be more than 0")


def _conversions(
    source: Source, conversion: str, value_property: str | None, rows: ir.Table | None = None
) -> ir.Table:
    """(conv_seq, value): every conversion event and its value; found among ``rows``
    (:func:`attribution_rows` of the same question) when they are at hand."""
    if rows is not None:
        conversions = rows.filter(rows.is_conv).select(conv_seq=rows.seq)
    else:
        events = source.events()
        events = events.filter(is_touch(events.type), events.event == conversion)
        conversions = events.select(conv_seq=events.seq)
    if value_property is None:
        return conversions.mutate(value=ibis.literal(0.0))
    props = source.properties()
    props = props.filter(props.key == value_property).select(
        conv_seq=props.seq, prop_value=props.number_value
    )
    joined = conversions.left_join(props, "conv_seq")
    return joined.select("conv_seq", value=ibis.coalesce(joined.prop_value, 0.0))


def attribution_rows(source: Source, *, conversion: str, by: str) -> ir.Table:
    """(person, seq, ts, o, key, is_conv): what a path is made of, in the person's order
    ``o``: the conversions and the touches that carry a key."""
    return _rows_of(ordered_events(source), conversion=conversion, by=by)


def _rows_of(events: ir.Table, *, conversion: str, by: str) -> ir.Table:
    """:func:`attribution_rows` of ``events`` in the person's order (``order_in_person``)."""
    events = events.filter(is_touch(events.type))
    rows = events.select(
        "person",
        "seq",
        "ts",
        o=events.order_in_person,
        key=events[by],
        is_conv=(events.event == conversion).fill_null(False),
    )
    return rows.filter(rows.is_conv | rows.key.notnull())


def path_touches(
    source: Source,
    *,
    conversion: str = ATTRIBUTION_CONVERSION,
    by: str = "channel",
    lookback_days: float = ATTRIBUTION_LOOKBACK_DAYS,
    value_property: str | None = "revenue",
    rows: ir.Table | None = None,
    conversions: ir.Table | None = None,
) -> tuple[ir.Table, ir.Table]:
    """The touches of the converting paths and of the null paths, apart: each (person, path,
    seq, ts, o, key, converted, end_ts, value). ``path`` numbers a person's conversions (0 =
    the first) and a touch's path is the conversion it leads to; ``converted`` is 1 on a
    converting path (``end_ts``: the conversion's time, ``value`` its value), 0 on a null
    path (``end_ts``: its last touch). ``rows``: :func:`attribution_rows` of the same
    question, and ``conversions`` its conversions and their values, when they are kept at
    hand.

    A touch is put on its path by a join with the person's conversions (each bounded by the
    one before, in the person's order) or, after the last one, with the person's span. One
    window over every event of a person who converted, and of the others every touch within
    the lookback of their last one, did this before: 6.06 M rows at 10.6 M events, 2.8 s of
    the query's 3.8 s (DuckDB's profile); the joins find the paths with hash tables instead
    of a sort."""
    _check(by, lookback_days, 1)
    if rows is None:
        rows = attribution_rows(source, conversion=conversion, by=by)
    if conversions is None:
        conversions = _conversions(source, conversion, value_property, rows)
    return _converting(rows, conversions, lookback_days), _open(rows, lookback_days)


_COLUMNS = ["person", "path", "seq", "ts", "o", "key", "converted", "end_ts", "value"]


def _within(ts: ir.Value, end: ir.Value, lookback_days: float) -> ir.BooleanValue:
    """Whether a touch at ``ts`` is within the lookback of a path's end at ``end``."""
    return end.epoch_seconds() - ts.epoch_seconds() <= lookback_days * 86400


def _converting(rows: ir.Table, conversions: ir.Table, lookback_days: float) -> ir.Table:
    """The converting paths' touches (see :func:`path_touches`)."""
    # Each conversion with its number among the person's and the order of the one before:
    # the touches strictly between the two lead to it.
    ends = rows.filter(rows.is_conv)
    person = ibis.window(group_by=ends.person, order_by=ends.o)
    ends = ends.select(
        "person",
        conv_seq=ends.seq,
        conv_ts=ends.ts,
        conv_o=ends.o,
        path=ibis.row_number().over(person),
        after_o=ends.o.lag().over(person),
    )
    ends = ends.join(conversions, "conv_seq")
    touches = rows.filter(~rows.is_conv)
    converting = touches.join(
        ends,
        [
            touches.person == ends.person,
            touches.o < ends.conv_o,
            ends.after_o.isnull() | (touches.o > ends.after_o),
            _within(touches.ts, ends.conv_ts, lookback_days),
        ],
    )
    converting = converting.mutate(
        path=converting.path.cast("int64"),
        converted=ibis.literal(1, type="int64"),
        end_ts=converting.conv_ts,
    )
    return converting.select(*_COLUMNS)


def _open(rows: ir.Table, lookback_days: float) -> ir.Table:
    """The null paths' touches (see :func:`path_touches`): touches after a person's last
    conversion make the null path, which ends with the person's last event (a touch:
    conversions come before it)."""
    touches = rows.filter(~rows.is_conv)
    # A count, not a sum: DuckDB sums integers into a 128-bit HUGEINT (Ibis takes it for
    # int64 and leaves its cast out), which a union with the converting paths made the type
    # of every path number, and partitioning a window by it was slower (1.24 s against
    # 1.14 s at 10.6 M events).
    spans = rows.group_by("person").agg(
        paths=rows.seq.count(where=rows.is_conv),
        last_ts=rows.ts.max(),
        last_conv_o=rows.o.max(where=rows.is_conv),
    )
    open_ = touches.join(
        spans,
        [
            touches.person == spans.person,
            spans.last_conv_o.isnull() | (touches.o > spans.last_conv_o),
            _within(touches.ts, spans.last_ts, lookback_days),
        ],
    )
    open_ = open_.mutate(
        path=open_.paths.cast("int64"),
        converted=ibis.literal(0, type="int64"),
        end_ts=open_.last_ts,
        value=ibis.literal(0.0),
    )
    return open_.select(*_COLUMNS)


def along_paths(touches: ir.Table, *, one_per_person: bool = False) -> ir.Table:
    """``touches`` (one half of :func:`path_touches`) with ``first`` and ``last``, the
    path's first and last touch, and ``from_state``: the key of the touch before on the path,
    or ``(start)``. The lookback keeps a suffix of each path, so these come from one window
    over the touches kept, partitioned by path; by person alone when each person has one
    path (the null paths). A touch always has a key, so the one before has none only when
    there is none: two window functions, not three (the null paths' moves alone at 10.6 M
    events 0.75-0.79 s against 0.82-0.85 s with ``lag(o)`` for the first touch; attribution
    as a whole within the noise)."""
    group = [touches.person] if one_per_person else [touches.person, touches.path]
    along = ibis.window(group_by=group, order_by=touches.o)
    before = touches.key.lag().over(along)
    return touches.select(
        "person",
        "path",
        "seq",
        "ts",
        "key",
        "converted",
        "end_ts",
        "value",
        first=before.isnull(),
        last=touches.o.lead().over(along).isnull(),
        from_state=before.fill_null(START),
    )


def attribution_paths(
    source: Source,
    *,
    conversion: str = ATTRIBUTION_CONVERSION,
    by: str = "channel",
    lookback_days: float = ATTRIBUTION_LOOKBACK_DAYS,
    value_property: str | None = "revenue",
) -> ir.Table:
    """Every touch of every path, converting and null, as one table: (person, path, seq,
    ts, key, converted, end_ts, value, first, last, from_state) (see :func:`path_touches`
    and :func:`along_paths`), for a closer look at what the models read."""
    converting, open_ = path_touches(
        source,
        conversion=conversion,
        by=by,
        lookback_days=lookback_days,
        value_property=value_property,
    )
    return along_paths(converting).union(along_paths(open_, one_per_person=True))


def _heuristic_credits(paths: ir.Table, half_life_days: float) -> ir.Table:
    """Per key: touches and credited conversions and value under the five rule-based models."""
    touches = paths.filter(paths.converted == 1)
    age = (touches.end_ts.epoch_seconds() - touches.ts.epoch_seconds()).cast("float64")
    touches = touches.mutate(decay=(age * (-math.log(2) / (half_life_days * 86400))).exp())
    per_path = touches.group_by("person", "path").agg(
        n=touches.seq.count(), total=touches.decay.sum()
    )
    touches = touches.join(per_path, ["person", "path"])
    n = touches.n.cast("float64")
    first, last = touches.first, touches["last"]
    touches = touches.mutate(
        first_touch=first.cast("float64"),
        last_touch=last.cast("float64"),
        linear=1.0 / n,
        time_decay=touches.decay / touches.total,
        position_based=ibis.cases(
            (touches.n == 1, 1.0),
            (touches.n == 2, 0.5),
            (first | last, 0.4),
            else_=0.2 / (n - 2.0),
        ),
    )
    models = [m for m in MODELS if m != "markov"]
    sums: dict[str, Any] = {"touchpoints": touches.seq.count()}
    for model in models:
        sums[f"c_{model}"] = touches[model].sum()
        sums[f"v_{model}"] = (touches[model] * touches.value).sum()
    return touches.group_by("key").agg(**sums)


def markov_transitions(paths: ir.Table, *per: str) -> ir.Table:
    """(from_state, to_state, count): the first-order chain of the paths, consecutive repeats
    of a key collapsed, from ``(start)`` to ``(conversion)`` or ``(null)``; counted apart for
    each value of the columns ``per`` (e.g. each person) when given. Collapsing runs keeps
    exactly the steps between different keys, so those are the steps counted."""
    steps = paths.filter(paths.from_state != paths.key).select(*per, "from_state", to_state="key")
    end = ibis.cases((paths.converted == 1, CONVERSION), else_=NULL)
    ends = paths.filter(paths["last"]).select(*per, from_state=paths.key, to_state=end)
    moves = steps.union(ends, distinct=False)
    return moves.group_by([*per, "from_state", "to_state"]).agg(count=moves.from_state.count())


NULL_MOVES_COLUMNS = ("person", "by_key", "from_state", "to_state", "moves")


def kept_null_moves(events: ir.Table) -> ir.Table:
    """What the warehouse keeps with the journey facts (``journey_null_moves``): for each
    person of ``events`` (with ``order_in_person``, as the facts have it) and each key
    (``by_key``: channel, campaign), the moves of the person's null path under the question
    asked unless told otherwise (:data:`ATTRIBUTION_CONVERSION`,
    :data:`ATTRIBUTION_LOOKBACK_DAYS`).

    Counting them at question time is one window over every null-path touch, the share of
    attribution that no join or kept predecessor made cheaper (RESULTS.md: 0.75-0.86 s of
    1.47 s at 10.6 M events); a person's null path changes only with the person's own
    events, which the facts are derived again for. A person who converts after their null
    path keeps a (shorter, or no) null path, derived with the new event."""
    parts = []
    for by in KEYS:
        rows = _rows_of(events, conversion=ATTRIBUTION_CONVERSION, by=by)
        moves = markov_transitions(
            along_paths(_open(rows, ATTRIBUTION_LOOKBACK_DAYS), one_per_person=True), "person"
        )
        parts.append(
            moves.select(
                "person",
                by_key=ibis.literal(by),
                from_state=moves.from_state,
                to_state=moves.to_state,
                moves=moves["count"],
            )
        )
    return ibis.union(*parts, distinct=False)


def _null_moves(
    source: Source, open_: ir.Table, *, conversion: str, by: str, lookback_days: float
) -> list[dict[str, Any]]:
    """(from_state, to_state, count) of the null paths: summed from the moves kept with the
    facts for the question asked unless told otherwise, counted along ``open_`` for another."""
    if (
        source.derived_for is not None
        and conversion == ATTRIBUTION_CONVERSION
        and lookback_days == ATTRIBUTION_LOOKBACK_DAYS
    ):
        kept = source.kept("journey_null_moves")
        kept = kept.filter(kept.by_key == by)
        moves = kept.group_by(["from_state", "to_state"]).agg(count=kept.moves.sum())
        return [{**move, "count": int(move["count"])} for move in source.rows(moves)]
    return source.rows(markov_transitions(along_paths(open_, one_per_person=True)))


def removal_effects(transitions: list[dict[str, Any]]) -> tuple[float, dict[str, float]]:
    """The chain's conversion probability from ``(start)`` and each key's removal effect,
    solved exactly: with Q the key-to-key and r the key-to-conversion probabilities, the
    conversion probability from each key is x = (I - Q)⁻¹ r; removing a key sends its
    incoming transitions to null (its row and column leave the system)."""
    keys = sorted(
        {t["from_state"] for t in transitions if t["from_state"] != START}
        | {t["to_state"] for t in transitions if t["to_state"] not in (CONVERSION, NULL)}
    )
    if not keys:
        return 0.0, {}
    index = {k: i for i, k in enumerate(keys)}
    counts = np.zeros((len(keys) + 1, len(keys) + 2))  # rows: keys, start; cols: keys, conv, null
    for t in transitions:
        row = len(keys) if t["from_state"] == START else index[t["from_state"]]
        to = t["to_state"]
        col = len(keys) if to == CONVERSION else len(keys) + 1 if to == NULL else index[to]
        counts[row, col] += t["count"]
    totals = counts.sum(axis=1, keepdims=True)
    probs = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    q, r, start = probs[:-1, : len(keys)], probs[:-1, len(keys)], probs[-1, : len(keys)]

    def converts(kept: np.ndarray) -> float:
        sub = q[np.ix_(kept, kept)]
        x = np.linalg.solve(np.eye(len(kept)) - sub, r[kept])
        return float(start[kept] @ x)

    everything = np.arange(len(keys))
    base = converts(everything)
    if base <= 0:
        return 0.0, {k: 0.0 for k in keys}
    effects = {
        k: max(0.0, 1.0 - converts(everything[everything != i]) / base) for k, i in index.items()
    }
    return base, effects


def attribute(
    source: Source,
    *,
    conversion: str = ATTRIBUTION_CONVERSION,
    by: str = "channel",
    lookback_days: float = ATTRIBUTION_LOOKBACK_DAYS,
    value_property: str | None = "revenue",
    half_life_days: float = 7,
) -> Attribution:
    """Conversions and their value credited to channels (or campaigns) under the six models;
    credits are sorted by the Markov model's conversions, then by key."""
    _check(by, lookback_days, half_life_days)
    # The conversions are found once (each search of the events for them and of the
    # properties for their values took 0.4-1.0 s of CPU) and kept. The converting paths'
    # touches are kept and read three times (totals, the rule-based models, the chain). The
    # null paths are read by the chain only, so their touches go straight into its counts:
    # at 10.6 M events they are 3.88 M of the paths' 4.92 M touches, and keeping them all
    # took 1.53-1.59 s against 1.11-1.20 s for keeping the converting ones and counting the
    # null ones' moves (the same SQL, alternately).
    #
    # The rows (10.3 M touches with a key, and conversions) are read where they are, not
    # kept first: writing them took 0.27-0.46 s, and each query reading the facts instead
    # takes up to 0.1 s longer (attribution 1.41-1.52 s against 1.60-1.72 s, and a tenth
    # less CPU). When the paths were one query with one window, DuckDB built the null paths'
    # join on the 10.2 M touches unless the rows were a table of known size; the null
    # paths' moves now have it build on the persons' spans (601,088 rows) either way.
    rows = attribution_rows(source, conversion=conversion, by=by)
    with source.cache(_conversions(source, conversion, value_property, rows)) as conversions:
        converting, open_ = path_touches(
            source,
            conversion=conversion,
            by=by,
            lookback_days=lookback_days,
            value_property=value_property,
            rows=rows,
            conversions=conversions,
        )
        null_moves = _null_moves(
            source, open_, conversion=conversion, by=by, lookback_days=lookback_days
        )
        with source.cache(along_paths(converting)) as paths:
            total = conversions.agg(n=conversions.conv_seq.count(), value=conversions.value.sum())
            totals = source.rows(total)[0]
            firsts = paths.filter(paths.first)
            attributed = source.rows(firsts.agg(n=firsts.seq.count(), value=firsts.value.sum()))[0]
            heuristics = {
                row["key"]: row for row in source.rows(_heuristic_credits(paths, half_life_days))
            }
            transitions = source.rows(markov_transitions(paths)) + null_moves
    # Every path has one first touch, one move from (start).
    null_paths = sum(move["count"] for move in null_moves if move["from_state"] == START)
    attributed_value = float(attributed["value"] or 0.0)
    _base, effects = removal_effects(transitions)
    effect_sum = sum(effects.values())
    credits = []
    for key in sorted(set(heuristics) | set(effects)):
        row = heuristics.get(key, {})
        share = effects.get(key, 0.0) / effect_sum if effect_sum > 0 else 0.0
        conv = {m: float(row.get(f"c_{m}") or 0.0) for m in MODELS if m != "markov"}
        value = {m: float(row.get(f"v_{m}") or 0.0) for m in MODELS if m != "markov"}
        conv["markov"] = share * attributed["n"]
        value["markov"] = share * attributed_value
        credits.append(
            Credit(
                key=key,
                touchpoints=int(row.get("touchpoints") or 0),
                conversions=conv,
                value=value,
                removal_effect=effects.get(key, 0.0),
            )
        )
    credits.sort(key=lambda c: (-c.conversions["markov"], c.key))
    value_total = float(totals["value"] or 0.0)
    return Attribution(
        by=by,
        conversion=conversion,
        lookback_days=lookback_days,
        conversions=int(totals["n"]),
        value=value_total,
        unattributed_conversions=int(totals["n"]) - int(attributed["n"]),
        unattributed_value=value_total - attributed_value,
        converting_paths=int(attributed["n"]),
        null_paths=int(null_paths),
        credits=credits,
    )


def attribution_for(source: Source, query: AttributionQuery) -> Attribution:
    """:func:`attribute` for a validated question."""
    return attribute(
        source,
        conversion=query.conversion,
        by=query.by,
        lookback_days=query.lookback_days,
        value_property=query.value_property,
        half_life_days=query.half_life_days,
    )
