"""The answers about one person: the 360° profile, its timeline and merge log, and trait
searches, one typed model each (see :mod:`touchpoints.answers`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from touchpoints.answers import Answer
from touchpoints.events import StoredEvent
from touchpoints.times import UtcTime


class IdentifierSeen(Answer):
    value: str
    first_seen: UtcTime | None = Field(description="The time of its first event")


class TraitValue(Answer):
    value: Any
    source: str = Field(description="Where it came from: context.source, the library, the key")
    timestamp: UtcTime = Field(description="The time of the event that carried it")
    message_id: str


class PredictedTrait(Answer):
    """A trait the predictions computed for the person at their latest scoring."""

    value: Any = Field(description="A number, a list of items, or an action's name")
    model_id: int | None = Field(description="The model card that made it; null: rules")
    model_version: str = Field(description="The model (or the action rules' version)")
    scored_at: UtcTime


class Computed(Answer):
    first_seen: UtcTime | None
    last_seen: UtcTime | None
    events: int
    events_by_type: dict[str, int]
    channels: dict[str, int] = Field(description="Events per channel, most used first")
    identifiers_by_type: dict[str, int]
    devices: int = Field(description="Browser cookies and app installs")
    orders: int
    revenue: float
    last_purchase_at: UtcTime | None
    days_since_last_purchase: int | None = Field(description="As of the request")


class ConsentChoice(Answer):
    """A choice the person made (or a default, for a category never chosen)."""

    category: str
    granted: bool
    at: UtcTime | None = Field(description="When it was made; None: the default")
    source: str | None = Field(description="The key the event came with; None: the default")
    channel: str | None
    message_id: str | None


class ConsentStatus(Answer):
    granted: bool
    chosen: bool = Field(description="The person chose (else the configured default holds)")
    at: UtcTime | None
    source: str | None
    channel: str | None


class ConsentHistory(Answer):
    person: str
    consent: dict[str, ConsentStatus] = Field(description="Per category, as it stands")
    purposes: dict[str, bool] = Field(
        description="Per use of the person's data (consent_purposes), whether consent allows it"
    )
    history: list[ConsentChoice] = Field(description="Every change, oldest first")


class MergeEntry(Answer):
    kind: str = Field(description="merge (by an event), link, or unmerge")
    at: UtcTime
    seq: int | None = Field(description="The event that merged, for a merge")
    message_id: str | None
    kept: str = Field(description="person:N")
    absorbed: str | None
    identifier: str | None = Field(description="TYPE:VALUE that joined (or was detached)")
    note: str | None


class RejectedLink(Answer):
    """A link the merge rules refused (e.g. a second user id for a person)."""

    seq: int | None
    message_id: str | None
    rule: str
    identifier: str | None
    person: str
    other: str


class Profile(Answer):
    person: str = Field(description="person:N")
    identifiers: dict[str, list[IdentifierSeen]] = Field(description="Per identifier type")
    traits: dict[str, TraitValue] = Field(description="Each trait's current value")
    computed: Computed
    consent: dict[str, ConsentStatus] = Field(
        description="Per consent category: granted or not, and whether the person chose"
    )
    predicted: dict[str, PredictedTrait] = Field(
        default_factory=dict,
        description=(
            "The predictions' traits from the latest scoring (predicted_clv_12m, p_alive, "
            "churn_risk, churn_percentile, next_best_products, next_best_action), each with "
            "its model and time; only those the person was scored for (consent allowing)"
        ),
    )
    merges: list[MergeEntry]
    rejected_links: list[RejectedLink]
    trait_history: dict[str, list[TraitValue]] | None = Field(
        default=None, description="Every value each trait had (only when asked for)"
    )

    @property
    def number(self) -> int:
        """N of person:N."""
        return int(self.person.removeprefix("person:"))


class Timeline(Answer):
    person: str
    events: list[StoredEvent] = Field(description="Stored events, newest first")
    next: str | None = Field(description="The cursor of the next page (before=…), if any")


class MergeLog(Answer):
    person: str
    merges: list[MergeEntry]


class PersonList(Answer):
    persons: list[str] = Field(description="person:N, in order")
