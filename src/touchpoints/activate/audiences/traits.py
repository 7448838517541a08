"""Computed traits: per person, a figure or value computed from their events, as Segment
computes them (event counter, aggregation, most frequent, first, last, unique list and its
count), over an optional window of days.

A definition is data, validated here; :func:`trait_values` is its Ibis expression over the
journey tables (each event with its person, kept in step with the identity map), so a merge
or an unmerge moves the values with the events. Values are kept per person by the
evaluation (:mod:`touchpoints.activate.audiences.evaluation`) and read by audiences through
the same expression, never through a stored value that could be a step behind.

```yaml
key: configurations_30d
name: Configurations saved in the last 30 days
kind: count
event: Configuration Saved
within_days: 30
```
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, ValidationError, field_validator, model_validator

from touchpoints.activate.audiences.conditions import (
    KEY_PATTERN,
    Compare,
    Days,
    DefinitionError,
    Name,
    Names,
    Where,
    _Strict,
    described,
    not_reserved,
)

TraitKind = Literal[
    "count",
    "sum",
    "average",
    "min",
    "max",
    "most_frequent",
    "first",
    "last",
    "unique",
    "unique_count",
]
TRAIT_KINDS: tuple[str, ...] = get_args(TraitKind)
# Kinds whose value is a number of things: a person with no event has 0 of them.
COUNTS = ("count", "unique_count", "unique")
# Kinds whose value is a number.
NUMBERS = ("count", "sum", "average", "min", "max", "unique_count")
UNIQUE_LIMIT = 100  # values a unique list keeps (the count counts them all)


class ComputedTraitDefinition(_Strict):
    """A computed trait as it is written and stored."""

    key: Annotated[str, Field(pattern=KEY_PATTERN, description="e.g. orders_90d")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""
    kind: TraitKind
    event: Names | None = Field(default=None, description="The event(s) counted; none: every")
    property: Name | None = Field(
        default=None, description="The property aggregated (every kind but count)"
    )
    where: Where | None = None
    channel: Names | None = None
    within_days: Days | None = None

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, key: str) -> str:
        return not_reserved(key)

    @model_validator(mode="after")
    def _property(self) -> ComputedTraitDefinition:
        if self.kind == "count" and self.property is not None:
            raise ValueError("property: a count counts events; it takes no property")
        if self.kind != "count" and self.property is None:
            raise ValueError(f"property: a {self.kind} needs the property it is computed from")
        return self

    def summary(self) -> str:
        """The definition in a line (``sum of revenue of Order Completed, last 90 days``)."""
        what = {
            "count": "count",
            "sum": "sum of",
            "average": "average of",
            "min": "smallest",
            "max": "largest",
            "most_frequent": "most frequent",
            "first": "first",
            "last": "last",
            "unique": "unique values of",
            "unique_count": "number of unique values of",
        }[self.kind]
        text = what + (f" {self.property}" if self.property else "")
        names = [self.event] if isinstance(self.event, str) else self.event
        text += f" of {', '.join(names)}" if names else " of every event"
        if self.where:
            text += " where " + ", ".join(
                f"{key} {_shown(test)}" for key, test in sorted(self.where.items())
            )
        if self.channel:
            channels = [self.channel] if isinstance(self.channel, str) else self.channel
            text += f" on {', '.join(channels)}"
        text += f", last {self.within_days} days" if self.within_days else ", ever"
        return text


def _shown(test: object) -> str:
    if isinstance(test, Compare):
        name = test.test()
        if name == "range":
            bounds = [(op, getattr(test, op)) for op in ("gt", "gte", "lt", "lte")]
            return " and ".join(f"{op} {value:g}" for op, value in bounds if value is not None)
        return f"{name} {getattr(test, name)!r}"
    return f"= {test!r}"


def parsed_trait(data: object, place: str = "") -> ComputedTraitDefinition:
    """``data`` as a :class:`ComputedTraitDefinition`, or :class:`DefinitionError` naming
    the place and the reason."""
    if not isinstance(data, dict):
        raise DefinitionError(f"{place or 'definition'}: give an object (key, name, kind, …)")
    try:
        return ComputedTraitDefinition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(described(exc, place)) from None
