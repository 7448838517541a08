"""Personalisation as the faces use it: placements defined by admins, and the decision
answered to a website or an app (``POST /v1/decide``).

A decision must be fast (a page waits for it): the placements are held parsed in memory,
the person is found in the identity map in memory, their facts are kept in memory
(:mod:`.facts`), and the decision is logged through a buffer written in Arrow batches by a
thread of the server (:class:`DecisionLog`). Only the first decision for a person after a
change to them reads the warehouse, and :meth:`Decider.cached` tells the caller when it
would (so the lean route runs that one in a worker thread and the rest on the event loop).

Who may ask: the browser holds the public write key, so a write key may decide by the
identifiers the SDK itself holds (``anonymousId``, ``userId``); any other identifier
(``email:…``) needs a key that may read profiles, as the answer tells something about the
person.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from touchpoints.activate.audiences.conditions import (
    AudienceCondition,
    ComputedTraitCondition,
    ConsentCondition,
    StageCondition,
    described,
    leaves,
)
from touchpoints.activate.audiences.evaluation import Evaluation
from touchpoints.activate.audiences.traits import NUMBERS
from touchpoints.activate.decide.definitions import (
    PlacementDefinition,
    PlacementError,
    ScoreFrom,
    parsed_placement,
)
from touchpoints.activate.decide.facts import Facts, PersonFacts
from touchpoints.activate.decide.results import (
    Decision,
    Group,
    Placement,
    PlacementList,
    ReasonCount,
    Uplift,
)
from touchpoints.activate.decide.rules import choose, in_control
from touchpoints.activate.decide.store import PlacementStore
from touchpoints.errors import Conflict, Forbidden, InvalidRequest, NotFound
from touchpoints.identity.identifiers import parse_key
from touchpoints.profiles import Profiles
from touchpoints.profiles.profile import ProfileNotFound
from touchpoints.warehouse import utc_now

log = logging.getLogger("touchpoints.decide")

PURPOSE = "personalisation"  # the consent purpose a decision needs
_MAX_BUFFER = 100_000  # decisions held for the log before the oldest are dropped (counted)


class DecideQuery(BaseModel):
    """Whom to decide for (the first identifier that names a person is taken: ``userId``,
    then ``anonymousId``, then ``identifier``) and which placement."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    placement: Annotated[str, Field(min_length=1, max_length=64, description="its key")]
    user_id: str | None = Field(default=None, alias="userId", min_length=1, max_length=500)
    anonymous_id: str | None = Field(
        default=None, alias="anonymousId", min_length=1, max_length=500
    )
    identifier: str | None = Field(
        default=None,
        min_length=3,
        max_length=600,
        description="TYPE:VALUE (email:anna@example.com); needs a key that reads profiles",
    )

    def keys(self) -> list[str]:
        found = []
        if self.user_id is not None:
            found.append(f"user_id:{self.user_id}")
        if self.anonymous_id is not None:
            found.append(f"anonymous_id:{self.anonymous_id}")
        if self.identifier is not None:
            found.append(self.identifier)
        return found


def decide_query(data: Any) -> DecideQuery:
    """``data`` (the parsed body) as a :class:`DecideQuery`, or :class:`InvalidRequest`
    naming the field."""
    if not isinstance(data, dict):
        raise InvalidRequest("body: give an object: {placement, anonymousId | userId}")
    data = {name: value for name, value in data.items() if name not in ("writeKey",)}
    try:
        query = DecideQuery.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(described(exc)) from None
    if not query.keys():
        raise InvalidRequest("anonymousId: give anonymousId, userId or identifier")
    return query


@dataclass(frozen=True)
class _Held:
    id: int
    definition: PlacementDefinition
    created_at: datetime
    changed_at: datetime


