"""The audience language: conditions over what touchpoints knows of a person, as data.

An audience is a condition, written as JSON or YAML and validated here before anything runs
(pydantic, a union told apart by the one key that names each kind of condition). It is never
SQL: :mod:`touchpoints.activate.audiences.compile` turns it into Ibis expressions. A mistake
is answered with its place and its reason (``condition.and[1].event.at_least: Input should
be greater than or equal to 0``).

```yaml
and:
  - event: Configuration Saved       # did it at least twice in the last 30 days …
    at_least: 2
    within_days: 30
  - not:                             # … and never ordered
      event: Order Completed
  - consent: marketing               # and may be sent marketing
  - prediction: churn_risk
    gte: 0.5
```

Kinds: ``and``, ``or``, ``not``; ``event`` (with counts, property filters, channels and a
time window); ``trait`` (the latest value of a trait); ``computed_trait``; ``prediction``
(churn risk, lifetime value …); ``journey_stage`` (reached, or current); ``consent`` (a
category granted or not); ``audience`` (a member of another audience).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from touchpoints.errors import InvalidRequest, describe

# A key as Segment's audiences and computed traits have them: what destinations receive as
# a trait name (``<key>: true``) and what addresses them in the API.
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_KEY = re.compile(KEY_PATTERN)
# Names of events, traits and properties: any text, within reason.
Name = Annotated[str, Field(min_length=1, max_length=200)]
Names = Name | Annotated[list[Name], Field(min_length=1, max_length=100)]
Scalar = Annotated[str, Field(max_length=1000)] | float | bool
Days = Annotated[int, Field(ge=1, le=3650, description="the last N days, up to now")]

# Keys the routes use as words (``/v1/audiences/schema``): no audience or trait has them.
RESERVED = ("schema", "preview", "history", "evaluate", "persons")
MAX_CONDITIONS = 200  # leaves and groups in one definition
MAX_DEPTH = 12  # groups inside groups

Prediction = Literal[
    "churn_risk",
    "churn_percentile",
    "p_alive",
    "predicted_clv_12m",
    "expected_purchases_30d",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "expected_order_value",
    "average_order_value",
]
PREDICTIONS: tuple[str, ...] = get_args(Prediction)


class DefinitionError(InvalidRequest):
    """An audience or computed trait that cannot be used as written: the message names the
    place (``condition.and[0].event``) and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Compare(_Strict):
    """A test of one value: one of ``equals``, ``not_equals``, ``one_of``, ``contains``,
    ``starts_with``, ``exists``; or a range of ``gt``/``gte`` and ``lt``/``lte``."""

    equals: Scalar | None = None
    not_equals: Scalar | None = None
    one_of: Annotated[list[Scalar], Field(min_length=1, max_length=1000)] | None = None
    contains: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    starts_with: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    exists: bool | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Compare:
        single = [name for name in _SINGLE if getattr(self, name) is not None]
        bounds = [name for name in _BOUNDS if getattr(self, name) is not None]
        if not single and not bounds:
            raise ValueError(
                "give a test: equals, not_equals, one_of, contains, starts_with, exists, "
                "or a range of gt, gte, lt, lte"
            )
        if len(single) > 1 or (single and bounds):
            raise ValueError(f"give one test, not {' and '.join([*single, *bounds])}")
        if self.gt is not None and self.gte is not None:
            raise ValueError("give gt or gte, not both")
        if self.lt is not None and self.lte is not None:
            raise ValueError("give lt or lte, not both")
        low = self.gt if self.gt is not None else self.gte
        high = self.lt if self.lt is not None else self.lte
        if low is not None and high is not None and low > high:
            raise ValueError("the range is empty: its lower bound is above its upper bound")
        return self

    def test(self) -> str:
        """The name of the test (``range`` for bounds)."""
        for name in _SINGLE:
            if getattr(self, name) is not None:
                return name
        return "range"


_SINGLE = ("equals", "not_equals", "one_of", "contains", "starts_with", "exists")
_BOUNDS = ("gt", "gte", "lt", "lte")


def _property_test(value: Any) -> str:
    return "test" if isinstance(value, dict | Compare) else "value"


