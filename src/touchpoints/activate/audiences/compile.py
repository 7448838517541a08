"""Audiences and computed traits as Ibis expressions: the one place their definitions become
queries. Nothing of a definition is ever pasted into SQL text: names and values are Ibis
literals, which the backend compiles and quotes.

Everything is computed from the tables the journeys keep in step with the events and the
identity map (``journey_facts``: each event with its person; ``journey_properties``,
``journey_traits``, ``journey_stage_entries``, ``journey_persons``), plus consent choices,
the latest predictions and the audiences' own members, so the same expressions run on
DuckDB and on any engine Ibis drives.

An audience is a set of persons: a leaf gives the persons it holds for, ``and`` intersects,
``or`` unites, ``not`` takes the rest of the persons. A :class:`World` may be limited to
some persons (``scope``: those an event or a merge just touched), so a live evaluation
computes only them; every expression then reads only their rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from touchpoints.activate.audiences.conditions import (
    AllOf,
    AnyOf,
    AudienceCondition,
    Compare,
    ComputedTraitCondition,
    ConsentCondition,
    EventCondition,
    NoneOf,
    PredictionCondition,
    StageCondition,
    TraitCondition,
)
from touchpoints.activate.audiences.traits import COUNTS, ComputedTraitDefinition

CLOCK = "_tp_clock"
_PERSON = dt.Int64(nullable=True)
_CHURN = ("churn_risk", "churn_percentile")


@dataclass(frozen=True)
class World:
    """What expressions read: an Ibis backend's tables, the persons computed (``scope``, a
    table with ``person``; None: everyone), and what the definitions name (stages by index,
    consent defaults, computed traits and audiences by key). The moment windows end at is
    read from the one-row table ``_tp_clock`` (``now``), so an expression's SQL is the same
    whenever it runs and can be compiled once."""

    backend: Any
    scope: ir.Table | None = None
    stages: Mapping[str, int] | None = None
    consent_defaults: Mapping[str, bool] | None = None
    traits: Mapping[str, ComputedTraitDefinition] | None = None
    audiences: Mapping[str, int] | None = None

    def table(self, name: str) -> ir.Table:
        """``name`` (with a ``person`` column), only the persons in scope."""
        return self.scoped(self.backend.table(name))

    def scoped(self, table: ir.Table) -> ir.Table:
        if self.scope is None:
            return table
        return table.filter(table.person.isin(self.scope.person))

    def persons(self) -> ir.Table:
        """Every person (in scope), as the journey tables know them: (person)."""
        persons = self.table("journey_persons")
        return _persons(persons.select("person").distinct())

    def facts(self) -> ir.Table:
        """Every event (in scope) with its person: (seq, ts, event, channel, person, …)."""
        return self.table("journey_facts")

    def since(self, days: int) -> Any:
        """The start of the window of the last ``days`` days."""
        now = self.backend.table(CLOCK).now.max().as_scalar()
        return now - ibis.interval(days=days)


def _persons(table: ir.Table) -> ir.Table:
    """``table``'s persons as a set operation wants them: one nullable BIGINT column."""
    return table.select(person=table.person.cast(_PERSON))


# -- values and their tests -------------------------------------------------------------------
def value_test(text: ir.StringValue, number: ir.FloatingValue, compare: Compare) -> Any:
    """A boolean expression: the value (as text, and as a number when it is one) passes
    ``compare``. ``exists`` is decided by the caller (it is about rows, not a value)."""
    name = compare.test()
    if name == "range":
        tests = []
        if compare.gt is not None:
            tests.append(number > compare.gt)
        if compare.gte is not None:
            tests.append(number >= compare.gte)
        if compare.lt is not None:
            tests.append(number < compare.lt)
        if compare.lte is not None:
            tests.append(number <= compare.lte)
        return reduce(lambda a, b: a & b, tests)
    if name == "equals":
        return _equals(text, number, compare.equals)
    if name == "not_equals":
        return ~_equals(text, number, compare.not_equals).fill_null(False)
    if name == "one_of":
        return reduce(lambda a, b: a | b, [_equals(text, number, v) for v in compare.one_of or ()])
    if name == "contains":
        return text.contains(compare.contains)
    if name == "starts_with":
        return text.startswith(compare.starts_with)
    raise ValueError(f"{name} is not a test of a value")


