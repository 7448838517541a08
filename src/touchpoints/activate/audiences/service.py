"""Audiences and computed traits as the faces use them: typed answers, errors that name the
place. The API's routes (``/v1/audiences``, ``/v1/traits/computed``), the CLI and the
pages call these and nothing else.

A definition is checked in two steps: its form (:mod:`.conditions`, :mod:`.traits`), then
what it names (computed traits, audiences, journey stages and consent categories that
exist, no audience naming itself through others). A new or changed definition is evaluated
for everyone at once; reads first evaluate what changed since the last evaluation, so an
answer is never behind the events the identity map has read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import orjson
import yaml

from touchpoints.activate.audiences.conditions import (
    AudienceCondition,
    AudienceDefinition,
    ComputedTraitCondition,
    ConsentCondition,
    DefinitionError,
    StageCondition,
    leaves,
    parsed_definition,
    time_relative,
)
from touchpoints.activate.audiences.evaluation import Audience, Evaluation, Round
from touchpoints.activate.audiences.files import SCHEDULE_HELP, AudienceFiles, parsed_schedule
from touchpoints.activate.audiences.results import (
    Audience as AudienceAnswer,
)
from touchpoints.activate.audiences.results import (
    AudienceFileRun,
    AudienceLink,
    AudienceList,
    ComputedTrait,
    ComputedTraitList,
    Evaluated,
    Member,
    MemberPage,
    MembershipChange,
    MembershipHistory,
    PersonAudience,
    PersonMemberships,
    PersonTrait,
    PersonTraits,
    Preview,
    SizeHistory,
    SizePoint,
    TraitValue,
    TraitValues,
)
from touchpoints.activate.audiences.sync import MODES, SYNCED_KINDS
from touchpoints.activate.audiences.traits import (
    COUNTS,
    NUMBERS,
    ComputedTraitDefinition,
    parsed_trait,
)
from touchpoints.activate.service import Destinations
from touchpoints.errors import Conflict, InvalidRequest, NotFound
from touchpoints.warehouse import utc_now

_TEXT_TESTS = ("contains", "starts_with")


class _Loader(yaml.SafeLoader):
    """YAML without aliases (``*name``): a definition has no use for them, and a few lines
    of nested aliases stand for billions of values to check (the "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not taken in a definition", mark
            )
        return super().compose_node(parent, index)


# Booleans as YAML 1.2 (and JSON) write them: true and false only. YAML 1.1's on, off, yes
# and no read as text, so a trigger's ``on: entered`` is the key "on", not True.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, found) for tag, found in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def loaded(text: str, place: str = "definition") -> Any:
    """A definition written as YAML or JSON (JSON is YAML), or :class:`DefinitionError`
    naming the line (or the key that is not text)."""
    try:
        found = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader, aliases refused
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or "not YAML or JSON"
        raise DefinitionError(f"{place}:{where}: {reason}") from None
    _text_keys(found, place)
    return found


