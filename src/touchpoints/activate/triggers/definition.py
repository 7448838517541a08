"""The trigger language: when a trigger fires and what it does, as data.

A trigger is written as JSON or YAML and validated here before anything runs; a mistake is
answered with its place and its reason (``steps[1].delay: …``). What it matches is written
in the audience language (:mod:`touchpoints.activate.audiences.conditions`), and becomes
Ibis expressions the same way: never SQL.

```yaml
key: cart_reminder
name: Cart reminder
when:                         # one of: event, audience, journey_stage
  event: Product Added
  where:
    price: {gte: 100}
steps:
  - delay: 30m                # then go on only if the condition still holds
    check:
      not:
        event: Order Completed
        within_days: 1
  - send: 3                   # a destination's id: the durable outbox, consent checked
    event: Cart Reminder
  - set_trait: reminded
    value: cart
limit:                        # the frequency cap: at most 1 firing per person per 7 days
  times: 1
  per: 7d
```
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from touchpoints.activate.audiences.conditions import (
    KEY_PATTERN,
    Condition,
    DefinitionError,
    Name,
    Names,
    Scalar,
    Where,
    described,
    size,
)

MAX_STEPS = 20
MAX_DELAY = 366 * 86400  # seconds: a year and a day
RESERVED = ("schema", "firings", "validate")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds_of(value: Any) -> float:
    """A duration (``90s``, ``30m``, ``2h``, ``7d``, or a number of seconds) in seconds."""
    if isinstance(value, bool):
        raise ValueError("give a duration such as 30m, 2h or 7d")
    if isinstance(value, int | float):
        found = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        found = float(match.group(1)) * _UNIT[match.group(2)]
    else:
        raise ValueError("give a duration such as 90s, 30m, 2h or 7d (or a number of seconds)")
    if not 0 < found <= MAX_DELAY:
        raise ValueError("give a duration above 0 and up to 366d")
    return found


Duration = Annotated[float, Field(description="90s, 30m, 2h, 7d, or seconds")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# -- when ----------------------------------------------------------------------------------------
class EventWhen(_Strict):
    """An event arrives whose name is ``event`` (one or several), on ``channel`` if given,
    whose properties pass ``where`` (the audience language's property filters)."""

    event: Names
    where: Where | None = None
    channel: Names | None = None


class AudienceWhen(_Strict):
    """A person enters (or, with ``on: exited``, exits) the audience ``audience``."""

    audience: Annotated[str, Field(pattern=KEY_PATTERN)]
    on: Literal["entered", "exited"] = "entered"


class StageWhen(_Strict):
    """A person's event takes them into the journey stage ``journey_stage``."""

    journey_stage: Name


_WHEN_KINDS = ("event", "audience", "journey_stage")


def _when_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((kind for kind in _WHEN_KINDS if kind in value), None)
    kinds: dict[type, str] = {
        EventWhen: "event",
        AudienceWhen: "audience",
        StageWhen: "journey_stage",
    }
    return kinds.get(type(value))


When = Annotated[
    Annotated[EventWhen, Tag("event")]
    | Annotated[AudienceWhen, Tag("audience")]
    | Annotated[StageWhen, Tag("journey_stage")],
    Discriminator(
        _when_kind,
        custom_error_type="when_kind",
        custom_error_message="when is an object with one of the keys event, audience, "
        "journey_stage",
    ),
]


# -- steps ---------------------------------------------------------------------------------------
class SendStep(_Strict):
    """Send to the destination ``send`` (its id) a track call named ``event`` (default: the
    trigger's name) about the person, through the outbox (consent to the destination's
    purposes checked, retried, dead-lettered as every message)."""

    send: Annotated[int, Field(ge=1, le=2**63 - 1)]
    event: Name | None = None


class SetTraitStep(_Strict):
    """Set the person's trait ``set_trait`` to ``value`` (an identify call from touchpoints,
    so the trait has its provenance like any other)."""

    set_trait: Name
    value: Scalar | None


class DelayStep(_Strict):
    """Wait ``delay``, then go on only if ``check`` (a condition in the audience language)
    holds for the person then."""

    delay: Duration
    check: Condition | None = None

    @field_validator("delay", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return seconds_of(value)


_STEP_KINDS = ("send", "set_trait", "delay")


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((kind for kind in _STEP_KINDS if kind in value), None)
    kinds: dict[type, str] = {SendStep: "send", SetTraitStep: "set_trait", DelayStep: "delay"}
    return kinds.get(type(value))


Step = Annotated[
    Annotated[SendStep, Tag("send")]
    | Annotated[SetTraitStep, Tag("set_trait")]
    | Annotated[DelayStep, Tag("delay")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step is an object with one of the keys send, set_trait, delay",
    ),
]


class Limit(_Strict):
    """The frequency cap: at most ``times`` firings per person in any ``per`` (a duration)."""

    times: Annotated[int, Field(ge=1, le=1_000_000)]
    per: Duration

    @field_validator("per", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return seconds_of(value)


class TriggerDefinition(_Strict):
    key: Annotated[str, Field(pattern=KEY_PATTERN, description="e.g. cart_reminder")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""
    enabled: bool = True
    when: When
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]
    limit: Limit | None = None

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, key: str) -> str:
        if key in RESERVED:
            raise ValueError(f"{key} is a word of the API's addresses; choose another key")
        return key

    def summary(self) -> str:
        """In a line: ``Product Added → delay 1800 s, send 3 (at most 1 per 604800 s)``."""
        when = self.when
        if isinstance(when, EventWhen):
            names = when.event if isinstance(when.event, str) else ", ".join(when.event)
            cause = f"event {names}"
        elif isinstance(when, AudienceWhen):
            cause = f"audience {when.audience} {when.on}"
        else:
            cause = f"journey stage {when.journey_stage}"
        steps = []
        for step in self.steps:
            if isinstance(step, SendStep):
                steps.append(f"send to destination {step.send}")
            elif isinstance(step, SetTraitStep):
                steps.append(f"set {step.set_trait}")
            else:
                steps.append(
                    f"wait {duration_text(step.delay)}" + (", check" if step.check else "")
                )
        cap = (
            f" (at most {self.limit.times} per {duration_text(self.limit.per)})"
            if self.limit
            else ""
        )
        return f"{cause} → {'; '.join(steps)}{cap}"


def duration_text(seconds: float) -> str:
    """Seconds as a definition writes them: ``30m``, ``2h``, ``7d``, ``90s``."""
    for unit in ("d", "h", "m"):
        if seconds >= _UNIT[unit] and seconds % _UNIT[unit] == 0:
            return f"{int(seconds // _UNIT[unit])}{unit}"
    return f"{seconds:g}s"


def parsed_trigger(data: Any) -> TriggerDefinition:
    """``data`` (parsed JSON or YAML) as a :class:`TriggerDefinition`, or
    :class:`DefinitionError` naming the place and the reason of each problem."""
    if not isinstance(data, dict):
        raise DefinitionError("definition: give an object (key, name, when, steps)")
    try:
        found = TriggerDefinition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(described(cast(ValidationError, _Untagged(exc)))) from None
    for index, step in enumerate(found.steps):
        if isinstance(step, DelayStep) and step.check is not None:
            count, depth = size(step.check)
            if count > 200 or depth > 12:
                raise DefinitionError(
                    f"steps[{index}].check: {count} conditions {depth} deep; at most 200, 12 deep"
                )
    return found


class _Untagged:
    """pydantic's problems without the tags of this module's unions (``when.event.where`` is
    ``when.where``, ``steps[0].delay.check`` is ``steps[0].check``); the audience language's
    own tags :func:`described` takes away."""

    def __init__(self, exc: ValidationError) -> None:
        self.exc = exc

    def errors(self) -> list[Any]:
        found = []
        for problem in self.exc.errors():
            loc = list(problem["loc"])
            if len(loc) > 2 and loc[0] == "when" and loc[1] in _WHEN_KINDS and loc[2] != loc[1]:
                del loc[1]
            elif len(loc) > 3 and loc[0] == "steps" and loc[2] in _STEP_KINDS and loc[3] != loc[2]:
                del loc[2]
            found.append({**problem, "loc": tuple(loc)})
        return found


def stored(definition: TriggerDefinition) -> str:
    """A definition as stored: as validated, with what was written (no defaults added)."""
    return definition.model_dump_json(by_alias=True, exclude_unset=True)