class DecisionLog:
    """Decisions waiting to be written, and the thread of the server that writes them every
    ``interval`` seconds in one Arrow batch. Without the thread (the CLI in process), each
    decision is written as it is made."""

    def __init__(self, store: PlacementStore, interval: float = 0.25) -> None:
        self.store = store
        self.interval = interval
        self.dropped = 0
        self.failures = 0
        self._rows: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, row: tuple[Any, ...]) -> None:
        if self._thread is None:
            self.store.log([row])
            return
        with self._lock:
            if len(self._rows) >= _MAX_BUFFER:
                self._rows.pop(0)
                self.dropped += 1
            self._rows.append(row)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name="touchpoints-decisions", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=30)
        self._thread = None
        self.flush()

    def flush(self) -> int:
        with self._lock:
            rows, self._rows = self._rows, []
        if rows:
            try:
                self.store.log(rows)
            except Exception as exc:  # noqa: BLE001 - keep them for the next turn
                self.failures += 1
                log.error("writing %d decisions failed (%s)", len(rows), type(exc).__name__)
                with self._lock:
                    self._rows[:0] = rows
                return 0
        return len(rows)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()


class Placements:
    """Placements defined, read and compared; the decisions made for them."""

    def __init__(
        self,
        store: PlacementStore,
        evaluation: Evaluation,
        profiles: Profiles,
        facts: Facts,
        refresh: Callable[[], object],
        consent_categories: list[str],
    ) -> None:
        self.store = store
        self.evaluation = evaluation
        self.profiles = profiles
        self.facts = facts
        self.refresh = refresh  # the journey tables caught up (conversions are read there)
        self.consent_categories = [c.lower() for c in consent_categories]
        self.decisions = DecisionLog(store)
        self._held: dict[str, _Held] | None = None
        self._lock = threading.Lock()

    # -- defining ------------------------------------------------------------------------------
    def create(self, data: Any) -> Placement:
        found = parsed_placement(data)
        if self.store.definition(found.key) is not None:
            raise Conflict(f"key: a placement {found.key} exists; change it instead")
        self._check(found)
        self.store.add(found.key, found.name, _stored(found), utc_now())
        self._reload()
        return self.get(found.key)

    def change(self, key: str, data: Any) -> Placement:
        self._row(key)
        if isinstance(data, dict):
            data = {"key": key, **data}
        found = parsed_placement(data)
        if found.key != key:
            raise InvalidRequest(f"key: a placement's key stays {key}")
        self._check(found)
        self.store.change(key, found.name, _stored(found), utc_now())
        self._reload()
        return self.get(key)

    def remove(self, key: str) -> None:
        row = self._row(key)
        self.decisions.flush()
        self.store.remove(int(row[0]))
        self._reload()

    def _check(self, placement: PlacementDefinition) -> None:
        """What the rules name exists, and each score is a number."""
        traits = {t.key: t.definition for t in self.evaluation.traits()}
        audiences = {a.key for a in self.evaluation.audiences()}
        stages = [stage.name for stage in self.evaluation.journeys.model.stages]
        for index, rule in enumerate(placement.rules):
            place = f"rules[{index}]"
            if isinstance(rule.score, ScoreFrom) and rule.score.computed_trait is not None:
                trait = traits.get(rule.score.computed_trait)
                if trait is None or trait.kind not in NUMBERS:
                    raise PlacementError(
                        f"{place}.score.computed_trait: {rule.score.computed_trait} is not a "
                        f"computed trait with a number; {_known(traits)}"
                    )
            if rule.condition is None:
                continue
            for where, leaf in leaves(rule.condition, f"{place}.condition"):
                problem = self._problem(leaf, traits, audiences, stages)
                if problem:
                    raise PlacementError(f"{where}: {problem}")

    def _problem(
        self, leaf: Any, traits: Mapping[str, Any], audiences: set[str], stages: list[str]
    ) -> str | None:
        if isinstance(leaf, ComputedTraitCondition) and leaf.computed_trait not in traits:
            return f"no computed trait {leaf.computed_trait}; {_known(traits)}"
        if isinstance(leaf, AudienceCondition) and leaf.audience not in audiences:
            return f"no audience {leaf.audience}; {_known(dict.fromkeys(audiences))}"
        if isinstance(leaf, StageCondition) and leaf.journey_stage not in stages:
            return f"no journey stage {leaf.journey_stage!r}; the stages: {', '.join(stages)}"
        if (
            isinstance(leaf, ConsentCondition)
            and leaf.consent.lower() not in self.consent_categories
        ):
            return (
                f"no consent category {leaf.consent!r}; the categories: "
                f"{', '.join(self.consent_categories)}"
            )
        return None

    def naming(self, kind: str, key: str) -> list[str]:
        """The placements whose rules name the audience or computed trait ``key`` (an
        :attr:`Evaluation.named_by` hook: such a definition is not deleted under them)."""
        found = []
        for placement_key, held in sorted(self.held().items()):
            for rule in held.definition.rules:
                if kind == "computed_trait" and isinstance(rule.score, ScoreFrom):
                    if rule.score.computed_trait == key:
                        found.append(f"placement {placement_key}")
                        break
                if rule.condition is not None and any(
                    (
                        kind == "audience"
                        and isinstance(leaf, AudienceCondition)
                        and leaf.audience == key
                    )
                    or (
                        kind == "computed_trait"
                        and isinstance(leaf, ComputedTraitCondition)
                        and leaf.computed_trait == key
                    )
                    for _, leaf in leaves(rule.condition)
                ):
                    found.append(f"placement {placement_key}")
                    break
        return found

    # -- reading -------------------------------------------------------------------------------
    def held(self) -> dict[str, _Held]:
        """The placements, parsed, by key (read once, and again after each change)."""
        held = self._held
        if held is None:
            held = self._reload()
        return held

    def _reload(self) -> dict[str, _Held]:
        with self._lock:
            held = {}
            for pid, key, _name, definition, created, changed in self.store.definitions():
                parsed = PlacementDefinition.model_validate(orjson.loads(definition))
                held[key] = _Held(int(pid), parsed, created, changed)
            self._held = held
            return held

    def listing(self) -> PlacementList:
        self.decisions.flush()
        counts = self.store.counts()
        return PlacementList(
            placements=[self._answer(held, counts) for held in self.held().values()]
        )

    def get(self, key: str) -> Placement:
        self.decisions.flush()
        held = self.held().get(key)
        if held is None:
            self._row(key)  # raises
            raise NotFound(f"no placement {key}")
        return self._answer(held, self.store.counts())

    def uplift(self, key: str) -> Uplift:
        """The conversion rates of the treatment and control groups and their difference."""
        held = self.held().get(key)
        if held is None:
            raise NotFound(f"no placement {key}; {_known(self.held())}")
        self.decisions.flush()
        placement = held.definition
        reasons = [
            ReasonCount(reason=reason, rule=rule, decisions=int(n))
            for reason, rule, n in self.store.reasons(held.id)
        ]
        groups = {True: (0, 0), False: (0, 0)}
        if placement.conversion_event is not None:
            self.refresh()
            for control, persons, converted in self.store.groups(
                held.id, placement.conversion_event, placement.conversion_days
            ):
                groups[bool(control)] = (int(persons), int(converted))
        treated, held_out = _group(*groups[False]), _group(*groups[True])
        difference = newcombe(groups[False], groups[True])
        uplift, low, high = difference if difference is not None else (None, None, None)
        relative = uplift / held_out.rate if uplift is not None and held_out.rate else None
        return Uplift(
            placement=key,
            conversion_event=placement.conversion_event,
            conversion_days=placement.conversion_days,
            treatment=treated,
            control=held_out,
            uplift=uplift,
            low=low,
            high=high,
            relative=relative,
            significant=low is not None and high is not None and (low > 0 or high < 0),
            reasons=reasons,
        )

    def _row(self, key: str) -> tuple[Any, ...]:
        row = self.store.definition(key)
        if row is None:
            raise NotFound(f"no placement {key}; {_known(self.held())}")
        return row

    @staticmethod
    def _answer(held: _Held, counts: Mapping[int, tuple[int, datetime | None]]) -> Placement:
        found = held.definition
        decided, last = counts.get(held.id, (0, None))
        return Placement(
            key=found.key,
            name=found.name,
            description=found.description,
            strategy=found.strategy,
            control_percent=found.control_percent,
            conversion_event=found.conversion_event,
            conversion_days=found.conversion_days,
            default=found.default,
            rules=[
                rule.model_dump(mode="json", by_alias=True, exclude_none=True)
                for rule in found.rules
            ],
            decisions=decided,
            last_decided_at=last,
            created_at=held.created_at,
            changed_at=held.changed_at,
        )


