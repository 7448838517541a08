"""Times in answers: one form for every moment the API, the CLI and the pages show.

ISO 8601 in UTC with milliseconds and ``Z`` (``2026-03-02T09:15:00.123Z``). Before, four
formatters gave three precisions (seconds, milliseconds, microseconds) in one API. The
warehouse keeps times as naive UTC (microseconds); a naive moment is taken as UTC here.

Typed answers declare their times as :data:`UtcTime`: a ``datetime`` in Python (pages format
it per locale, the CLI as it likes) that becomes this text in JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer


def iso(moment: datetime) -> str:
    """``moment`` as ISO 8601 UTC with milliseconds and ``Z``; naive means UTC already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


def iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as naive UTC, the form the warehouse stores. ValueError for a moment whose
    offset takes it out of the years 1 to 9999 (``0001-01-01T00:00:00+14:00``)."""
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError(
            f"{moment.isoformat()} is out of range once moved to UTC (years 1 to 9999)"
        ) from None


# A moment in a typed answer: naive UTC ``datetime`` in Python (also when read back from
# JSON), ISO 8601 UTC text in JSON.
UtcTime = Annotated[
    datetime, AfterValidator(naive_utc), PlainSerializer(iso, return_type=str, when_used="json")
]