# A property filter: a value it must equal, or a test.
PropertyTest = Annotated[
    Annotated[Scalar, Tag("value")] | Annotated[Compare, Tag("test")],
    Discriminator(_property_test),
]
Where = Annotated[dict[Name, PropertyTest], Field(max_length=50)]


class EventCondition(_Strict):
    """Persons who did ``event`` (one name or several) from ``at_least`` (1) to
    ``at_most`` times, in the last ``within_days`` days (default: ever), counting only
    events whose properties pass ``where`` and, if given, on ``channel``."""

    event: Names
    at_least: Annotated[int, Field(ge=0, le=1_000_000)] = 1
    at_most: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    within_days: Days | None = None
    where: Where | None = None
    channel: Names | None = None

    @model_validator(mode="after")
    def _counts(self) -> EventCondition:
        if self.at_most is not None and self.at_most < self.at_least:
            raise ValueError("at_most: give a number at least at_least")
        return self


class TraitCondition(Compare):
    """Persons whose latest value of the trait ``trait`` passes the test."""

    trait: Name


class ComputedTraitCondition(Compare):
    """Persons whose computed trait ``computed_trait`` (its key) passes the test; a count
    that found nothing is 0."""

    computed_trait: Annotated[str, Field(pattern=KEY_PATTERN)]


class PredictionCondition(_Strict):
    """Persons whose latest prediction ``prediction`` is in the range (or, with
    ``exists``, who have one)."""

    prediction: Prediction
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _range(self) -> PredictionCondition:
        bounds = [name for name in _BOUNDS if getattr(self, name) is not None]
        if self.exists is None and not bounds:
            raise ValueError("give a range (gt, gte, lt, lte) or exists")
        self.compare()  # the same checks as any range
        return self

    def compare(self) -> Compare:
        given = {name: getattr(self, name) for name in (*_BOUNDS, "exists")}
        return Compare.model_validate({k: v for k, v in given.items() if v is not None})


class StageCondition(_Strict):
    """Persons who reached the journey stage ``journey_stage`` (with ``current``: who are
    in it now, it being the furthest they reached), optionally within the last days."""

    journey_stage: Name
    current: bool = False
    within_days: Days | None = None


class ConsentCondition(_Strict):
    """Persons whose consent for the category ``consent`` is ``granted`` (by their latest
    choice, or the category's default when they never chose)."""

    consent: Name
    granted: bool = True


class AudienceCondition(_Strict):
    """Members of another audience (its key)."""

    audience: Annotated[str, Field(pattern=KEY_PATTERN)]


class AllOf(_Strict):
    all_of: Annotated[list[Condition], Field(alias="and", min_length=1, max_length=100)]


class AnyOf(_Strict):
    any_of: Annotated[list[Condition], Field(alias="or", min_length=1, max_length=100)]


class NoneOf(_Strict):
    negated: Annotated[Condition, Field(alias="not")]


Leaf = (
    EventCondition
    | TraitCondition
    | ComputedTraitCondition
    | PredictionCondition
    | StageCondition
    | ConsentCondition
    | AudienceCondition
)
# The key that names each kind of condition, in the order they are looked for.
KINDS = (
    "and",
    "or",
    "not",
    "event",
    "trait",
    "computed_trait",
    "prediction",
    "journey_stage",
    "consent",
    "audience",
)


def _kind(value: Any) -> str | None:
    """The kind of a condition: the first of :data:`KINDS` it has as a key."""
    if isinstance(value, dict):
        return next((kind for kind in KINDS if kind in value), None)
    if isinstance(value, BaseModel):
        return _KIND_OF.get(type(value))
    return None


Condition = Annotated[
    Annotated[AllOf, Tag("and")]
    | Annotated[AnyOf, Tag("or")]
    | Annotated[NoneOf, Tag("not")]
    | Annotated[EventCondition, Tag("event")]
    | Annotated[TraitCondition, Tag("trait")]
    | Annotated[ComputedTraitCondition, Tag("computed_trait")]
    | Annotated[PredictionCondition, Tag("prediction")]
    | Annotated[StageCondition, Tag("journey_stage")]
    | Annotated[ConsentCondition, Tag("consent")]
    | Annotated[AudienceCondition, Tag("audience")],
    Discriminator(
        _kind,
        custom_error_type="condition_kind",
        custom_error_message=f"a condition is an object with one of the keys {', '.join(KINDS)}",
    ),
]