def _text_keys(value: Any, place: str) -> None:
    """Every mapping's keys are names: a number or a date as a key is refused by its place."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if not isinstance(key, str):
                raise DefinitionError(f"{place}: the key {key!r} is not a name (quote it)")
            _text_keys(inner, f"{place}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            _text_keys(inner, f"{place}[{index}]")


class ComputedTraits:
    def __init__(self, evaluation: Evaluation, resolve: Callable[[str], int]) -> None:
        self.evaluation = evaluation
        self.store = evaluation.store
        self.resolve = resolve

    def create(self, data: Any) -> ComputedTrait:
        found = parsed_trait(data)
        if self.store.definition("computed_traits", found.key) is not None:
            raise Conflict(f"key: a computed trait {found.key} exists; change it instead")
        with self.evaluation.lock:  # evaluations write the definitions' rows too
            new_id = self.store.add(
                "computed_traits", found.key, found.name, _stored(found), utc_now()
            )
        self.evaluation.evaluate_some(traits=[new_id])
        return self.get(found.key, catch_up=False)

    def change(self, key: str, data: Any) -> ComputedTrait:
        row = self._row(key)
        if isinstance(data, dict):
            data = {"key": key, **data}
        found = parsed_trait(data)
        if found.key != key:
            raise InvalidRequest(f"key: a computed trait's key stays {key}")
        self._check_users(key, found)
        with self.evaluation.lock:
            self.store.change("computed_traits", key, found.name, _stored(found), utc_now())
        self.evaluation.evaluate_some(traits=[row[0]])
        users = [a.id for a in self.evaluation.audiences() if key in _traits_named(a.definition)]
        if users:
            self.evaluation.evaluate_some(audiences=users)
        return self.get(key, catch_up=False)

    def remove(self, key: str) -> None:
        row = self._row(key)
        users = [a.key for a in self.evaluation.audiences() if key in _traits_named(a.definition)]
        if users:
            raise Conflict(
                f"computed trait {key} is in the audiences {', '.join(users)}: change them first"
            )
        others = self.evaluation.names_of_users("computed_trait", key)
        if others:
            raise Conflict(f"computed trait {key} is named by {', '.join(others)}: change it first")
        with self.evaluation.lock:
            self.store.remove_trait(row[0])

    def listing(self) -> ComputedTraitList:
        self.evaluation.catch_up()
        counts = self.store.value_counts()
        rows = self.store.definitions("computed_traits")
        return ComputedTraitList(traits=[_trait(row, counts) for row in rows])

    def get(self, key: str, catch_up: bool = True) -> ComputedTrait:
        if catch_up:
            self.evaluation.catch_up()
        return _trait(self._row(key), self.store.value_counts())

    def values(self, key: str, limit: int = 100, offset: int = 0) -> TraitValues:
        row = self._row(key)
        self.evaluation.catch_up()
        total, rows = self.store.values(row[0], limit, offset)
        return TraitValues(
            key=key,
            total=total,
            values=[
                TraitValue(person=f"person:{p}", value=orjson.loads(v), computed_at=at)
                for p, v, at in rows
            ],
        )

    def of_person(self, identifier: str) -> PersonTraits:
        """Every computed trait with the person's value (a count that found nothing: 0)."""
        person = self.resolve(identifier)
        self.evaluation.catch_up()
        found = {trait: (value, at) for trait, value, at in self.store.values_of(person)}
        traits = []
        for row in self.store.definitions("computed_traits"):
            definition = ComputedTraitDefinition.model_validate(orjson.loads(row[3]))
            value, at = found.get(row[0], (None, row[6]))
            if value is not None:
                value = orjson.loads(value)
            elif definition.kind in COUNTS:
                value = [] if definition.kind == "unique" else 0
            traits.append(
                PersonTrait(
                    key=row[1],
                    name=row[2],
                    kind=definition.kind,
                    summary=definition.summary(),
                    value=value,
                    computed_at=at,
                )
            )
        return PersonTraits(person=f"person:{person}", traits=traits)

    def _row(self, key: str) -> tuple[Any, ...]:
        row = self.store.definition("computed_traits", key)
        if row is None:
            raise NotFound(f"no computed trait {key}")
        return row

    def _check_users(self, key: str, trait: ComputedTraitDefinition) -> None:
        """A changed trait must still fit the tests audiences put to it."""
        for audience in self.evaluation.audiences():
            for place, leaf in leaves(audience.definition.condition):
                if isinstance(leaf, ComputedTraitCondition) and leaf.computed_trait == key:
                    problem = _unfit(leaf, trait)
                    if problem:
                        raise InvalidRequest(
                            f"kind: audience {audience.key} tests it ({place}) and {problem}"
                        )