def _equals(text: ir.StringValue, number: ir.FloatingValue, wanted: Any) -> Any:
    if isinstance(wanted, bool):
        return text == ("true" if wanted else "false")
    if isinstance(wanted, int | float):
        return number == float(wanted)
    return text == wanted


def _text(value: Any) -> str:
    """A value as the journey tables hold it as text (true, 12, 12.5, text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def passes_zero(compare: Compare) -> bool:
    """Whether the number 0 passes ``compare`` (a count that found nothing)."""
    name = compare.test()
    if name == "exists":
        return compare.exists is True
    if name == "range":
        return (
            (compare.gt is None or 0 > compare.gt)
            and (compare.gte is None or 0 >= compare.gte)
            and (compare.lt is None or 0 < compare.lt)
            and (compare.lte is None or 0 <= compare.lte)
        )
    if name == "equals":
        return not isinstance(compare.equals, bool | str) and compare.equals == 0
    if name == "not_equals":
        return isinstance(compare.not_equals, bool | str) or compare.not_equals != 0
    if name == "one_of":
        return any(not isinstance(v, bool | str) and v == 0 for v in compare.one_of or ())
    return False


# -- events ------------------------------------------------------------------------------------
def matched_events(
    world: World,
    event: str | list[str] | None,
    where: Mapping[str, Any] | None,
    channel: str | list[str] | None,
    within_days: int | None,
) -> ir.Table:
    """The events (with their person) of the names ``event`` (None: all), on ``channel``,
    in the last ``within_days`` days, whose properties pass ``where``."""
    facts = world.facts()
    tests = []
    if event is not None:
        tests.append(facts.event.isin(_listed(event)))
    if channel is not None:
        tests.append(facts.channel.isin(_listed(channel)))
    if within_days is not None:
        tests.append(facts.ts >= world.since(within_days))
    matched = facts.filter(*tests) if tests else facts
    for key, test in sorted((where or {}).items()):
        properties = world.backend.table("journey_properties")
        properties = properties.filter(properties.key == key)
        if isinstance(test, Compare) and test.test() == "exists":
            has = matched.seq.isin(properties.seq)
            matched = matched.filter(has if test.exists else ~has)
            continue
        compare = test if isinstance(test, Compare) else Compare(equals=test)
        passing = properties.filter(
            value_test(properties.text_value, properties.number_value, compare)
        )
        matched = matched.filter(matched.seq.isin(passing.seq))
    return matched


def _listed(names: str | list[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def event_persons(world: World, condition: EventCondition) -> ir.Table:
    """Persons who did the events from ``at_least`` to ``at_most`` times."""
    matched = matched_events(
        world, condition.event, condition.where, condition.channel, condition.within_days
    )
    counts = matched.group_by("person").aggregate(n=matched.count())
    low, high = condition.at_least, condition.at_most
    if low == 0:  # persons with no such event count too: the rest of those who did too many
        if high is None:
            return world.persons()
        return world.persons().difference(_persons(counts.filter(counts.n > high)))
    tests = [counts.n >= low] + ([counts.n <= high] if high is not None else [])
    return _persons(counts.filter(*tests))


# -- computed traits ---------------------------------------------------------------------------
def trait_values(world: World, trait: ComputedTraitDefinition) -> ir.Table:
    """Each person's value of ``trait``, for persons with at least one event counted:
    (person, number_value, text_value); a unique list's values are :func:`trait_list`."""
    matched = matched_events(world, trait.event, trait.where, trait.channel, trait.within_days)
    if trait.kind == "count":
        counts = matched.group_by("person").aggregate(number_value=matched.count().cast("float64"))
        return _value_columns(counts.mutate(text_value=ibis.null("string")))
    values = _property_values(world, matched, trait.property or "")
    if trait.kind in ("sum", "average", "min", "max"):
        numbers = values.filter(values.number_value.notnull())
        figure = {
            "sum": numbers.number_value.sum(),
            "average": numbers.number_value.mean(),
            "min": numbers.number_value.min(),
            "max": numbers.number_value.max(),
        }[trait.kind]
        found = numbers.group_by("person").aggregate(number_value=figure)
        return _value_columns(found.mutate(text_value=ibis.null("string")))
    if trait.kind in ("unique", "unique_count"):
        counted = values.group_by("person").aggregate(
            number_value=values.text_value.nunique().cast("float64")
        )
        return _value_columns(counted.mutate(text_value=ibis.null("string")))
    if trait.kind == "most_frequent":
        return _most_frequent(values)
    # first, last: the value at the person's first (last) event that has it
    order = (
        [values.ts, values.seq]
        if trait.kind == "first"
        else [ibis.desc(values.ts), ibis.desc(values.seq)]
    )
    window = ibis.window(group_by=values.person, order_by=order)
    ranked = values.mutate(n=ibis.row_number().over(window))
    return _value_columns(ranked.filter(ranked.n == 0))