_KIND_OF: dict[type, str] = {
    AllOf: "and",
    AnyOf: "or",
    NoneOf: "not",
    EventCondition: "event",
    TraitCondition: "trait",
    ComputedTraitCondition: "computed_trait",
    PredictionCondition: "prediction",
    StageCondition: "journey_stage",
    ConsentCondition: "consent",
    AudienceCondition: "audience",
}

for _model in (AllOf, AnyOf, NoneOf):
    _model.model_rebuild()


class AudienceDefinition(_Strict):
    """An audience as it is written and stored: its key (what destinations get as the trait
    name), a name, a description and the condition."""

    key: Annotated[str, Field(pattern=KEY_PATTERN, description="e.g. high_intent_no_order")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""
    condition: Condition

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, key: str) -> str:
        return not_reserved(key)


def not_reserved(key: str) -> str:
    if key in RESERVED:
        raise ValueError(f"{key} is a word of the API's addresses; choose another key")
    return key


def children(condition: Any) -> list[Any]:
    """The conditions directly inside ``condition`` (a group's, or none)."""
    if isinstance(condition, AllOf):
        return list(condition.all_of)
    if isinstance(condition, AnyOf):
        return list(condition.any_of)
    if isinstance(condition, NoneOf):
        return [condition.negated]
    return []


def leaves(condition: Any, place: str = "condition") -> list[tuple[str, Any]]:
    """Every leaf of ``condition`` with its place (``condition.and[1].not``)."""
    kind = _kind(condition)
    if isinstance(condition, AllOf | AnyOf):
        return [
            found
            for index, child in enumerate(children(condition))
            for found in leaves(child, f"{place}.{kind}[{index}]")
        ]
    if isinstance(condition, NoneOf):
        return leaves(condition.negated, f"{place}.not")
    return [(place, condition)]


def size(condition: Any, depth: int = 1) -> tuple[int, int]:
    """(conditions, deepest nesting) of ``condition``."""
    inner = [size(child, depth + 1) for child in children(condition)]
    return 1 + sum(n for n, _ in inner), max([depth, *(d for _, d in inner)])


def time_relative(condition: Any) -> bool:
    """Whether ``condition`` changes as time passes (a window of days)."""
    return any(getattr(leaf, "within_days", None) is not None for _, leaf in leaves(condition))


def parsed_definition(data: Any, place: str = "") -> AudienceDefinition:
    """``data`` (parsed JSON or YAML) as an :class:`AudienceDefinition`, or
    :class:`DefinitionError` naming the place and the reason of each problem."""
    if not isinstance(data, dict):
        raise DefinitionError(f"{place or 'definition'}: give an object (key, name, condition)")
    try:
        found = AudienceDefinition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(described(exc, place)) from None
    count, depth = size(found.condition)
    if count > MAX_CONDITIONS:
        raise DefinitionError(f"condition: {count} conditions; at most {MAX_CONDITIONS}")
    if depth > MAX_DEPTH:
        raise DefinitionError(f"condition: nested {depth} deep; at most {MAX_DEPTH}")
    return found


def described(exc: ValidationError, place: str = "") -> str:
    """pydantic's problems as ``place: reason``, their places written as a reader would:
    without the tags pydantic adds for a union (``and.and[0]`` is ``and[0]``, a property
    test's ``where.price.test.gte`` is ``where.price.gte``)."""
    problems = []
    for problem in exc.errors():
        loc: list[Any] = [place] if place else []
        raw = list(problem["loc"])
        for index, part in enumerate(raw):
            if loc and part == loc[-1] and isinstance(part, str):
                continue  # a kind's tag, then its field of the same name
            if part in ("test", "value") and index >= 2 and raw[index - 2] == "where":
                continue  # a property filter's tag
            loc.append(part)
        problems.append({**problem, "loc": tuple(loc)})
    return describe(problems)


def valid_key(key: str) -> bool:
    return bool(_KEY.match(key))