class Audiences:
    def __init__(
        self,
        evaluation: Evaluation,
        destinations: Destinations,
        resolve: Callable[[str], int],
        consent_categories: Iterable[str],
        files: AudienceFiles | None = None,
    ) -> None:
        self.evaluation = evaluation
        self.store = evaluation.store
        self.destinations = destinations
        self.files = files or AudienceFiles(evaluation, destinations)
        self.resolve = resolve
        self.consent_categories = [c.lower() for c in consent_categories]

    # -- defining ------------------------------------------------------------------------------
    def create(self, data: Any) -> AudienceAnswer:
        found = parsed_definition(data)
        if self.store.definition("audiences", found.key) is not None:
            raise Conflict(f"key: an audience {found.key} exists; change it instead")
        self._check(found)
        with self.evaluation.lock:  # evaluations write the definitions' rows too
            new_id = self.store.add("audiences", found.key, found.name, _stored(found), utc_now())
        self.evaluation.evaluate_some(audiences=[new_id])
        return self.get(found.key, catch_up=False)

    def change(self, key: str, data: Any) -> AudienceAnswer:
        row = self._row(key)
        if isinstance(data, dict):
            data = {"key": key, **data}
        found = parsed_definition(data)
        if found.key != key:
            raise InvalidRequest(f"key: an audience's key stays {key} (destinations know it so)")
        self._check(found)
        with self.evaluation.lock:
            self.store.change("audiences", key, found.name, _stored(found), utc_now())
        self.evaluation.evaluate_some(audiences=[row[0]])
        return self.get(key, catch_up=False)

    def remove(self, key: str) -> None:
        row = self._row(key)
        users = [a.key for a in self.evaluation.audiences() if key in a.needs()]
        if users:
            raise Conflict(
                f"audience {key} is in the audiences {', '.join(users)}: change them first"
            )
        others = self.evaluation.names_of_users("audience", key)
        if others:
            raise Conflict(f"audience {key} is named by {', '.join(others)}: change it first")
        gone = self._file_links(row[0])
        with self.evaluation.lock:
            self.store.remove_audience(row[0])
        self.files.forget(gone)

    def preview(self, data: Any) -> Preview:
        """How many persons the condition (``{"condition": …}``, or a whole definition)
        holds for now, without saving it."""
        if isinstance(data, dict) and "condition" in data:
            data = {"key": "unsaved", "name": "unsaved", **data}
        found = parsed_definition(data)
        self._check(found)
        now = self.evaluation.clock()
        size, total = self.evaluation.preview(found.condition, now)
        return Preview(size=size, persons=total, at=now)

    def _check(self, audience: AudienceDefinition) -> None:
        """What the condition names exists; it names no audience that names it."""
        traits = {t.key: t.definition for t in self.evaluation.traits()}
        audiences = {a.key: a for a in self.evaluation.audiences()}
        stages = [stage.name for stage in self.evaluation.journeys.model.stages]
        known = {**audiences, audience.key: Audience(0, audience.key, audience)}
        for place, leaf in leaves(audience.condition):
            problem = self._problem(leaf, traits, known, stages)
            if problem:
                raise DefinitionError(f"{place}: {problem}")
        needs = {key: found.needs() for key, found in audiences.items()}
        needs[audience.key] = Audience(0, audience.key, audience).needs()
        seen: set[str] = set()
        waiting = sorted(needs[audience.key])
        while waiting:
            key = waiting.pop()
            if key == audience.key:
                raise DefinitionError(
                    f"condition: audience {audience.key} would be in itself (through "
                    f"{', '.join(sorted(seen)) or 'itself'})"
                )
            if key not in seen:
                seen.add(key)
                waiting.extend(sorted(needs.get(key, ())))

    def check_condition(self, condition: Any, place: str) -> None:
        """What ``condition`` (used elsewhere, such as a trigger's check) names exists, or
        :class:`DefinitionError` naming its place under ``place``."""
        traits = {t.key: t.definition for t in self.evaluation.traits()}
        audiences = {a.key: a for a in self.evaluation.audiences()}
        stages = [stage.name for stage in self.evaluation.journeys.model.stages]
        for where, leaf in leaves(condition, place):
            problem = self._problem(leaf, traits, audiences, stages)
            if problem:
                raise DefinitionError(f"{where}: {problem}")

    def _problem(
        self,
        leaf: Any,
        traits: dict[str, ComputedTraitDefinition],
        audiences: dict[str, Audience],
        stages: list[str],
    ) -> str | None:
        if isinstance(leaf, ComputedTraitCondition):
            trait = traits.get(leaf.computed_trait)
            if trait is None:
                return f"no computed trait {leaf.computed_trait}; {_known(traits)}"
            return _unfit(leaf, trait)
        if isinstance(leaf, AudienceCondition) and leaf.audience not in audiences:
            return f"no audience {leaf.audience}; {_known(audiences)}"
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

    # -- reading -------------------------------------------------------------------------------
    def listing(self) -> AudienceList:
        self.evaluation.catch_up()
        sizes = self.store.member_counts()
        links = self.store.links()
        return AudienceList(
            audiences=[
                self._answer(row, sizes, links) for row in self.store.definitions("audiences")
            ]
        )

    def get(self, key: str, catch_up: bool = True) -> AudienceAnswer:
        if catch_up:
            self.evaluation.catch_up()
        row = self._row(key)
        return self._answer(row, self.store.member_counts(), self.store.links(row[0]))

    def members(self, key: str, limit: int = 100, offset: int = 0) -> MemberPage:
        row = self._row(key)
        self.evaluation.catch_up()
        rows = self.store.members(row[0], limit, offset)
        return MemberPage(
            key=key,
            size=self.store.member_counts().get(row[0], 0),
            members=[Member(person=f"person:{p}", entered_at=at) for p, at in rows],
        )

    def history(self, key: str | None = None, limit: int = 100) -> MembershipHistory:
        """Entries and exits, newest first (of one audience, or all)."""
        audience = self._row(key)[0] if key is not None else None
        self.evaluation.catch_up()
        return self._history(audience, None, limit)

    def sizes(self, key: str, days: int = 90) -> SizeHistory:
        row = self._row(key)
        self.evaluation.catch_up()
        since = self.evaluation.clock().date() - timedelta(days=days - 1)
        return SizeHistory(
            key=key,
            sizes=[
                SizePoint(day=day, size=size, entered=entered, exited=exited)
                for day, size, entered, exited in self.store.sizes(row[0], since)
            ],
        )

    def of_person(self, identifier: str, limit: int = 100) -> PersonMemberships:
        """The audiences the person is in, and their entries and exits, newest first."""
        person = self.resolve(identifier)
        self.evaluation.catch_up()
        names = {row[0]: (row[1], row[2]) for row in self.store.definitions("audiences")}
        return PersonMemberships(
            person=f"person:{person}",
            audiences=[
                PersonAudience(key=names[a][0], name=names[a][1], entered_at=at)
                for a, at in self.store.memberships(person)
                if a in names
            ],
            history=self._history(None, person, limit).changes,
        )

    def keys_of(self, person: int) -> frozenset[str]:
        """The keys of the audiences ``person`` is in as the last evaluation left them (no
        evaluation waited for: the service assistant asks this while a customer waits)."""
        names = {row[0]: row[1] for row in self.store.definitions("audiences")}
        return frozenset(names[a] for a, _ in self.store.memberships(person) if a in names)

    def _history(self, audience: int | None, person: int | None, limit: int) -> MembershipHistory:
        keys = {row[0]: row[1] for row in self.store.definitions("audiences")}
        return MembershipHistory(
            changes=[
                MembershipChange(
                    audience=keys.get(a, str(a)), person=f"person:{p}", change=c, at=at
                )
                for a, p, c, at in self.store.history(audience, person, limit)
            ]
        )

    # -- sending -------------------------------------------------------------------------------
    def link(
        self,
        key: str,
        destination: int,
        mode: str | None = None,
        schedule: str | None = None,
    ) -> AudienceAnswer:
        """Send the audience to ``destination``. A webhook or a collector (``identify``, the
        default, or ``track``): every member now (a first sync), then every entry and exit.
        A file destination (``file``, its default): every member as one file now and on
        ``schedule`` (``every 15 minutes``, ``every 2 hours``, ``daily at 06:00``)."""
        row = self._row(key)
        kind, _purposes = self.destinations.purposes_of(destination)
        mode = mode or ("file" if kind == "file" else "identify")
        if mode not in (*MODES, "file"):
            raise InvalidRequest(f"mode: {mode!r} is not one of {', '.join(MODES)}, file")
        if mode == "file" and kind != "file":
            raise InvalidRequest(
                f"destination: destination {destination} is a {kind} destination; "
                "a file link needs a file destination"
            )
        if mode != "file" and kind not in SYNCED_KINDS:
            raise InvalidRequest(
                f"mode: a {kind} destination cannot take audience calls ({mode}); "
                + (
                    f"link it as a file (mode file, with a schedule: {SCHEDULE_HELP})"
                    if kind == "file"
                    else f"link a {' or '.join(SYNCED_KINDS)} destination"
                )
            )
        if mode != "file" and schedule is not None:
            raise InvalidRequest("schedule: only a file link has a schedule")
        if mode == "file" and not schedule:
            raise InvalidRequest(f"schedule: a file link needs a schedule: {SCHEDULE_HELP}")
        when = parsed_schedule(schedule) if schedule else None
        if any(link[1] == destination for link in self.store.links(row[0])):
            raise Conflict(f"audience {key} is sent to destination {destination} already")
        self.evaluation.catch_up()
        if when is not None:
            self.files.link(row[0], key, destination, when)
        else:
            self.evaluation.link(self._audience(row), destination, mode)
        return self.get(key, catch_up=False)

    def unlink(self, key: str, destination: int) -> AudienceAnswer:
        """Send the audience to ``destination`` no more; a file link's file is removed (and
        its runs still in the outbox with it)."""
        row = self._row(key)
        gone = [link for link in self._file_links(row[0]) if link[2] == destination]
        with self.evaluation.lock:
            if not self.store.unlink(row[0], destination):
                raise NotFound(f"audience {key} is not sent to destination {destination}")
        self.files.forget(gone)
        return self.get(key, catch_up=False)

    def export_now(self, key: str, destination: int) -> AudienceFileRun:
        """A file link's run now, besides its schedule: the members as a file, written soon."""
        row = self._row(key)
        return self.files.run_now(row[0], key, destination)

    def _file_links(self, audience_id: int) -> list[tuple[int, str, int, str]]:
        return [
            (a, key, d, config)
            for a, key, d, config, _schedule, _at in self.store.file_links()
            if a == audience_id
        ]

    def evaluate(self) -> Evaluated:
        """Evaluate everyone now (the schedule does so on its own)."""
        return _evaluated(self.evaluation.evaluate_all())

    # -- helpers -------------------------------------------------------------------------------
    def _row(self, key: str) -> tuple[Any, ...]:
        row = self.store.definition("audiences", key)
        if row is None:
            raise NotFound(f"no audience {key}")
        return row

    def _audience(self, row: tuple[Any, ...]) -> Audience:
        return next(a for a in self.evaluation.audiences() if a.id == row[0])

    def _answer(
        self, row: tuple[Any, ...], sizes: dict[int, int], links: list[tuple[Any, ...]]
    ) -> AudienceAnswer:
        definition = orjson.loads(row[3])
        parsed = AudienceDefinition.model_validate(definition)
        return AudienceAnswer(
            key=row[1],
            name=row[2],
            description=parsed.description,
            condition=definition["condition"],
            size=sizes.get(row[0], 0),
            time_relative=time_relative(parsed.condition),
            created_at=row[4],
            changed_at=row[5],
            evaluated_at=row[6],
            destinations=[
                AudienceLink(
                    destination=link[1],
                    mode=link[2],
                    linked_at=link[3],
                    synced_at=link[4],
                    sent=link[5],
                    schedule=link[6],
                    next_run_at=link[7],
                    rows=link[8],
                )
                for link in links
                if link[0] == row[0]
            ],
        )


