"""The 360° profile of one person: identifiers, traits with provenance, computed attributes,
the cross-channel timeline, and the merges that made the person.

Everything is read from the warehouse when asked (the identity map says which events are the
person's: those whose most trusted identifier belongs to them), so a profile is current as
soon as the identity map has caught up with an event, and a merge or an unmerge changes it at
once. Nothing of a merged person is lost: both sides' events, identifiers and trait histories
stay and are read together.

Trait rules: of a trait's values, the one with the latest *event* time wins (a late-arriving
old event does not overwrite a newer value); a configured source priority comes first (e.g.
the CRM export beats web forms for the postal address). Every value is kept as history.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from touchpoints.errors import BadRequest, InvalidRequest, NotFound
from touchpoints.events import stored_event
from touchpoints.identity.identifiers import parse_key
from touchpoints.identity.resolver import IdentityResolver
from touchpoints.profiles.results import (
    Computed,
    ConsentChoice,
    ConsentHistory,
    ConsentStatus,
    IdentifierSeen,
    MergeEntry,
    MergeLog,
    PersonList,
    PredictedTrait,
    Profile,
    RejectedLink,
    Timeline,
    TraitValue,
)
from touchpoints.profiles.store import ProfileEvent, ProfileStore
from touchpoints.warehouse import Warehouse

ORDER_EVENTS = ("Order Completed",)
# A trait name as searches take it: letters, digits, '_' and '-', in dotted parts.
_TRAIT_NAME = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
_CACHE_SIZE = 200_000
# Serialised profiles (about 2 to 3 kB each on the demo data), for the lookup route.
_JSON_CACHE_SIZE = 100_000


def encode_cursor(event: Mapping[str, Any]) -> str:
    """The cursor of a timeline page that ends with ``event``: the next page starts after it."""
    return f"{event['timestamp'].isoformat()}_{event['seq']}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """(timestamp, seq) of a cursor from :func:`encode_cursor`; ValueError naming it if not."""
    moment, _sep, seq = cursor.rpartition("_")
    try:
        return datetime.fromisoformat(moment), int(seq)
    except ValueError:
        raise BadRequest(f"before: {cursor!r} is not a cursor from a 'next' field") from None


class ProfileNotFound(NotFound):
    """No person has the identifier (or there is no such person:N)."""


@dataclass(frozen=True)
class ConsentRules:
    """The consent categories, what holds for a person who never chose one, and which
    category each use of a person's data needs (config.py's ``consent_categories``,
    ``consent_defaults`` and ``consent_purposes``)."""

    categories: tuple[str, ...] = ("necessary",)
    defaults: Mapping[str, bool] = field(default_factory=lambda: {"necessary": True})
    purposes: Mapping[str, str] = field(default_factory=dict)

    def category_of(self, purpose: str) -> str:
        """The category ``purpose`` needs; an unknown purpose is an error, not a pass."""
        if purpose not in self.purposes:
            known = ", ".join(sorted(self.purposes)) or "none configured"
            raise BadRequest(f"purpose: {purpose!r} is not a consent purpose ({known})")
        return self.purposes[purpose]

    def allowed(self, status: Mapping[str, ConsentStatus]) -> dict[str, bool]:
        """Per purpose, whether the consent ``status`` lets the person's data be used so."""
        return {
            purpose: bool(status.get(category) and status[category].granted)
            for purpose, category in sorted(self.purposes.items())
        }

    def status(self, changes: list[ConsentChoice]) -> dict[str, ConsentStatus]:
        """Per category: the latest choice, else the default (a category never chosen and
        without a default is not granted). Categories a person chose that the settings do
        not name are kept too."""
        latest = {choice.category: choice for choice in changes}
        names = list(self.categories) + sorted(set(latest) - set(self.categories))
        out = {}
        for name in names:
            chosen = latest.get(name)
            if chosen is None:
                out[name] = ConsentStatus(
                    granted=bool(self.defaults.get(name, False)),
                    chosen=False,
                    at=None,
                    source=None,
                    channel=None,
                )
            else:
                out[name] = ConsentStatus(
                    granted=chosen.granted,
                    chosen=True,
                    at=chosen.at,
                    source=chosen.source,
                    channel=chosen.channel,
                )
        return out


