"""Placements as they are written: a place on a website or in an app, the content shown
there by default, and rules that show other content to some persons.

```yaml
key: home_hero
name: Home page hero
strategy: first_match          # or score (the highest-scoring rule that holds), random
control_percent: 10            # held out, shown the default, to measure the uplift
conversion_event: Order Completed
conversion_days: 30            # a conversion counts this long after the first exposure
default: {headline: Welcome}   # any JSON object
rules:
  - key: win_back
    condition: {audience: churn_risk_high}    # the audience language
    content: {headline: We missed you, offer: SPRING10}
    score: {prediction: churn_risk}           # the score strategy: a number or a figure
    weight: 1                                 # the random strategy
```

A rule's condition is the audience language (:mod:`touchpoints.activate.audiences.conditions`)
less event conditions: a decision is answered from what is kept live per person (audience
membership, computed traits, the profile's traits, predictions and consent, the journey
stages reached), never from a query over the events, so it takes microseconds. An event
condition belongs in an audience, which the rule then names (``{audience: key}``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
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

from touchpoints.activate.audiences.conditions import (
    KEY_PATTERN,
    MAX_CONDITIONS,
    MAX_DEPTH,
    PREDICTIONS,
    Condition,
    DefinitionError,
    EventCondition,
    described,
    leaves,
    size,
)

Strategy = Literal["first_match", "score", "random"]
STRATEGIES: tuple[str, ...] = ("first_match", "score", "random")
MAX_CONTENT_BYTES = 16_384  # a rule's content as JSON: copy, a picture's address, an offer
MAX_RULES = 50
# Keys the routes use as words (``/v1/placements/schema``).
RESERVED = ("schema", "uplift")


class PlacementError(DefinitionError):
    """A placement that cannot be used as written: the message names the place
    (``rules[1].condition.audience``) and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Content = Annotated[
    dict[str, Any],
    Field(description="What the website shows: any JSON object (headline, text, image, link)"),
]


class ScoreFrom(_Strict):
    """A rule's score taken from the person: one of ``trait``, ``computed_trait``,
    ``prediction`` (a number), times ``times``; a person without it scores nothing."""

    trait: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    computed_trait: Annotated[str, Field(pattern=KEY_PATTERN)] | None = None
    prediction: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    times: float = 1.0

    @model_validator(mode="after")
    def _one_source(self) -> ScoreFrom:
        given = [n for n in ("trait", "computed_trait", "prediction") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("give one of trait, computed_trait, prediction")
        if self.prediction is not None and self.prediction not in PREDICTIONS:
            raise ValueError(
                f"prediction: {self.prediction!r} is not a prediction ({', '.join(PREDICTIONS)})"
            )
        return self


def _score_kind(value: Any) -> str:
    return "figure" if isinstance(value, dict | ScoreFrom) else "number"


# A rule's score: a number, or a figure of the person's ({prediction: churn_risk}).
Score = Annotated[
    Annotated[float, Tag("number")] | Annotated[ScoreFrom, Tag("figure")],
    Discriminator(_score_kind),
]


class Rule(_Strict):
    """Content shown to the persons ``condition`` holds for (no condition: everyone)."""

    key: Annotated[str, Field(pattern=KEY_PATTERN, description="names the rule in reasons")]
    name: Annotated[str, Field(max_length=200)] = ""
    condition: Condition | None = None
    content: Content
    score: Score = 0.0
    weight: Annotated[float, Field(gt=0, le=1_000_000)] = 1.0

    @field_validator("content")
    @classmethod
    def _content_size(cls, content: dict[str, Any]) -> dict[str, Any]:
        return _small(content)


class PlacementDefinition(_Strict):
    key: Annotated[str, Field(pattern=KEY_PATTERN, description="e.g. home_hero")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""
    strategy: Strategy = "first_match"
    control_percent: Annotated[float, Field(ge=0, le=50)] = 0.0
    conversion_event: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    conversion_days: Annotated[int, Field(ge=1, le=365)] = 30
    default: Content
    rules: Annotated[list[Rule], Field(max_length=MAX_RULES)] = Field(default_factory=list)

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, key: str) -> str:
        if key in RESERVED:
            raise ValueError(f"{key} is a word of the API's addresses; choose another key")
        return key

    @field_validator("default")
    @classmethod
    def _default_size(cls, content: dict[str, Any]) -> dict[str, Any]:
        return _small(content)

    @model_validator(mode="after")
    def _distinct_rules(self) -> PlacementDefinition:
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.key in seen:
                raise ValueError(f"rules[{index}].key: {rule.key} names two rules")
            seen.add(rule.key)
        return self


def _small(content: dict[str, Any]) -> dict[str, Any]:
    length = len(orjson.dumps(content))
    if length > MAX_CONTENT_BYTES:
        raise ValueError(f"{length} bytes as JSON; at most {MAX_CONTENT_BYTES}")
    return content


def parsed_placement(data: Any) -> PlacementDefinition:
    """``data`` (parsed JSON or YAML) as a :class:`PlacementDefinition`, or
    :class:`PlacementError` naming the place and the reason of each problem."""
    if not isinstance(data, dict):
        raise PlacementError("definition: give an object (key, name, default, rules)")
    try:
        found = PlacementDefinition.model_validate(data)
    except ValidationError as exc:
        message = described(exc)  # without the tags of a score's kinds
        message = message.replace(".score.figure", ".score").replace(".score.number", ".score")
        raise PlacementError(message) from None
    for index, rule in enumerate(found.rules):
        if rule.condition is None:
            continue
        place = f"rules[{index}].condition"
        count, depth = size(rule.condition)
        if count > MAX_CONDITIONS:
            raise PlacementError(f"{place}: {count} conditions; at most {MAX_CONDITIONS}")
        if depth > MAX_DEPTH:
            raise PlacementError(f"{place}: nested {depth} deep; at most {MAX_DEPTH}")
        for where, leaf in leaves(rule.condition, place):
            if isinstance(leaf, EventCondition):
                raise PlacementError(
                    f"{where}.event: a decision does not count events (it answers in "
                    "microseconds from what is kept live); define an audience with this "
                    "event condition and test it here: {audience: <its key>}"
                )
    return found
