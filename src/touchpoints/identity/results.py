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


class ScoreBand(Answer):
    low: float = Field(description="Pairs scored at or above this …")
    high: float = Field(description="… and below this (the top band includes 1)")
    pairs: int


class MatchDiagnostics(Answer):
    """Why a run linked what it linked: enough to see why nothing or everything was linked."""

    pairs_compared: int = Field(description="Pairs the blocking rules made, all scored")
    prior: float = Field(description="P(two random persons are one), the model's start")
    prior_source: str = Field(description="setting (match_prior) or rules (match_prior_rules)")
    prior_pairs: int | None = Field(description="Pairs the prior rules found (rules only)")
    comparisons: list[str] = Field(description="The comparisons the run made")
    left_out: list[str] = Field(description="Comparisons left out: no person has the field")
    bands: list[ScoreBand] = Field(description="Scored pairs per probability band")
    warnings: list[str] = Field(description="What makes the figures doubtful, and what to do")


class MatchRun(Answer):
    run_id: int
    records: int = Field(description="Persons compared")
    scored_pairs: int = Field(description="Pairs scored above the review line")
    linked: int
    refused: int = Field(description="Refused by the merge rules")
    review: int = Field(description="Put on the review list")
    skipped: int = Field(description="Already one person, decided before, or listed already")
    seconds: float
    diagnostics: MatchDiagnostics | None = None


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


class Evidence(Answer):
    """One part of a pair's score: the prior, or a comparison at the level it reached."""

    comparison: str = Field(description="prior, or a comparison (first_name, birth_date, …)")
    level: str = Field(description="The level the pair reached, e.g. 'Exact match on last name'")
    weight: float = Field(description="Match weight (log2 Bayes factor); the weights add up")


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
    evidence: list[Evidence] = Field(
        default_factory=list, description="What scored the pair (empty for older pairs)"
    )


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
    extracted: bool = Field(
        default=True,
        description="Identifiers extracted again from every event (the identifier rules "
        "changed, or were not known), rather than the stored ones reused",
    )
    seconds: float
    phases: dict[str, float] = Field(default_factory=dict, description="Where the time went")
