"""What analyses share in their questions: validation errors that name the place, and a
date range (``since`` inclusive, ``until`` exclusive, in UTC)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from touchpoints.errors import InvalidRequest, describe
from touchpoints.times import naive_utc

Spec = TypeVar("Spec", bound=BaseModel)


class AnalysisError(InvalidRequest):
    """An analysis was asked for with bad inputs; the message names the place and the reason."""


def explain(exc: ValidationError) -> str:
    """``steps[1].event: give an event name; window: …`` from pydantic's errors."""
    return describe(exc.errors())


def validated(kind: type[Spec], data: dict[str, Any] | Spec) -> Spec:
    """``data`` as a validated ``kind``, or :class:`AnalysisError` naming each problem."""
    if isinstance(data, kind):
        return data
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        raise AnalysisError(explain(exc)) from None


def utc(value: datetime | None) -> datetime | None:
    """A moment as naive UTC (how the warehouse stores times); ValueError (a validation
    error of the field that calls it) for one that is out of range in UTC."""
    return None if value is None else naive_utc(value)


class DateRange(BaseModel):
    """``since`` (inclusive) and ``until`` (exclusive), naive UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: datetime | None = None
    until: datetime | None = None

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return utc(value)

    @model_validator(mode="after")
    def _range(self) -> DateRange:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("until: give a moment after since")
        return self


_SHORT_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?\s*$")
_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def short_span(text: str) -> float | str:
    """'14d', '12h', '30m', '2w', '90' (seconds) as seconds; anything else as given (ISO 8601
    such as 'P14D', which the analysis's own validation reads or refuses)."""
    found = _SHORT_SPAN.match(text)
    if found is None:
        return text
    return float(found.group(1)) * _SECONDS[found.group(2) or "s"]