def _stored(definition: AudienceDefinition | ComputedTraitDefinition) -> str:
    """A definition as stored: as validated, by its aliases (``and``), with what was written
    (no defaults added)."""
    return definition.model_dump_json(by_alias=True, exclude_unset=True)


def _trait(row: tuple[Any, ...], counts: dict[int, int]) -> ComputedTrait:
    definition = orjson.loads(row[3])
    parsed = ComputedTraitDefinition.model_validate(definition)
    return ComputedTrait(
        key=row[1],
        name=row[2],
        description=parsed.description,
        kind=parsed.kind,
        definition=definition,
        summary=parsed.summary(),
        persons=counts.get(row[0], 0),
        created_at=row[4],
        changed_at=row[5],
        evaluated_at=row[6],
    )


def _traits_named(audience: AudienceDefinition) -> set[str]:
    return {
        leaf.computed_trait
        for _, leaf in leaves(audience.condition)
        if isinstance(leaf, ComputedTraitCondition)
    }


def _unfit(leaf: ComputedTraitCondition, trait: ComputedTraitDefinition) -> str | None:
    """Why ``leaf``'s test does not fit the kind of value ``trait`` has, or None."""
    test = leaf.test()
    if trait.kind in NUMBERS and test in _TEXT_TESTS:
        return f"{leaf.computed_trait} is a number ({trait.kind}): {test} tests text"
    if trait.kind == "unique" and test in ("not_equals", "starts_with"):
        return (
            f"{leaf.computed_trait} is a list of values: test it with contains, one_of, "
            "equals (one of the values), exists, or a range (how many)"
        )
    return None


def _known(found: dict[str, Any]) -> str:
    return f"known: {', '.join(sorted(found))}" if found else "there are none yet"


def _evaluated(done: Round) -> Evaluated:
    return Evaluated(
        full=done.full,
        persons=done.persons,
        traits=done.traits,
        audiences=done.audiences,
        entered=done.entered,
        exited=done.exited,
        messages=done.messages,
        seconds=done.seconds,
    )
