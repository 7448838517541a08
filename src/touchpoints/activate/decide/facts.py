"""What a decision reads about a person, kept in memory: their audiences, computed traits,
traits, predictions, journey stages and consent.

A person's facts are read once (from the live audience membership and computed-trait
tables, the cached profile, the latest predictions and the stages entered) and kept until
something reports them stale:

- the identity map, when the person's events, identifiers or merges change;
- the evaluation of audiences, for the persons it evaluated (their membership and computed
  traits may have changed) or everyone (a definition changed);
- a scoring run (predictions), for everyone.

A load that raced with such a report is not kept (each person has a version, as the profile
cache does), so a decision never keeps reading what was true before a change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from touchpoints.activate.decide.store import PlacementStore
from touchpoints.profiles.results import Profile

_CACHE_SIZE = 200_000


@dataclass(frozen=True)
class Computed:
    """One computed trait's value for the person (None: they have none)."""

    kind: str
    value: Any = None
    number: float | None = None
    text: str | None = None


@dataclass(frozen=True)
class PersonFacts:
    person: int
    audiences: frozenset[str] = frozenset()
    computed: Mapping[str, Computed] = field(default_factory=dict)
    traits: Mapping[str, Any] = field(default_factory=dict)
    predictions: Mapping[str, float] = field(default_factory=dict)
    # stage → (its index, when it was entered, latest)
    stages: Mapping[str, tuple[int, datetime]] = field(default_factory=dict)
    consent: Mapping[str, bool] = field(default_factory=dict)  # category → granted

    @property
    def furthest_stage(self) -> int | None:
        return max((index for index, _ in self.stages.values()), default=None)


class Facts:
    """Each person's :class:`PersonFacts`, loaded on first use and dropped when stale."""

    def __init__(self, store: PlacementStore, profile: Callable[[int], Profile]) -> None:
        self.store = store
        self.profile = profile
        self._cache: dict[int, tuple[tuple[int, int], PersonFacts]] = {}
        self._versions: dict[int, int] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self.loads = 0  # how many times facts were read from the warehouse

    def cached(self, person: int) -> PersonFacts | None:
        """The person's facts if they are current; never touches the database."""
        hit = self._cache.get(person)
        if hit is None or hit[0] != (self._generation, self._versions.get(person, 0)):
            return None
        return hit[1]

    def get(self, person: int) -> PersonFacts:
        """The person's facts: cached, or read now (in a worker thread: it queries)."""
        found = self.cached(person)
        if found is not None:
            return found
        version = (self._generation, self._versions.get(person, 0))
        found = self._load(person)
        with self._lock:
            if version == (self._generation, self._versions.get(person, 0)):
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.clear()
                self._cache[person] = (version, found)
        return found

    def changed(self, persons: set[int] | None) -> None:
        """A listener: the facts of ``persons`` (None: everyone) are stale."""
        with self._lock:
            if persons is None:
                self._generation += 1
                self._cache.clear()
                return
            for person in persons:
                self._versions[person] = self._versions.get(person, 0) + 1
                self._cache.pop(person, None)

    def forget(self) -> None:
        """Everyone's facts are stale (a scoring run: new predictions)."""
        self.changed(None)

    def _load(self, person: int) -> PersonFacts:
        self.loads += 1
        profile = self.profile(person)
        computed = {
            key: Computed(
                kind or "",
                orjson.loads(value) if value is not None else None,
                number,
                text,
            )
            for key, kind, value, number, text in self.store.computed_of(person)
        }
        stages: dict[str, tuple[int, datetime]] = {}
        for stage, index, entered in self.store.stages_of(person):
            known = stages.get(stage)
            if known is None or entered > known[1]:
                stages[stage] = (int(index), entered)
        return PersonFacts(
            person=person,
            audiences=frozenset(self.store.audiences_of(person)),
            computed=computed,
            traits={name: trait.value for name, trait in profile.traits.items()},
            predictions=self.store.predictions_of(person),
            stages=stages,
            consent={name: status.granted for name, status in profile.consent.items()},
        )
