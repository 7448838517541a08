"""Keeping computed traits and audience membership current: live, for the persons an event
or a merge touched, and for everyone on a schedule (time windows move on) or when a
definition changes.

One evaluation is one transaction. It first brings the journey tables up to date (each
event with its person, kept in step with the identity map), then, reading them in that
transaction:

1. the persons to evaluate: those the journey tables moved identifiers to or from, or gave
   new events, since the last evaluation (``activation_persons`` and
   ``activation_state.evaluated_seq`` are the map and the events it saw), or everyone;
2. each computed trait's values for them, replaced;
3. each audience's members among them (audiences another one names first), the difference
   written as entries and exits with the day's size;
4. a message to every destination the audience is sent to, for each entry and exit (consent
   to the destination's purposes checked, set-based), in the same transaction: nothing is
   sent that was not evaluated, and nothing evaluated is left unsent.

Persons merged into another are not sent an exit (their identifiers are the other person's
now); a person who took identifiers from a member (a merge or an unmerge) and is no member
is sent one, so a receiver never keeps a stale ``true``. After the commit, the listeners
(:attr:`Evaluation.listeners`: triggers) get every entry and exit.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson
import pyarrow as pa

from touchpoints.activate.audiences import compile as expressions
from touchpoints.activate.audiences.conditions import (
    AudienceCondition,
    AudienceDefinition,
    leaves,
)
from touchpoints.activate.audiences.store import SCOPE, AudienceStore
from touchpoints.activate.audiences.sync import MODES, payload
from touchpoints.activate.audiences.traits import (
    NUMBERS,
    UNIQUE_LIMIT,
    ComputedTraitDefinition,
)
from touchpoints.activate.service import Destinations
from touchpoints.journeys.service import Journeys
from touchpoints.warehouse import Warehouse, utc_now
from touchpoints.warehouse.ibis_gateway import IbisGateway

log = logging.getLogger("touchpoints.audiences")


@dataclass(frozen=True)
class MembershipChanges:
    """Who entered and who exited one audience in one evaluation (what a trigger listens
    for)."""

    audience: str  # the audience's key
    audience_id: int
    entered: tuple[int, ...]  # persons, by number
    exited: tuple[int, ...]
    at: datetime


@dataclass
class Round:
    """What one evaluation did."""

    full: bool = False
    persons: int = 0  # persons evaluated (a live round), or 0 for everyone
    traits: int = 0
    audiences: int = 0
    entered: int = 0
    exited: int = 0
    messages: int = 0
    seconds: float = 0.0
    changes: list[MembershipChanges] = field(default_factory=list)
    scope: set[int] | None = None  # the persons evaluated (live); None: everyone


@dataclass(frozen=True)
class Trait:
    id: int
    key: str
    definition: ComputedTraitDefinition


@dataclass(frozen=True)
class Audience:
    id: int
    key: str
    definition: AudienceDefinition

    def needs(self) -> set[str]:
        """The keys of the audiences its condition names."""
        return {
            leaf.audience
            for _, leaf in leaves(self.definition.condition)
            if isinstance(leaf, AudienceCondition)
        }


class Evaluation:
    """Evaluates computed traits and audiences; one at a time (:attr:`lock`)."""

    def __init__(
        self,
        warehouse: Warehouse,
        journeys: Journeys,
        destinations: Destinations,
        consent_defaults: Mapping[str, bool],
        consented: Callable[[Sequence[int], Sequence[str], Any], set[int]],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.warehouse = warehouse
        # Of some persons, those who granted every one of some purposes, on a cursor
        # (:meth:`touchpoints.profiles.Profiles.consenting`): what audiences and triggers
        # send is checked as a profile lookup checks it.
        self.consented = consented
        self.store = AudienceStore(warehouse)
        self.journeys = journeys
        self.destinations = destinations
        self.consent_defaults = {k.lower(): v for k, v in consent_defaults.items()}
        self.clock = clock
        # Held while evaluating (and by an erasure, which deletes rows evaluation writes).
        self.lock = threading.RLock()
        # Called after each evaluation that changed membership, with the changes.
        self.listeners: list[Callable[[list[MembershipChanges]], None]] = []
        # Called after each evaluation with the persons it evaluated (None: everyone), whose
        # membership and computed traits may have changed (decisions' cached facts).
        self.evaluated: list[Callable[[set[int] | None], None]] = []
        # What else names an audience or a computed trait (placements' rules): given the kind
        # ("audience", "computed_trait") and the key, the names of those that name it; a
        # definition named so is not deleted.
        self.named_by: list[Callable[[str, str], list[str]]] = []
        self.wake = threading.Event()  # set when the identity map reports a change
        self._parsed: dict[tuple[str, int, datetime], Any] = {}
        self._compiled: dict[tuple[Any, ...], str] = {}

    def names_of_users(self, kind: str, key: str) -> list[str]:
        """What outside audiences names the audience or computed trait ``key``."""
        return [name for found in self.named_by for name in found(kind, key)]

    def touched(self, persons: set[int] | None) -> None:
        """The identity map's listener: its persons changed, evaluate them soon."""
        self.wake.set()

    # -- definitions -----------------------------------------------------------------------------
    def traits(self) -> list[Trait]:
        return [
            Trait(row[0], row[1], self._parse("computed_traits", row, ComputedTraitDefinition))
            for row in self.store.current("computed_traits")
        ]

    def audiences(self) -> list[Audience]:
        """Every audience, those another names before it."""
        found = [
            Audience(row[0], row[1], self._parse("audiences", row, AudienceDefinition))
            for row in self.store.current("audiences")
        ]
        return ordered(found)

    def _parse(self, table: str, row: tuple[Any, ...], kind: type[Any]) -> Any:
        key = (table, row[0], row[5])
        if key not in self._parsed:
            self._parsed[key] = kind.model_validate(orjson.loads(row[3]))
        return self._parsed[key]

    def queries(self, cursor: Any, scope: str | None = None) -> Queries:
        """The expressions' SQL on ``cursor`` for the persons in the temporary table
        ``scope`` (None: everyone), compiled once per definition and context."""
        model = self.journeys.model
        traits = {trait.key: trait.definition for trait in self.traits()}
        audiences = {row[1]: row[0] for row in self.store.current("audiences")}
        stages = {stage.name: index for index, stage in enumerate(model.stages)}
        context = orjson.dumps(
            [
                scope,
                sorted((k, t.model_dump_json()) for k, t in traits.items()),
                sorted(audiences.items()),
                sorted(stages.items()),
                sorted(self.consent_defaults.items()),
            ]
        ).decode()

        def world(backend: Any) -> expressions.World:
            return expressions.World(
                backend,
                scope=backend.table(scope) if scope is not None else None,
                stages=stages,
                consent_defaults=self.consent_defaults,
                traits=traits,
                audiences=audiences,
            )

        if len(self._compiled) > 1000:
            self._compiled.clear()
        return Queries(IbisGateway(self.warehouse, cursor), world, context, self._compiled)

    # -- evaluating ------------------------------------------------------------------------------
    def catch_up(self, now: datetime | None = None) -> Round:
        """Evaluate the persons that changed since the last evaluation."""
        return self._evaluate("changed", now)

    def evaluate_all(self, now: datetime | None = None) -> Round:
        """Evaluate everyone: every computed trait and audience (time windows move on)."""
        return self._evaluate("all", now)

    def evaluate_some(
        self, traits: Sequence[int] = (), audiences: Sequence[int] = (), now: datetime | None = None
    ) -> Round:
        """Evaluate these computed traits and audiences for everyone (a new or changed
        definition), and the audiences that name those audiences."""
        return self._evaluate("some", now, set(traits), set(audiences))

    def _evaluate(
        self,
        mode: Literal["changed", "all", "some"],
        now: datetime | None,
        trait_ids: set[int] | None = None,
        audience_ids: set[int] | None = None,
    ) -> Round:
        started = time.perf_counter()
        with self.lock:
            traits, audiences = self.traits(), self.audiences()
            if mode == "some":
                traits = [t for t in traits if t.id in (trait_ids or set())]
                audiences = _with_dependents(audiences, audience_ids or set())
            if not traits and not audiences:
                return Round(full=mode != "changed")
            self.journeys.person_source()  # the journey tables caught up with the identity map
            now = now or self.clock()
            done = self._transaction(mode, now, traits, audiences)
        done.seconds = round(time.perf_counter() - started, 3)
        for listener in self.evaluated:
            listener(done.scope)
        if done.changes:
            self._tell(done.changes)
        return done

    def _transaction(
        self,
        mode: Literal["changed", "all", "some"],
        now: datetime,
        traits: list[Trait],
        audiences: list[Audience],
    ) -> Round:
        done = Round(full=mode != "changed", traits=len(traits), audiences=len(audiences))
        with self.warehouse.transaction() as cursor:
            changed = None if mode == "some" else self.store.changed(cursor, mode == "all")
            if changed is not None and mode == "changed":
                if changed.persons == 0:
                    self.store.seen(changed, now, cursor)
                    return Round(scope=set())
                done.persons = changed.persons
            scoped = mode == "changed"
            self.store.clock(now, cursor)
            queries = self.queries(cursor, SCOPE if scoped else None)
            for trait in traits:
                rows = _values(self.store, queries, trait, now, cursor)
                self.store.replace_values(trait.id, rows, scoped, cursor)
            moves = changed.moves if changed is not None else []
            for audience in audiences:
                self._members(queries, audience, moves, scoped, now, done, cursor)
            self.store.evaluated("computed_traits", [t.id for t in traits], now, cursor)
            self.store.evaluated("audiences", [a.id for a in audiences], now, cursor)
            if changed is not None:
                self.store.seen(changed, now, cursor)
            if scoped:
                done.scope = self.store.scope(cursor)
            self.store.drop_scope(cursor)
        return done

    def _members(
        self,
        queries: Queries,
        audience: Audience,
        moves: list[tuple[int, int]],
        scoped: bool,
        now: datetime,
        done: Round,
        cursor: Any,
    ) -> None:
        """Evaluate one audience, write its changes and the messages they cause."""
        condition = audience.definition.condition
        taken_from: dict[int, set[int]] = defaultdict(set)  # person → whom they took ids from
        for before, after in moves:
            taken_from[after].add(before)
        givers = sorted({before for before, _ in moves})
        were = self.store.members_among(audience.id, givers, cursor)
        select = queries.sql(
            ("members", audience.definition.model_dump_json()),
            lambda world: expressions.persons(world, condition),
        )
        changes = self.store.replace_members(audience.id, select, scoped, now, cursor)
        if changes.entered or changes.exited or not scoped:
            self.store.count_day(
                audience.id,
                now.date(),
                changes.size,
                len(changes.entered),
                len(changes.exited),
                cursor,
            )
        done.entered += len(changes.entered)
        done.exited += len(changes.exited)
        # Exits are sent to persons that still exist, and to those who took identifiers from
        # a member and are none (nor were: they would have exited themselves).
        heirs = {
            person
            for person, givers_of in taken_from.items()
            if givers_of & were and person not in changes.exited
        }
        heirs -= self.store.members_among(audience.id, sorted(heirs), cursor)
        exits = sorted(set(self.store.known(changes.exited, cursor)) | heirs)
        done.messages += self.send(audience, changes.entered, exits, now, cursor)
        if changes.entered or changes.exited:
            done.changes.append(
                MembershipChanges(
                    audience.key,
                    audience.id,
                    tuple(changes.entered),
                    tuple(changes.exited),
                    now,
                )
            )

    # -- messages --------------------------------------------------------------------------------
    def send(
        self,
        audience: Audience,
        entered: Sequence[int],
        exited: Sequence[int],
        now: datetime,
        cursor: Any,
        destination: int | None = None,
    ) -> int:
        """Messages about ``entered`` and ``exited`` to every destination the audience is
        sent to (or only ``destination``), in the transaction of ``cursor``."""
        links = [
            link
            for link in self.store.links(audience.id, cursor)
            if (destination is None or link[1] == destination) and link[2] in MODES
        ]  # a file link takes the members as a whole file on its schedule, not as calls
        if not links or not (entered or exited):
            return 0
        persons = sorted({*entered, *exited})
        ids = self.store.identifiers_of(persons, cursor)
        about = (audience.id, audience.key, audience.definition.name)
        written = 0
        for _, destination_id, mode, *_rest in links:
            _kind, purposes = self.destinations.purposes_of(destination_id, cursor)
            consented = self.consented(persons, purposes, cursor)
            messages = []
            for member, group in ((True, entered), (False, exited)):
                for person in group:
                    message_id = "msg_" + secrets.token_hex(16)
                    found = ids.get(person, {})
                    call = payload(mode, about, person, member, found, message_id, now)
                    messages.append((person, call, message_id))
            sent = self.destinations.enqueue_many(
                destination_id, messages, consented=consented, cursor=cursor
            )
            self.store.synced(audience.id, destination_id, sent, now, cursor)
            written += sent
        return written

    def preview(self, condition: Any, now: datetime | None = None) -> tuple[int, int]:
        """(persons ``condition`` holds for, persons there are), now; nothing is written."""
        self.journeys.person_source()
        with self.warehouse.transaction() as cursor:
            self.store.clock(now or self.clock(), cursor)
            queries = self.queries(cursor)
            world = queries.world()
            size = queries.gateway.arrow(expressions.persons(world, condition).count()).as_py()
            total = queries.gateway.arrow(world.persons().count()).as_py()
        return int(size), int(total)

    def link(self, audience: Audience, destination: int, mode: str) -> int:
        """Send ``audience`` to ``destination`` from now on, and every member now, as
        entered (the first sync), in one transaction; the messages written."""
        with self.lock, self.warehouse.transaction() as cursor:
            now = self.clock()
            self.store.link(audience.id, destination, mode, now, cursor)
            members = self.store.all_members(audience.id, cursor)
            return self.send(audience, members, [], now, cursor, destination)

    def _tell(self, changes: list[MembershipChanges]) -> None:
        for listener in self.listeners:
            try:
                listener(changes)
            except Exception:  # noqa: BLE001 - a listener must not undo an evaluation
                log.exception("an audience listener failed")


