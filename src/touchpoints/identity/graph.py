"""The identity graph: identifiers seen together are one person, within the merge rules.

Identifier strings are mapped to integer surrogates (``sid``) in the order they are first seen
(event ``seq``, then their priority inside the event), and persons are the connected
components of a union-find over them. A person's id is the smallest sid in it: the identifier
seen first. Because a smaller sid always survives a union, an id that disappears in a merge
still finds its person through ``find``; no redirect table is needed.

Merge rules, as in Segment's identity resolution: each identifier type may have a limit per
person (one user id, five e-mails, five phones by default). Events are applied in ``seq``
order; an event's most trusted identifier (the first, in priority order) is its *anchor*, and
every other identifier of the event is linked to the anchor's person unless the union would
break a limit. Such a link is not made: it is recorded as a rejected merge with its evidence,
and the event stays with its anchor's person. An operator can *detach* an identifier (an
unmerge): it is never linked again, and the persons it joined fall apart when replayed.

The same decisions are taken by :mod:`touchpoints.identity.rebuild` with set-based SQL (only
the few components where a rule bites are replayed through this class), so incremental and
rebuilt results are identical by construction, and a property test holds them to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from touchpoints.identity.identifiers import Identifier


@dataclass(frozen=True)
class Merge:
    """Two persons became one: ``absorbed`` now resolves to ``kept``."""

    seq: int
    kept: int
    absorbed: int
    sid: int  # the identifier whose link joined them


@dataclass(frozen=True)
class Rejection:
    """A link the merge rules refused: ``sid`` would have joined ``other`` into ``person``."""

    seq: int
    person: int
    other: int
    sid: int
    rule: str  # e.g. "user_id limit 1" or "detached"


@dataclass
class Observation:
    """What one event did to the graph."""

    person: int | None  # the event's person (its anchor's), None when it has no identifier
    sids: list[int]  # the event's identifiers, anchor first
    new_sids: list[int] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    seq: int = 0


class IdentityGraph:
    """An in-memory union-find over identifier surrogates, with per-type limits."""

    def __init__(self, limits: Mapping[str, int] | None = None, next_sid: int = 1) -> None:
        self.limits = {t: n for t, n in (limits or {}).items() if n is not None}
        self.sids: dict[tuple[str, str], int] = {}
        self.types: dict[int, str] = {}
        self.values: dict[int, str] = {}
        self.parent: dict[int, int] = {}
        self.detached: set[int] = set()
        # For each root: the sids of each limited type in its component.
        self._limited: dict[int, dict[str, set[int]]] = {}
        # For each root: every sid of its person (to publish a person's new members at once).
        self.members: dict[int, list[int]] = {}
        self.next_sid = next_sid

    # -- surrogates --------------------------------------------------------------------------
    def add_identifier(self, sid: int, id_type: str, value: str, root: int | None = None) -> None:
        """Load a known identifier (from the warehouse) with its person."""
        self.sids[(id_type, value)] = sid
        self.types[sid] = id_type
        self.values[sid] = value
        self.parent[sid] = sid if root is None else root
        self.next_sid = max(self.next_sid, sid + 1)
        top = self.parent[sid]
        self.members.setdefault(top, []).append(sid)
        if id_type in self.limits:
            self._limited.setdefault(top, {}).setdefault(id_type, set()).add(sid)

    def sid(self, identifier: Identifier) -> int | None:
        return self.sids.get((identifier.type, identifier.value))

    def _new(self, identifier: Identifier) -> int:
        sid = self.next_sid
        self.next_sid += 1
        self.sids[(identifier.type, identifier.value)] = sid
        self.types[sid] = identifier.type
        self.values[sid] = identifier.value
        self.parent[sid] = sid
        self.members[sid] = [sid]
        if identifier.type in self.limits:
            self._limited[sid] = {identifier.type: {sid}}
        return sid

    # -- union-find --------------------------------------------------------------------------
    def find(self, sid: int) -> int:
        parent = self.parent
        root = sid
        while parent[root] != root:
            root = parent[root]
        while parent[sid] != root:  # path compression
            parent[sid], sid = root, parent[sid]
        return root

    def _breaks_limit(self, a: int, b: int) -> str | None:
        left, right = self._limited.get(a, {}), self._limited.get(b, {})
        for id_type, limit in self.limits.items():
            count = len(left.get(id_type, ())) + len(right.get(id_type, ()))
            if count > limit:
                return f"{id_type} limit {limit}"
        return None

    def _union(self, a: int, b: int) -> tuple[int, int]:
        kept, absorbed = (a, b) if a < b else (b, a)
        self.parent[absorbed] = kept
        self.members.setdefault(kept, []).extend(self.members.pop(absorbed, [absorbed]))
        moved = self._limited.pop(absorbed, None)
        if moved:
            target = self._limited.setdefault(kept, {})
            for id_type, sids in moved.items():
                target.setdefault(id_type, set()).update(sids)
        return kept, absorbed

    # -- events ------------------------------------------------------------------------------
    def observe(self, seq: int, identifiers: Sequence[Identifier]) -> Observation:
        """Apply one event's identifiers (priority order, anchor first)."""
        sids: list[int] = []
        new: list[int] = []
        for identifier in identifiers:
            sid = self.sid(identifier)
            if sid is None:
                sid = self._new(identifier)
                new.append(sid)
            sids.append(sid)
        return self.observe_sids(seq, sids, new)

    def observe_sids(self, seq: int, sids: list[int], new: Sequence[int] = ()) -> Observation:
        """Apply one event given by surrogates (anchor first); ``new``: first seen here."""
        if not sids:
            return Observation(None, [], seq=seq)
        observation = Observation(None, sids, list(new), seq=seq)
        anchor = sids[0]
        person = self.find(anchor)
        # A union is a merge (logged) when both sides existed before this event; attaching an
        # identifier seen for the first time is just a link.
        person_existed = anchor not in new
        for sid in sids[1:]:
            other = self.find(sid)
            if other == person:
                continue
            rule = "detached" if (sid in self.detached or anchor in self.detached) else None
            rule = rule or self._breaks_limit(person, other)
            if rule is not None:
                observation.rejections.append(Rejection(seq, person, other, sid, rule))
                continue
            other_existed = not (other == sid and sid in new)
            kept, absorbed = self._union(person, other)
            if person_existed and other_existed:
                observation.merges.append(Merge(seq, kept, absorbed, sid))
            person, person_existed = kept, person_existed or other_existed
        observation.person = person
        return observation

    def detach(self, sid: int) -> None:
        """Never link ``sid`` again (the caller replays its component to split it)."""
        self.detached.add(sid)

    def reset(self, sids: Iterable[int]) -> None:
        """Make each of ``sids`` its own person again, before their events are replayed."""
        for sid in sids:
            self.parent[sid] = sid
            self.members[sid] = [sid]
            self._limited.pop(sid, None)
            id_type = self.types[sid]
            if id_type in self.limits:
                self._limited[sid] = {id_type: {sid}}

    def persons(self) -> dict[int, int]:
        """Every sid's person."""
        return {sid: self.find(sid) for sid in self.parent}