def _consent_changes(
    rows: list[ProfileEvent], choices: list[tuple[int, str, bool]]
) -> list[ConsentChoice]:
    """The person's consent choices in event order (``rows`` are), keeping only changes:
    Segment's consent tools stamp every event with the preferences as they stand."""
    by_seq: dict[int, list[tuple[str, bool]]] = defaultdict(list)
    for seq, category, granted in choices:
        by_seq[seq].append((category, granted))
    current: dict[str, bool] = {}
    changes = []
    for row in rows:
        for category, granted in by_seq.get(row.seq, ()):
            if current.get(category) == granted:
                continue
            current[category] = granted
            changes.append(
                ConsentChoice(
                    category=category,
                    granted=granted,
                    at=row.timestamp,
                    source=row.source,
                    channel=row.channel,
                    message_id=row.message_id,
                )
            )
    return changes


def _at(profile: Profile, now: datetime) -> Profile:
    """``profile`` with what depends on the time of asking filled in (days since the last
    purchase, in whole days)."""
    last = profile.computed.last_purchase_at
    days = (now.astimezone(UTC).replace(tzinfo=None) - last).days if last is not None else None
    computed = profile.computed.model_copy(update={"days_since_last_purchase": days})
    return profile.model_copy(update={"computed": computed})


def _same_between(profile: Profile, now: datetime) -> tuple[datetime, datetime] | None:
    """The moments between which :func:`_at` gives what ``_at(now)`` gives (the whole days
    since the last purchase stay the same); None: always."""
    last = profile.computed.last_purchase_at
    if last is None:
        return None
    last = last.replace(tzinfo=UTC)
    start = last + timedelta(days=(now.astimezone(UTC) - last).days)
    return start, start + timedelta(days=1)


def _json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {}


def _revenue(properties: Mapping[str, Any]) -> float:
    for key in ("revenue", "total", "value"):
        value = properties.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return 0.0


