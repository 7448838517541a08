"""Conditions of the audience language tested against one person's facts in memory, with
the same meaning the compiled audience queries give them (:mod:`..audiences.compile`); and
the three strategies that choose among the rules that hold.

Assignment is deterministic per person: whether a person is held out in a placement's
control group, and which rule the random strategy shows them, come from a hash of the
placement and the person (BLAKE2b), so a person sees the same thing on every page and the
groups stay apart for the comparison.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from touchpoints.activate.audiences.conditions import (
    AllOf,
    AnyOf,
    AudienceCondition,
    Compare,
    ComputedTraitCondition,
    ConsentCondition,
    NoneOf,
    PredictionCondition,
    StageCondition,
    TraitCondition,
)
from touchpoints.activate.audiences.traits import COUNTS
from touchpoints.activate.decide.definitions import PlacementDefinition, Rule, ScoreFrom
from touchpoints.activate.decide.facts import PersonFacts


def holds(condition: Any, facts: PersonFacts, now: datetime) -> bool:
    """Whether ``condition`` holds for the person (a rule without one holds for everyone)."""
    if condition is None:
        return True
    if isinstance(condition, AllOf):
        return all(holds(part, facts, now) for part in condition.all_of)
    if isinstance(condition, AnyOf):
        return any(holds(part, facts, now) for part in condition.any_of)
    if isinstance(condition, NoneOf):
        return not holds(condition.negated, facts, now)
    if isinstance(condition, AudienceCondition):
        return condition.audience in facts.audiences
    if isinstance(condition, ConsentCondition):
        return facts.consent.get(condition.consent.lower(), False) == condition.granted
    if isinstance(condition, TraitCondition):
        return _trait(condition, facts)
    if isinstance(condition, ComputedTraitCondition):
        return _computed(condition, facts)
    if isinstance(condition, PredictionCondition):
        value = facts.predictions.get(condition.prediction)
        compare = condition.compare()
        if compare.test() == "exists":
            return (value is not None) == compare.exists
        return value is not None and passes(compare, _text(value), value)
    if isinstance(condition, StageCondition):
        return _stage(condition, facts, now)
    raise TypeError(f"{type(condition).__name__} is not tested per person")


def _trait(condition: TraitCondition, facts: PersonFacts) -> bool:
    present = condition.trait in facts.traits
    if condition.test() == "exists":
        return present == condition.exists
    if not present:
        return False
    value = facts.traits[condition.trait]
    if isinstance(value, dict | list):
        return False  # the journey tables keep scalar traits only
    return passes(condition, _text(value), _number(value))


def _computed(condition: ComputedTraitCondition, facts: PersonFacts) -> bool:
    found = facts.computed.get(condition.computed_trait)
    if found is None:
        return False  # validated to exist; gone since: holds for nobody
    test = condition.test()
    has = found.number is not None or found.text is not None
    if found.kind == "unique" and test in ("contains", "one_of", "equals"):
        wanted: list[Any] = list(condition.one_of or ())
        if test != "one_of":
            wanted = [condition.contains if test == "contains" else condition.equals]
        values: list[Any] = found.value if isinstance(found.value, list) else []
        return bool({_text(v) for v in values} & {_text(w) for w in wanted})
    if test == "exists":
        return has == condition.exists
    if not has:
        return found.kind in COUNTS and passes(condition, "0", 0.0)
    return passes(condition, found.text, found.number)


def _stage(condition: StageCondition, facts: PersonFacts, now: datetime) -> bool:
    entered = facts.stages.get(condition.journey_stage)
    if entered is None:
        return False
    index, at = entered
    if condition.within_days is not None and at < _naive(now) - timedelta(
        days=condition.within_days
    ):
        return False
    return not condition.current or facts.furthest_stage == index


def passes(compare: Compare, text: str | None, number: float | None) -> bool:
    """Whether a value (as text, and as a number when it is one) passes ``compare``."""
    name = compare.test()
    if name == "range":
        if number is None:
            return False
        return (
            (compare.gt is None or number > compare.gt)
            and (compare.gte is None or number >= compare.gte)
            and (compare.lt is None or number < compare.lt)
            and (compare.lte is None or number <= compare.lte)
        )
    if name == "equals":
        return _equals(text, number, compare.equals)
    if name == "not_equals":
        if isinstance(compare.not_equals, int | float) and not isinstance(compare.not_equals, bool):
            return number is not None and number != float(compare.not_equals)
        return text is not None and not _equals(text, number, compare.not_equals)
    if name == "one_of":
        return any(_equals(text, number, wanted) for wanted in compare.one_of or ())
    if name == "contains":
        return text is not None and (compare.contains or "") in text
    if name == "starts_with":
        return text is not None and text.startswith(compare.starts_with or "")
    return False


def _equals(text: str | None, number: float | None, wanted: Any) -> bool:
    if isinstance(wanted, bool):
        return text == ("true" if wanted else "false")
    if isinstance(wanted, int | float):
        return number is not None and number == float(wanted)
    return bool(text == wanted)


def _text(value: Any) -> str:
    """A value as the journey tables hold it as text (true, 12, 12.5, text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _naive(moment: datetime) -> datetime:
    """A moment as the warehouse holds it: UTC without a zone."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


# -- choosing --------------------------------------------------------------------------------
def unit(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts`` (the placement, the person, a purpose)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def in_control(placement: PlacementDefinition, person: int) -> bool:
    """Whether the person is held out of ``placement`` (its control group)."""
    return (
        placement.control_percent > 0
        and unit(placement.key, person, "control") * 100 < placement.control_percent
    )


@dataclass(frozen=True)
class Choice:
    rule: Rule
    score: float | None = None


def choose(placement: PlacementDefinition, facts: PersonFacts, now: datetime) -> Choice | None:
    """The rule whose content the person is shown, by the placement's strategy; None: no
    rule holds."""
    if placement.strategy == "first_match":
        for rule in placement.rules:
            if holds(rule.condition, facts, now):
                return Choice(rule)
        return None
    held = [rule for rule in placement.rules if holds(rule.condition, facts, now)]
    if not held:
        return None
    if placement.strategy == "score":
        scored = [(score_of(rule, facts), index, rule) for index, rule in enumerate(held)]
        known = [(s, i, r) for s, i, r in scored if s is not None]
        if not known:
            return None
        best = max(known, key=lambda found: (found[0], -found[1]))
        return Choice(best[2], best[0])
    total = sum(rule.weight for rule in held)
    point = unit(placement.key, facts.person, "random") * total
    for rule in held:
        point -= rule.weight
        if point < 0:
            return Choice(rule)
    return Choice(held[-1])


def score_of(rule: Rule, facts: PersonFacts) -> float | None:
    """The rule's score for the person: its number, or the figure it names times its
    factor (None: the person has no such figure)."""
    if not isinstance(rule.score, ScoreFrom):
        return float(rule.score)
    source = rule.score
    value: Any = None
    if source.prediction is not None:
        value = facts.predictions.get(source.prediction)
    elif source.computed_trait is not None:
        found = facts.computed.get(source.computed_trait)
        value = found.number if found is not None else None
    elif source.trait is not None:
        value = _number(facts.traits.get(source.trait))
    return None if value is None else float(value) * source.times