class Queries:
    """The SQL of expressions on one cursor: compiled by Ibis on first use, then kept in
    ``cache`` by what it depends on (the definition and ``context``: the other definitions
    it may name, the scope table, the stages; never the moment, read from ``_tp_clock``)."""

    def __init__(
        self,
        gateway: IbisGateway,
        make_world: Callable[[Any], expressions.World],
        context: str,
        cache: dict[tuple[Any, ...], str],
    ) -> None:
        self.gateway = gateway
        self._make_world = make_world
        self._world: expressions.World | None = None
        self.context = context
        self.cache = cache

    def world(self) -> expressions.World:
        if self._world is None:
            self._world = self._make_world(self.gateway.backend)
        return self._world

    def sql(self, what: tuple[Any, ...], build: Callable[[expressions.World], Any]) -> str:
        key = (*what, self.context)
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = self.gateway.compile(build(self.world()))
        return found


def _values(
    store: AudienceStore, queries: Queries, trait: Trait, now: datetime, cursor: Any
) -> pa.Table:
    """A computed trait's values as stored: (person, value as JSON, number_value,
    text_value, computed_at)."""
    definition = trait.definition
    what = definition.model_dump_json()
    select = queries.sql(
        ("values", what), lambda world: expressions.trait_values(world, definition)
    )
    found = store.rows(select, cursor)
    persons = found.column("person").to_pylist()
    numbers = found.column("number_value").to_pylist()
    texts = found.column("text_value").to_pylist()
    if definition.kind == "unique":
        select = queries.sql(
            ("list", what), lambda world: expressions.trait_list(world, definition)
        )
        listed = store.rows(select, cursor)
        lists: dict[int, list[str]] = defaultdict(list)
        for person, text in zip(
            listed.column("person").to_pylist(),
            listed.column("text_value").to_pylist(),
            strict=True,
        ):
            lists[person].append(text)
        values = [orjson.dumps(sorted(lists[p])[:UNIQUE_LIMIT]).decode() for p in persons]
    else:
        values = [
            _json(number, text, definition.kind in NUMBERS)
            for number, text in zip(numbers, texts, strict=True)
        ]
    return pa.table(
        {
            "person": pa.array(persons, pa.int64()),
            "value": pa.array(values, pa.string()),
            "number_value": pa.array(numbers, pa.float64()),
            "text_value": pa.array(texts, pa.string()),
            "computed_at": pa.array([now] * len(persons), pa.timestamp("us")),
        }
    )


