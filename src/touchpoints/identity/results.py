"""The answers of identity operations: the map's summary, links, unmerges, matching runs,
the review list and rebuilds, one typed model each (see :mod:`touchpoints.answers`).

Persons are named ``person:N`` and identifiers ``TYPE:VALUE``, as every face shows them.
"""

from __future__ import annotations

from pydantic import Field

from touchpoints.answers import Answer
from touchpoints.times import UtcTime


class IdentitySummary(Answer):
    persons: int
    identified: int = Field(description="Known by an identifier that names a person")
    anonymous: int = Field(description="Only cookies, device and advertising ids")
    identifiers: dict[str, int] = Field(description="Per identifier type")


class Link(Answer):
    """A link between two identifiers that share no event (an accepted match)."""

    link_id: int
    after_seq: int = Field(description="Applies as if it were an event right after this one")
    a: str = Field(description="TYPE:VALUE")
    b: str = Field(description="TYPE:VALUE")
    person: str | None = Field(description="The person of a, now")
    source: str = Field(description="match (by its score) or review (by a person)")
    probability: float | None
    created_at: UtcTime
    removed: bool
    note: str | None


class LinkPage(Answer):
    count: int = Field(description="All links asked for, not only this page")
    links: list[Link]


class Unmerged(Answer):
    detached: str = Field(description="The identifier that no longer joins anything")
    person: str | None = Field(description="The person it belonged to (person:N)")
    persons: list[str] = Field(description="The persons the old person split into")


class Unlinked(Answer):
    removed: int = Field(description="The link's number")
    persons: list[str] = Field(description="The persons its two identifiers belong to now")


class MatchRun(Answer):
    run_id: int
    records: int = Field(description="Persons compared")
    scored_pairs: int = Field(description="Pairs scored above the review line")
    linked: int
    refused: int = Field(description="Refused by the merge rules")
    review: int = Field(description="Put on the review list")
    skipped: int = Field(description="Already one person, decided before, or listed already")
    seconds: float


class IdentifierRef(Answer):
    type: str
    value: str


class MatchRecord(Answer):
    """A person's latest value of each field matching compares."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    birth_date: str | None = None
    street: str | None = None
    postcode: str | None = None
    city: str | None = None


class PairSide(Answer):
    identifier: IdentifierRef
    person: str | None
    record: MatchRecord | None


class MatchedPair(Answer):
    pair_id: int
    run_id: int
    probability: float
    status: str = Field(description="review, linked, refused, accepted, rejected or unlinked")
    created_at: UtcTime
    decided_at: UtcTime | None
    link_id: int | None
    note: str | None
    a: PairSide
    b: PairSide


class PairPage(Answer):
    count: int = Field(description="All pairs with the status asked for, not only this page")
    pairs: list[MatchedPair]


class RebuildResult(Answer):
    events: int
    identifiers: int
    links: int
    persons: int
    iterations: int = Field(description="Propagation steps of the connected components")
    replayed_components: int = Field(description="Replayed event by event under the rules")
    seconds: float
    phases: dict[str, float] = Field(default_factory=dict, description="Where the time went")
