"""Next best action: rules in YAML that turn a person's predictions into what to do next.

```yaml
actions:
  - name: win-back call
    action: call
    channel: phone
    priority: 10
    reason: a valuable customer is slipping away
    when:
      churn_risk: {at_least: 0.6}
      predicted_clv_12m: {at_least: 500}
```

A rule applies when every condition holds for the person's latest figures (a figure the
person has none of holds no condition); the rules that apply are answered by priority,
highest first. The file is read and checked when touchpoints starts (the setting
``next_best_actions``): a mistake is named with its place (``actions[1].when.churn_risk``)
and its reason, or its line for YAML that cannot be read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from touchpoints.answers import Answer
from touchpoints.yamlfiles import parsed

# The figures a rule may ask about: numbers from the latest scoring, the furthest stage and
# main channel churn risk saw, and the first of the person's next best products.
NUMBERS = (
    "p_alive",
    "expected_purchases_30d",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "predicted_clv_12m",
    "churn_risk",
    "churn_percentile",
)
NAMES = ("stage", "channel", "top_offer")


class ActionRulesError(ValueError):
    """A rules file that is not valid; the message names the place and the reason."""


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    at_least: float | None = None
    below: float | None = None
    equals: str | None = None

    @model_validator(mode="after")
    def _something(self) -> Condition:
        if self.at_least is None and self.below is None and self.equals is None:
            raise ValueError("give at_least, below or equals")
        if self.equals is not None and (self.at_least is not None or self.below is not None):
            raise ValueError("equals stands alone (a stage or channel by name)")
        if self.at_least is not None and self.below is not None and self.below <= self.at_least:
            raise ValueError(
                f"below ({self.below:g}) must be more than at_least ({self.at_least:g})"
            )
        return self


class ActionRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=200)
    action: str = Field(min_length=1, max_length=200, description="What to do: call, offer, …")
    channel: str | None = Field(default=None, max_length=100)
    priority: int = 0
    reason: str | None = Field(default=None, max_length=500)
    when: dict[str, Condition] = Field(min_length=1)

    @field_validator("when")
    @classmethod
    def _figures(cls, when: dict[str, Condition]) -> dict[str, Condition]:
        for figure, condition in when.items():
            if figure not in NUMBERS + NAMES:
                raise ValueError(
                    f"{figure!r} is no figure; give one of {', '.join(NUMBERS + NAMES)}"
                )
            if figure in NAMES and condition.equals is None:
                raise ValueError(f"{figure}: give equals (a {figure} by name)")
            if figure in NUMBERS and condition.equals is not None:
                raise ValueError(f"{figure}: give at_least or below (a number), not equals")
        return when


class ActionRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    actions: list[ActionRule] = Field(min_length=1)

    @field_validator("actions")
    @classmethod
    def _unique(cls, actions: list[ActionRule]) -> list[ActionRule]:
        seen: set[str] = set()
        for rule in actions:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}")
            seen.add(rule.name)
        return actions


class Action(Answer):
    name: str
    action: str
    channel: str | None
    priority: int
    reason: str | None
    because: list[str] = Field(description="Each condition with the person's figure")


class PersonActions(Answer):
    person: int
    actions: list[Action] = Field(description="The rules that apply, highest priority first")


def load_actions(path: Path) -> ActionRules:
    """The rules in ``path``, checked (:class:`ActionRulesError` names place and reason)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ActionRulesError(f"cannot read {path}: {exc.strerror}") from None
    return parsed(text, ActionRules, str(path), ActionRulesError, "a mapping with 'actions'")


def rules_version(path: Path) -> str:
    """The version of a rules file: the start of its SHA-256 (a stored action names it)."""
    return "rules/" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def choose(rules: ActionRules, person: int, figures: dict[str, Any]) -> PersonActions:
    """The rules whose every condition holds for ``figures``, highest priority first (in
    the file's order among equals)."""
    found = []
    for rule in rules.actions:
        because = []
        for figure, condition in rule.when.items():
            value = figures.get(figure)
            if value is None or not _holds(condition, value):
                break
            because.append(_words(figure, condition, value))
        else:
            found.append(
                Action(
                    name=rule.name,
                    action=rule.action,
                    channel=rule.channel,
                    priority=rule.priority,
                    reason=rule.reason,
                    because=because,
                )
            )
    found.sort(key=lambda a: -a.priority)
    return PersonActions(person=person, actions=found)


def _holds(condition: Condition, value: Any) -> bool:
    if condition.equals is not None:
        return str(value) == condition.equals
    number = float(value)
    if condition.at_least is not None and number < condition.at_least:
        return False
    return not (condition.below is not None and number >= condition.below)


def _words(figure: str, condition: Condition, value: Any) -> str:
    if condition.equals is not None:
        return f"{figure} = {value}"
    parts = []
    if condition.at_least is not None:
        parts.append(f"≥ {condition.at_least:g}")
    if condition.below is not None:
        parts.append(f"< {condition.below:g}")
    return f"{figure} {float(value):.4g} ({' and '.join(parts)})"


def choose_all(
    rules: ActionRules, figures: pa.Table
) -> tuple[list[int], list[list[dict[str, Any]]]]:
    """:func:`choose` for every row of ``figures`` (a ``person`` column and a column per
    figure, null where the person has none) at once: the persons for whom some rule holds,
    and for each the rules that hold, as :class:`Action` fields, highest priority first."""
    order = sorted(range(len(rules.actions)), key=lambda i: -rules.actions[i].priority)
    count = figures.num_rows
    values: dict[str, np.ndarray] = {}
    for figure in {f for rule in rules.actions for f in rule.when}:
        column = figures.column(figure)
        if figure in NUMBERS:
            values[figure] = column.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            values[figure] = np.array(column.to_pylist(), dtype=object)
    masks = [_holding(rules.actions[i], values, count) for i in order]
    anyone = np.logical_or.reduce(masks) if masks else np.zeros(count, dtype=bool)
    persons = figures.column("person").to_numpy()
    found_persons: list[int] = []
    found: list[list[dict[str, Any]]] = []
    for row in np.flatnonzero(anyone):
        actions = []
        for i, mask in zip(order, masks, strict=True):
            if mask[row]:
                rule = rules.actions[i]
                actions.append(
                    {
                        "name": rule.name,
                        "action": rule.action,
                        "channel": rule.channel,
                        "priority": rule.priority,
                        "reason": rule.reason,
                        "because": [
                            _words(f, c, values[f][row].item() if f in NUMBERS else values[f][row])
                            for f, c in rule.when.items()
                        ],
                    }
                )
        found_persons.append(int(persons[row]))
        found.append(actions)
    return found_persons, found


def _holding(rule: ActionRule, values: dict[str, np.ndarray], count: int) -> np.ndarray:
    """Per row, whether every condition of ``rule`` holds (a missing figure holds none)."""
    mask = np.ones(count, dtype=bool)
    for figure, condition in rule.when.items():
        column = values[figure]
        if condition.equals is not None:
            mask &= np.array([v is not None and str(v) == condition.equals for v in column])
            continue
        with np.errstate(invalid="ignore"):
            holds = ~np.isnan(column)
            if condition.at_least is not None:
                holds &= column >= condition.at_least
            if condition.below is not None:
                holds &= column < condition.below
        mask &= holds
    return mask
