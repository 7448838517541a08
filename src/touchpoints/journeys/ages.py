"""Age bands, the same for every analysis that groups people by age (channel mix, funnels):
written ``"18-24"`` and a last open ``"65+"``; people without an age or outside every band
are ``unknown``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Ibis only where an expression is built: the queries import this module
    import ibis.expr.types as ir

DEFAULT_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
UNKNOWN = "unknown"
_BAND = re.compile(r"^\s*(\d{1,3})\s*(?:-\s*(\d{1,3})|(\+))\s*$")


class BandError(ValueError):
    """Bands that cannot be used; the message names the band and the reason."""


@dataclass(frozen=True)
class Band:
    label: str
    low: int
    high: int | None  # inclusive; None: no upper end


def parse_bands(bands: Sequence[str]) -> list[Band]:
    """``"18-24"``-style bands in ascending order, without overlaps; only the last may be
    open (``"65+"``)."""
    if not bands:
        raise BandError("bands: give at least one band, e.g. '18-24' or '65+'")
    parsed: list[Band] = []
    for i, text in enumerate(bands):
        match = _BAND.match(text)
        if match is None:
            raise BandError(
                f"bands[{i}]: {text!r} is not a band; write 'lo-hi' (e.g. '18-24') or 'lo+'"
            )
        low = int(match.group(1))
        high = None if match.group(3) else int(match.group(2))
        if high is not None and high < low:
            raise BandError(f"bands[{i}]: {text!r} ends before it starts")
        if high is None and i != len(bands) - 1:
            raise BandError(f"bands[{i}]: {text!r} has no upper end; only the last may")
        if parsed:
            before = parsed[-1]
            assert before.high is not None
            if low <= before.high:
                raise BandError(
                    f"bands[{i}]: {text!r} overlaps or comes before {before.label!r}; "
                    "give bands in ascending order without overlaps"
                )
        parsed.append(Band(text.strip(), low, high))
    return parsed


def band_of(age: ir.IntegerValue, bands: list[Band]) -> ir.StringValue:
    """The label of the band ``age`` falls in, or ``unknown``."""
    import ibis

    cases = [
        ((age >= b.low) & (age <= b.high) if b.high is not None else age >= b.low, b.label)
        for b in bands
    ]
    return ibis.cases(*cases, else_=UNKNOWN)