def trait_list(world: World, trait: ComputedTraitDefinition) -> ir.Table:
    """A unique list's values: (person, text_value), each once."""
    matched = matched_events(world, trait.event, trait.where, trait.channel, trait.within_days)
    values = _property_values(world, matched, trait.property or "")
    return values.select("person", "text_value").distinct()


def _property_values(world: World, matched: ir.Table, key: str) -> ir.Table:
    """The property ``key`` of the ``matched`` events: (person, ts, seq, text_value,
    number_value), for events that have it."""
    properties = world.backend.table("journey_properties")
    properties = properties.filter(properties.key == key, properties.text_value.notnull())
    events = matched.select("seq", "ts", "person")
    return events.join(properties.select("seq", "text_value", "number_value"), "seq")


def _most_frequent(values: ir.Table) -> ir.Table:
    """The value a person's events have most often; a tie goes to the one seen last."""
    grouped = values.group_by(["person", "text_value"]).aggregate(
        times=values.count(),
        number_value=values.number_value.max(),
        last_ts=values.ts.max(),
        last_seq=values.seq.max(),
    )
    window = ibis.window(
        group_by=grouped.person,
        order_by=[
            ibis.desc(grouped.times),
            ibis.desc(grouped.last_ts),
            ibis.desc(grouped.last_seq),
            grouped.text_value,
        ],
    )
    ranked = grouped.mutate(n=ibis.row_number().over(window))
    return _value_columns(ranked.filter(ranked.n == 0))


def _value_columns(table: ir.Table) -> ir.Table:
    return table.select(
        person=table.person.cast(_PERSON),
        number_value=table.number_value.cast(dt.Float64(nullable=True)),
        text_value=table.text_value.cast(dt.String(nullable=True)),
    )


def computed_trait_persons(world: World, condition: ComputedTraitCondition) -> ir.Table:
    """Persons whose computed trait passes the test (a count that found nothing is 0)."""
    trait = (world.traits or {})[condition.computed_trait]
    test = condition.test()
    if trait.kind == "unique" and test in ("contains", "one_of", "equals"):
        listed = trait_list(world, trait)
        tests: dict[str, list[Any]] = {
            "contains": [condition.contains],
            "equals": [condition.equals],
            "one_of": list(condition.one_of or ()),
        }
        wanted = tests[test]
        texts = [_text(value) for value in wanted]
        return _persons(listed.filter(listed.text_value.isin(texts)))
    values = trait_values(world, trait)
    if test == "exists":
        has = _persons(values.filter(values.number_value.notnull() | values.text_value.notnull()))
        return has if condition.exists else world.persons().difference(has)
    passing = _persons(values.filter(value_test(values.text_value, values.number_value, condition)))
    if trait.kind in COUNTS and passes_zero(condition):  # nothing counted: 0, which passes
        return passing.union(world.persons().difference(_persons(values)), distinct=True)
    return passing


# -- traits, predictions, stages, consent, audiences -----------------------------------------
def latest_traits(world: World, key: str) -> ir.Table:
    """Each person's latest value of the trait ``key`` (by event time, then arrival):
    (person, text_value, number_value)."""
    traits = world.backend.table("journey_traits")
    traits = traits.filter(traits.key == key)
    events = world.facts().select("seq", "ts", "person")
    found = traits.join(events, "seq")
    window = ibis.window(
        group_by=found.person, order_by=[ibis.desc(found.ts), ibis.desc(found.seq)]
    )
    ranked = found.mutate(n=ibis.row_number().over(window))
    return ranked.filter(ranked.n == 0).select("person", "text_value", "number_value")