def _json(number: float | None, text: str | None, numeric: bool) -> str:
    if number is not None and (numeric or text is None or _numeric_text(text)):
        whole = float(number).is_integer() and abs(number) < 2**53
        return orjson.dumps(int(number) if whole else number).decode()
    return orjson.dumps(text).decode()


def _numeric_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def ordered(audiences: list[Audience]) -> list[Audience]:
    """``audiences`` with each after the audiences it names (a cycle, which saving refuses,
    is broken by id)."""
    by_key = {audience.key: audience for audience in audiences}
    out: list[Audience] = []
    placed: set[str] = set()

    def place(audience: Audience, path: set[str]) -> None:
        if audience.key in placed or audience.key in path:
            return
        for needed in sorted(audience.needs()):
            if needed in by_key:
                place(by_key[needed], path | {audience.key})
        placed.add(audience.key)
        out.append(audience)

    for audience in sorted(audiences, key=lambda a: a.id):
        place(audience, set())
    return out


def _with_dependents(audiences: list[Audience], ids: set[int]) -> list[Audience]:
    """The audiences ``ids`` and every audience that names one of them, at any depth, in
    evaluation order."""
    chosen = {a.key for a in audiences if a.id in ids}
    grew = True
    while grew:
        more = {a.key for a in audiences if a.needs() & chosen} - chosen
        chosen |= more
        grew = bool(more)
    return [a for a in audiences if a.key in chosen]