class Decider:
    """Answers ``POST /v1/decide``."""

    def __init__(
        self,
        placements: Placements,
        profiles: Profiles,
        facts: Facts,
        consent_category: str | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.placements = placements
        self.profiles = profiles
        self.facts = facts
        self.category = consent_category
        self.clock = clock

    def cached(self, query: DecideQuery, any_identifier: bool) -> Decision | None:
        """The decision if it needs no database (the usual case); None when it does: ask
        :meth:`decide` then, in a worker thread."""
        held = self._placement(query, any_identifier)
        person: int | None = None
        for key in query.keys():
            try:
                found = self.profiles.resolve_cached(key)
            except ProfileNotFound:
                continue
            if found is None:
                return None  # the identity map must be loaded
            person = found
            break
        if person is None:
            return self._unknown(held)
        facts = self.facts.cached(person)
        if facts is None:
            return None
        return self._decide(held, facts)

    def decide(self, query: DecideQuery, any_identifier: bool) -> Decision:
        held = self._placement(query, any_identifier)
        for key in query.keys():
            try:
                person = self.profiles.resolve(key)
            except ProfileNotFound:
                continue
            try:
                facts = self.facts.get(person)
            except ProfileNotFound:
                continue  # erased or merged away meanwhile
            return self._decide(held, facts)
        return self._unknown(held)

    def _placement(self, query: DecideQuery, any_identifier: bool) -> _Held:
        if query.identifier is not None:
            if not any_identifier:
                raise Forbidden(
                    "identifier: a write key decides by anonymousId or userId only (what the "
                    "browser's SDK holds); other identifiers need a key that reads profiles"
                )
            parse_key(query.identifier)  # a BadRequest saying how to write one
        held = self.placements.held().get(query.placement)
        if held is None:
            raise NotFound(f"placement: no placement {query.placement}")
        return held

    def _unknown(self, held: _Held) -> Decision:
        found = held.definition
        return Decision(
            placement=found.key,
            content=found.default,
            rule=None,
            reason="unknown",
            strategy=found.strategy,
            control=False,
        )

    def _decide(self, held: _Held, facts: PersonFacts) -> Decision:
        found = held.definition
        now = self.clock()
        rule: str | None = None
        content = found.default
        score = None
        control = False
        if self.category is not None and not facts.consent.get(self.category, False):
            reason = "consent"
        elif in_control(found, facts.person):
            reason, control = "control", True
        else:
            choice = choose(found, facts, now)
            if choice is None:
                reason = "default"
            else:
                reason, rule, content, score = (
                    "rule",
                    choice.rule.key,
                    choice.rule.content,
                    choice.score,
                )
        self.placements.decisions.add(
            (held.id, facts.person, rule, found.strategy, reason, control, _naive(now))
        )
        return Decision(
            placement=found.key,
            content=content,
            rule=rule,
            reason=reason,
            strategy=found.strategy,
            control=control,
            score=score,
            person=facts.person,
        )


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _group(persons: int, converted: int) -> Group:
    return Group(
        persons=persons,
        converted=converted,
        rate=converted / persons if persons else None,
    )


_Z = NormalDist().inv_cdf(0.975)


def _wilson(converted: int, persons: int) -> tuple[float, float]:
    p = converted / persons
    denominator = 1 + _Z**2 / persons
    centre = (p + _Z**2 / (2 * persons)) / denominator
    half = _Z * ((p * (1 - p) / persons + _Z**2 / (4 * persons**2)) ** 0.5) / denominator
    return centre - half, centre + half


def newcombe(
    treatment: tuple[int, int], control: tuple[int, int]
) -> tuple[float, float, float] | None:
    """(difference, low, high) of two proportions (persons, converted), treatment minus
    control, with Newcombe's hybrid score interval at 95% (his method 10): sound for small
    groups and rates near 0 or 1, where the Wald interval is not. None without persons in
    either group."""
    (n1, x1), (n2, x2) = treatment, control
    if n1 == 0 or n2 == 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = _wilson(x1, n1)
    l2, u2 = _wilson(x2, n2)
    difference = p1 - p2
    low = difference - ((p1 - l1) ** 2 + (u2 - p2) ** 2) ** 0.5
    high = difference + ((u1 - p1) ** 2 + (p2 - l2) ** 2) ** 0.5
    return difference, low, high


def _stored(found: PlacementDefinition) -> str:
    return found.model_dump_json(by_alias=True, exclude_none=True)


def _known(found: Mapping[str, Any]) -> str:
    return f"known: {', '.join(sorted(found))}" if found else "there are none yet"