def trait_persons(world: World, condition: TraitCondition) -> ir.Table:
    values = latest_traits(world, condition.trait)
    if condition.test() == "exists":
        has = _persons(values)
        return has if condition.exists else world.persons().difference(has)
    return _persons(values.filter(value_test(values.text_value, values.number_value, condition)))


def prediction_persons(world: World, condition: PredictionCondition) -> ir.Table:
    """Persons whose latest prediction passes: churn risk and its percentile from
    ``churn_scores``, lifetime value and purchases from ``predictions``."""
    table = world.table("churn_scores" if condition.prediction in _CHURN else "predictions")
    table = _known(world, table)  # scored before a merge: a person that may be gone
    value = table[condition.prediction]
    compare = condition.compare()
    if compare.test() == "exists":
        has = _persons(table.filter(value.notnull()))
        return has if compare.exists else world.persons().difference(has)
    return _persons(table.filter(value_test(value.cast("string"), value, compare)))


def stage_persons(world: World, condition: StageCondition) -> ir.Table:
    entries = world.table("journey_stage_entries")
    reached = entries.filter(entries.stage == condition.journey_stage)
    if condition.within_days is not None:
        reached = reached.filter(reached.entered_at >= world.since(condition.within_days))
    if not condition.current:
        return _persons(reached).distinct()
    index = (world.stages or {})[condition.journey_stage]
    furthest = entries.group_by("person").aggregate(index=entries.stage_index.max())
    current = _persons(furthest.filter(furthest.index == index))
    return current.intersect(_persons(reached).distinct())


def consent_persons(world: World, condition: ConsentCondition) -> ir.Table:
    """Persons whose latest choice for the category is ``granted`` (by event time, then
    arrival), and, when the category's default is that, persons who never chose."""
    category = condition.consent.lower()
    choices = world.backend.table("consent_choices")
    choices = choices.filter(choices.category == category)
    made = choices.join(world.facts().select("seq", "ts", "person"), "seq")
    window = ibis.window(group_by=made.person, order_by=[ibis.desc(made.ts), ibis.desc(made.seq)])
    ranked = made.mutate(n=ibis.row_number().over(window))
    latest = ranked.filter(ranked.n == 0)
    chosen = _persons(latest.filter(latest.granted == condition.granted))
    default = bool((world.consent_defaults or {}).get(category, False))
    if default != condition.granted:
        return chosen
    return chosen.union(world.persons().difference(_persons(latest)), distinct=True)


def audience_persons(world: World, condition: AudienceCondition) -> ir.Table:
    members = world.table("audience_members")
    audience = (world.audiences or {})[condition.audience]
    return _persons(_known(world, members.filter(members.audience_id == audience)))


def _known(world: World, table: ir.Table) -> ir.Table:
    """``table``'s rows of persons the journey tables know."""
    return table.filter(table.person.isin(world.persons().person))


_LEAVES: dict[type, Any] = {
    EventCondition: event_persons,
    TraitCondition: trait_persons,
    ComputedTraitCondition: computed_trait_persons,
    PredictionCondition: prediction_persons,
    StageCondition: stage_persons,
    ConsentCondition: consent_persons,
    AudienceCondition: audience_persons,
}


def persons(world: World, condition: Any) -> ir.Table:
    """The persons (in scope) ``condition`` holds for: (person), each once. Every leaf
    gives persons the journey tables know (those from other tables are checked), so the
    sets need no last check."""
    return _set_of(world, condition)


def _set_of(world: World, condition: Any) -> ir.Table:
    if isinstance(condition, AllOf):
        # The parts that hold, intersected, less the parts that must not: "and not" never
        # needs everyone else (the rest of a million persons) as a set.
        held = [_set_of(world, c) for c in condition.all_of if not isinstance(c, NoneOf)]
        found = reduce(lambda a, b: a.intersect(b), held) if held else world.persons()
        for part in condition.all_of:
            if isinstance(part, NoneOf):
                found = found.difference(_set_of(world, part.negated))
        return found
    if isinstance(condition, AnyOf):
        parts = [_set_of(world, child) for child in condition.any_of]
        return reduce(lambda a, b: a.union(b, distinct=True), parts)
    if isinstance(condition, NoneOf):
        return world.persons().difference(_set_of(world, condition.negated))
    return _LEAVES[type(condition)](world, condition)
