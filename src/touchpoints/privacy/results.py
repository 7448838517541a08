"""The answers of the privacy operations (see :mod:`touchpoints.answers`): access and erasure
requests, what an erasure removed (counts, never the data), suppressions and retention."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from touchpoints.answers import Answer
from touchpoints.times import UtcTime


class PrivacyRequest(Answer):
    id: int
    kind: str = Field(description="export or erasure")
    subject: str = Field(
        description="person:N (never the key asked for, which may be an identifier); "
        "(nobody) when no person had the key"
    )
    status: str = Field(description="received, done, or refused")
    received_at: UtcTime
    due_at: UtcTime = Field(description="When the answer is due (privacy_deadline_days)")
    done_at: UtcTime | None
    overdue: bool = Field(description="Not done and past its due time")
    requested_by: str | None = Field(description="The key or user that asked")
    note: str | None
    outcome: dict[str, Any] | None = Field(
        description="What was done: counts (rows per table, identifiers, reject-file lines), "
        "never the data; for a refused request, why"
    )


def outcome_items(outcome: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """A request's outcome flattened for a table: ``("rows events", 12)``,
    ``("identifiers", 3)``, ``("reason", "no such person")``."""
    items: list[tuple[str, Any]] = []
    for name, value in (outcome or {}).items():
        if isinstance(value, dict):
            items.extend((f"{name} {inner}", count) for inner, count in value.items())
        else:
            items.append((name, value))
    return items


def outcome_text(outcome: dict[str, Any] | None) -> str:
    """The outcome on one line: ``rows events: 12, identifiers: 3``."""
    return ", ".join(f"{name}: {value}" for name, value in outcome_items(outcome))


class RequestList(Answer):
    requests: list[PrivacyRequest] = Field(description="Newest first")


class Erasure(Answer):
    request: PrivacyRequest
    person: str = Field(description="person:N, as the person was numbered before")
    identifiers: int = Field(description="Identifiers erased (and suppressed from now on)")
    removed: dict[str, int] = Field(description="Rows removed per table")
    reject_lines: int = Field(description="Lines removed from import reject files")
    persons_recomputed: int = Field(
        description="Other persons whose identity map was computed again without the events"
    )
    database_bytes: tuple[int, int] = Field(
        description="The database file's size before and after it was rewritten"
    )
    export_files: int = Field(
        default=0,
        description="Parquet files of earlier exports (touchpoints export) written again "
        "without the person, or deleted (a partition that held only them)",
    )
    export_failures: list[str] = Field(
        default_factory=list,
        description="Export directories that could not be written again, and why: the "
        "person's rows are still there",
    )
    audience_files: int = Field(
        default=0,
        description="Audience files (a file destination's CSV or Parquet of an audience's "
        "members) written again without the person",
    )
    identity_result_files: int = Field(
        default=0,
        description="Parquet files of identity maps computed outside and loaded (touchpoints "
        "identity load) written again without the person's identifiers",
    )
    identity_result_failures: list[str] = Field(
        default_factory=list,
        description="Loaded identity result directories that could not be written, and why",
    )


class Suppression(Answer):
    identifiers: int = Field(description="Erased identifiers whose events are dropped")
    events_dropped: int = Field(description="Events dropped for carrying one, in all")


class Lifted(Answer):
    request_id: int
    lifted: int = Field(description="Identifiers whose events are accepted again")


class RetentionRun(Answer):
    dry_run: bool
    events: int = Field(description="Events past their retention (removed unless a dry run)")
    per_rule: list[int] = Field(description="Events per rule of the retention setting, in order")
    quarantine: int = Field(description="Quarantined items past quarantine_retention_days")
    identifiers: int = Field(description="Identifiers left without any event, removed with them")
    export_files: int = Field(
        default=0,
        description="Parquet files of earlier exports written again without them, or deleted",
    )
    seconds: float