class Profiles:
    """Profiles, timelines and trait search over the warehouse and the identity map."""

    def __init__(
        self,
        warehouse: Warehouse,
        identity: IdentityResolver,
        source_priority: Mapping[str, list[str]] | None = None,
        consent: ConsentRules | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.store = ProfileStore(warehouse)
        self.identity = identity
        self.source_priority = dict(source_priority or {})
        self.consent_rules = consent or ConsentRules()
        # Assembled profiles, dropped when the identity map reports a change to the person.
        self._cache: dict[int, tuple[tuple[int, int], Profile]] = {}
        # Their JSON as sent, per (person, history), with the time span it holds for (the
        # same days_since_last_purchase) if it has one; dropped with the profile.
        self._json: dict[
            tuple[int, bool], tuple[tuple[int, int], tuple[datetime, datetime] | None, bytes]
        ] = {}
        self._versions: dict[int, int] = {}
        self._generation = 0
        # The generation in which a lookup last ran with the map loaded (see resolve_cached).
        self._loaded_generation = -1
        identity.listeners.append(self._changed)
        # The traits a part above computes for a person (the predictions'), given by the
        # core; scoring calls :meth:`forget` so a cached profile shows the new ones.
        self.predicted: Callable[[int], dict[str, PredictedTrait]] | None = None

    def resolve(self, key: str) -> int:
        """The person behind ``key`` (any identifier, or ``person:N``)."""
        identifier = parse_key(key)
        generation = self._generation
        person = self.identity.lookup(identifier)  # loads the map if it was dropped
        self._loaded_generation = generation
        if person is None:
            raise ProfileNotFound(f"no person has the identifier {identifier}")
        return int(person)

    def resolve_cached(self, key: str) -> int | None:
        """``resolve`` when it needs no database, for callers on an event loop; None when the
        identity map was dropped (rebuild, failed write) and must be loaded by ``resolve``."""
        if self._loaded_generation != self._generation:
            return None
        return self.resolve(key)

    # -- the profile -------------------------------------------------------------------------
    def get(self, person: int, now: datetime | None = None) -> Profile:
        """The person's profile: from the cache while nothing of the person changed."""
        key = (self._generation, self._versions.get(person, 0))
        hit = self._cache.get(person)
        if hit is not None and hit[0] == key:
            profile = hit[1]
        else:
            profile = self._assemble(person)
            if (self._generation, self._versions.get(person, 0)) == key:
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.clear()
                self._cache[person] = (key, profile)
        return _at(profile, now or datetime.now(UTC))

    def json(self, person: int, history: bool = False, now: datetime | None = None) -> bytes:
        """The person's profile as the API sends it (JSON): from the cache while nothing of
        the person changed and days_since_last_purchase still holds."""
        now = datetime.now(UTC) if now is None else now.astimezone(UTC)
        body = self.cached_json(person, history, now)
        if body is not None:
            return body
        key = (self._generation, self._versions.get(person, 0))
        profile = self.get(person, now)
        body = profile.model_dump_json(exclude=None if history else {"trait_history"}).encode()
        if (self._generation, self._versions.get(person, 0)) == key:
            if len(self._json) >= _JSON_CACHE_SIZE:
                self._json.clear()
            self._json[(person, history)] = (key, _same_between(profile, now), body)
        return body

    def cached_json(
        self, person: int, history: bool = False, now: datetime | None = None
    ) -> bytes | None:
        """``json`` if it is cached and current, else None: never touches the database."""
        hit = self._json.get((person, history))
        if hit is None:
            return None
        key, span, body = hit
        if key != (self._generation, self._versions.get(person, 0)):
            return None
        if span is not None:
            now = datetime.now(UTC) if now is None else now.astimezone(UTC)
            if not span[0] <= now < span[1]:
                return None
        return body

    def forget(self) -> None:
        """Every cached profile is stale (what :attr:`predicted` gives changed)."""
        self._changed(None)

    def _changed(self, persons: set[int] | None) -> None:
        """The identity map's listener: profiles of ``persons`` (None: all) are stale."""
        if persons is None:
            self._generation += 1
            self._cache.clear()
            self._json.clear()
            return
        for person in persons:
            self._versions[person] = self._versions.get(person, 0) + 1
            self._cache.pop(person, None)
            self._json.pop((person, False), None)
            self._json.pop((person, True), None)

    def _assemble(self, person: int) -> Profile:
        found = self.store.identifiers(person)
        if not found:
            raise ProfileNotFound(f"no person:{person}")
        sids = [row.sid for row in found]
        rows = self.store.events(self.store.event_seqs(sids))
        first_seen = self.store.event_times({row.first_seq for row in found})
        identifiers: dict[str, list[IdentifierSeen]] = defaultdict(list)
        for row in found:
            identifiers[row.type].append(
                IdentifierSeen(value=row.value, first_seen=first_seen.get(row.first_seq))
            )
        traits, history = self._traits(rows)
        choices = _consent_changes(rows, self.store.consent_choices([row.seq for row in rows]))
        return Profile(
            person=f"person:{person}",
            identifiers=dict(identifiers),
            traits=dict(sorted(traits.items())),
            trait_history=dict(sorted(history.items())),
            computed=self._computed(rows, identifiers),
            consent=self.consent_rules.status(choices),
            predicted=self.predicted(person) if self.predicted is not None else {},
            merges=self.merges(person, sids),
            rejected_links=self._rejections(person, sids),
        )

    def _traits(
        self, rows: list[ProfileEvent]
    ) -> tuple[dict[str, TraitValue], dict[str, list[TraitValue]]]:
        history: dict[str, list[tuple[datetime, int, TraitValue]]] = defaultdict(list)
        for row in rows:
            ctx = _json(row.context)
            context_traits = ctx.get("traits")
            found = dict(context_traits) if isinstance(context_traits, dict) else {}
            if row.type == "identify":
                found.update(_json(row.traits))
            origin = ctx.get("source") if isinstance(ctx.get("source"), str) else None
            if origin is None:
                library = ctx.get("library")
                if isinstance(library, dict) and isinstance(library.get("name"), str):
                    origin = library["name"]
            origin = origin or row.source
            ts = row.timestamp
            for name, value in found.items():
                if value is None or value == "":
                    continue
                trait = TraitValue(
                    value=value, source=origin, timestamp=ts, message_id=row.message_id
                )
                history[name].append((ts, row.seq, trait))
        current: dict[str, TraitValue] = {}
        kept: dict[str, list[TraitValue]] = {}
        for name, values in history.items():
            ranked = self.source_priority.get(name, [])

            def rank(item: tuple[datetime, int, TraitValue], ranked: list[str] = ranked) -> tuple:
                ts, seq, value = item
                source_rank = ranked.index(value.source) if value.source in ranked else len(ranked)
                return (-source_rank, ts, seq)

            current[name] = max(values, key=rank)[2]
            kept[name] = [value for _, _, value in sorted(values, key=lambda v: (v[0], v[1]))]
        return current, kept

    @staticmethod
    def _computed(
        rows: list[ProfileEvent], identifiers: Mapping[str, list[IdentifierSeen]]
    ) -> Computed:
        by_type: Counter[str] = Counter()
        channels: Counter[str] = Counter()
        orders, revenue = 0, 0.0
        last_purchase: datetime | None = None
        for row in rows:
            by_type[row.type] += 1
            channels[row.channel] += 1
            if row.type == "track" and row.event in ORDER_EVENTS:
                orders += 1
                revenue += _revenue(_json(row.properties))
                ts = row.timestamp
                last_purchase = ts if last_purchase is None or ts > last_purchase else last_purchase
        return Computed(
            first_seen=rows[0].timestamp if rows else None,
            last_seen=rows[-1].timestamp if rows else None,
            events=len(rows),
            events_by_type=dict(sorted(by_type.items())),
            channels=dict(channels.most_common()),
            identifiers_by_type={t: len(v) for t, v in sorted(identifiers.items())},
            devices=(
                len(identifiers.get("anonymous_id", [])) + len(identifiers.get("device_id", []))
            ),
            orders=orders,
            revenue=round(revenue, 2),
            last_purchase_at=last_purchase,
            days_since_last_purchase=None,  # as of the request: _at
        )

    # -- timeline, merges, search ------------------------------------------------------------
    def timeline(
        self, person: int, limit: int = 50, before: tuple[datetime, int] | None = None
    ) -> list[dict[str, Any]]:
        """The person's events, newest first, ``limit`` at a time; ``before`` pages on."""
        seqs = self.store.event_seqs(self.store.sids(person))
        return self.store.timeline(seqs, limit, before)

    def merges(self, person: int, sids: list[int] | None = None) -> list[MergeEntry]:
        """Merges into this person, and unmerges of its identifiers, oldest first."""
        sids = self.store.sids(person) if sids is None else sids
        entries = self.store.merges(sids)
        names = self.store.names({entry.sid for entry in entries})
        return [
            MergeEntry(
                kind=entry.kind,
                at=entry.created_at,
                seq=entry.seq,
                message_id=entry.message_id,
                kept=f"person:{entry.kept}",
                absorbed=f"person:{entry.absorbed}" if entry.absorbed is not None else None,
                identifier=names.get(entry.sid),
                note=entry.note,
            )
            for entry in entries
        ]

    def _rejections(self, person: int, sids: list[int]) -> list[RejectedLink]:
        """Links refused under the merge rules that touched this person."""
        refused = self.store.refused_links(sids)
        if not refused:
            return []
        involved = {sid for r in refused for sid in (r.sid, r.person, r.other)}
        names = self.store.names(involved)
        persons = self.store.persons_of(involved)
        return [
            RejectedLink(
                seq=r.seq,
                message_id=r.message_id,
                rule=r.rule,
                identifier=names.get(r.sid),
                person=f"person:{persons.get(r.person)}",
                other=f"person:{persons.get(r.other)}",
            )
            for r in refused
        ]

    def search(self, trait: str, value: str, limit: int = 50) -> list[int]:
        """Persons with ``trait`` equal to ``value`` (case-insensitive) in any event; a trait
        name that cannot be one is an :class:`InvalidRequest` naming ``trait``."""
        if not _TRAIT_NAME.match(trait):
            raise InvalidRequest(
                f"trait: {trait!r} is not a trait name: use letters, digits, '_' or '-', "
                "in parts joined by '.' (e.g. city or address.city)"
            )
        return self.store.persons_with_trait(trait, value, limit)

    # -- the operations the faces call -------------------------------------------------------
    def profile(self, key: str, history: bool = False) -> Profile:
        """The profile of the person behind ``key``; ``history``: every value of each trait."""
        profile = self.get(self.resolve(key))
        return profile if history else profile.model_copy(update={"trait_history": None})

    def timeline_page(self, key: str, limit: int = 50, before: str | None = None) -> Timeline:
        """One page of the person's events, newest first; ``before``: the ``next`` cursor of
        the page before."""
        person = self.resolve(key)
        rows = self.timeline(person, limit, decode_cursor(before) if before else None)
        return Timeline(
            person=f"person:{person}",
            events=[stored_event(row) for row in rows],
            next=encode_cursor(rows[-1]) if len(rows) == limit else None,
        )

    def merge_log(self, key: str) -> MergeLog:
        person = self.resolve(key)
        return MergeLog(person=f"person:{person}", merges=self.merges(person))

    def consent_history(self, key: str) -> ConsentHistory:
        """The person's consent as it stands and every change they made, oldest first."""
        person = self.resolve(key)
        rows = self.store.events(self.store.event_seqs(self.store.sids(person)))
        choices = _consent_changes(rows, self.store.consent_choices([row.seq for row in rows]))
        status = self.consent_rules.status(choices)
        return ConsentHistory(
            person=f"person:{person}",
            consent=status,
            purposes=self.consent_rules.allowed(status),
            history=choices,
        )

    def allows(self, key: str, purpose: str) -> bool:
        """Whether the person behind ``key`` may have their data used for ``purpose`` (a
        ``consent_purposes`` name): the category it needs is granted, by a choice or by
        the default. A person nobody knows, or who never chose a category without a
        granting default, does not pass."""
        self.consent_rules.category_of(purpose)  # an unknown purpose is an error here
        try:
            person = self.resolve(key)
        except NotFound:
            return False
        return person in self.consenting([person], [purpose])

    def consenting(
        self, persons: Sequence[int], purposes: Sequence[str], cursor: Any = None
    ) -> set[int]:
        """Of ``persons``, those who granted the category of every one of ``purposes``, by
        their latest choice or else the category's default; a purpose no longer configured:
        nobody. Read from the choices and the identity map as stored (one statement a
        purpose), not the journey tables: a trigger dispatches before the journeys derive
        the new events' persons, and a choice made a moment ago must count. Destinations,
        predictions and the service assistant ask (through :meth:`allows`) while a message
        waits; audiences and triggers for many persons at once, on their ``cursor``."""
        allowed = set(persons)
        for purpose in purposes:
            category = self.consent_rules.purposes.get(purpose)
            if category is None:
                return set()
            if not allowed:
                break
            chosen = self.store.latest_choices(sorted(allowed), category, cursor)
            default = bool(self.consent_rules.defaults.get(category, False))
            allowed = {p for p in allowed if chosen.get(p, default)}
        return allowed

    def find(self, trait: str, value: str, limit: int = 50) -> PersonList:
        """:meth:`search`, as ``person:N`` keys."""
        return PersonList(persons=[f"person:{p}" for p in self.search(trait, value, limit)])
