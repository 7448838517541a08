"""Identifiers: which values in an event say who it is, in one normal form, junk refused.

An identifier is a ``(type, value)`` pair: ``("email", "anna@example.com")``. Each type says
where in a Segment message its values are found, how they are normalised (e-mail lower-cased
and trimmed, phone numbers to E.164 with ``phonenumbers``, wallet addresses lower-cased), how
many of them one person may have (the merge rules' limits) and how much it is trusted
(priority: a lower number wins when an event's identifiers disagree).

Values that identify nobody are refused before they can join two people: placeholders such as
``"null"``, ``"undefined"``, ``"[object Object]"`` or ``"0000-0000"`` that broken SDKs send
(the lists Segment and PostHog block), test addresses such as ``test@test.com``, and device
ids known to be shared by many devices.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, NamedTuple

import orjson
import phonenumbers

from touchpoints.errors import BadRequest

Normalisation = Literal["exact", "lower", "email", "phone"]

# Raise it when a change of the code below changes which identifiers an event has (a new
# normal form, a value refused that was not): the stored event identifiers were then found by
# other rules, and the next rebuild extracts them from every event again.
EXTRACTION_VERSION = 1


@dataclass(frozen=True)
class IdentifierType:
    """One kind of identifier and the rules for it."""

    name: str
    paths: tuple[str, ...]  # dotted paths into a Segment message, e.g. "context.traits.email"
    normalise: Normalisation = "exact"
    limit: int | None = None  # most distinct values one person may have; None: no limit
    priority: int = 100  # lower is more trusted

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"identifier type {self.name!r}: use lower-case letters, digits, _")
        if not self.paths:
            raise ValueError(f"identifier type {self.name!r}: give at least one path")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"identifier type {self.name!r}: limit must be at least 1")


# Segment's identity resolution defaults (one user id, five e-mails, five phones, unlimited
# anonymous ids), with the ids the demo's channels send. Order is also the priority order.
DEFAULT_TYPES: tuple[IdentifierType, ...] = (
    IdentifierType("user_id", ("userId",), "exact", limit=1, priority=1),
    IdentifierType(
        "customer_number",
        ("traits.customer_number", "context.traits.customer_number"),
        "exact",
        limit=None,
        priority=2,
    ),
    IdentifierType(
        "email",
        ("traits.email", "context.traits.email", "properties.email"),
        "email",
        limit=5,
        priority=3,
    ),
    IdentifierType(
        "phone",
        ("traits.phone", "context.traits.phone", "properties.phone"),
        "phone",
        limit=5,
        priority=4,
    ),
    IdentifierType(
        "wallet",
        ("traits.wallet", "context.traits.wallet", "properties.wallet"),
        "lower",
        priority=5,
    ),
    IdentifierType(
        "vehicle_id",
        ("traits.vin", "context.traits.vin", "properties.vin", "properties.vehicle_id"),
        "exact",
        priority=6,
    ),
    IdentifierType(
        "social_handle",
        ("traits.social_handle", "context.traits.social_handle"),
        "lower",
        priority=7,
    ),
    IdentifierType("device_id", ("context.device.id",), "exact", priority=8),
    IdentifierType("advertising_id", ("context.device.advertisingId",), "exact", priority=9),
    # An alias's previousId is the id the sender knew the person by before: usually an
    # anonymous id (Segment's docs), so it is typed as one.
    IdentifierType("anonymous_id", ("anonymousId", "previousId"), "exact", priority=10),
)

# Types that name a browser, an app install or an ad id rather than a person: a person known
# only by these is anonymous.
DEVICE_TYPES = frozenset({"anonymous_id", "device_id", "advertising_id"})

# Values broken SDKs and forms send instead of an id (Segment's and PostHog's block lists).
_JUNK = frozenset(
    {
        "",
        "-1",
        "0",
        "null",
        "none",
        "nil",
        "nan",
        "undefined",
        "anonymous",
        "guest",
        "unknown",
        "n/a",
        "na",
        "id",
        "distinctid",
        "distinct_id",
        "not_authenticated",
        "email",
        "true",
        "false",
        "[object object]",
        "00000000-0000-0000-0000-000000000000",
        # Android's emulator and many cheap devices report this ANDROID_ID.
        "9774d56d682e549c",
    }
)
_ONLY_ZEROS_AND_DASHES = re.compile(r"^[0-]*$")
_TEST_EMAIL = re.compile(
    r"^(test|testing|tester|example|foo|bar|asdf|no-?reply|no-?email|none|null|x+)"
    r"@(test|example|email|mail|domain|foo|bar|none|null|x+)\.(com|org|net|de|test)$"
)
_MISSING = object()
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")


@dataclass(frozen=True)
class BlockList:
    """What is refused as an identifier: exact values (case-insensitive) and patterns."""

    values: frozenset[str] = _JUNK
    patterns: tuple[re.Pattern[str], ...] = (_ONLY_ZEROS_AND_DASHES, _TEST_EMAIL)

    def blocks(self, value: str) -> bool:
        folded = value.strip().lower()
        return folded in self.values or any(p.search(folded) for p in self.patterns)

    def extended(self, values: Iterable[str] = (), patterns: Iterable[str] = ()) -> BlockList:
        return BlockList(
            self.values | {v.strip().lower() for v in values},
            self.patterns + tuple(re.compile(p, re.IGNORECASE) for p in patterns),
        )


class Identifier(NamedTuple):
    """``(type, value)``; a tuple, because millions are made and hashed."""

    type: str
    value: str

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


def parse_key(key: str) -> Identifier:
    """``email:anna@example.com``, ``user_id:u-1`` or ``person:17`` → an Identifier; a key
    that is not of that form is a :class:`~touchpoints.errors.BadRequest` saying how to write
    one."""
    id_type, sep, value = key.partition(":")
    if not sep or not id_type.strip() or not value.strip():
        raise BadRequest(
            f"{key!r} is not an identifier: write TYPE:VALUE, e.g. email:anna@example.com, "
            "user_id:u-1001 or person:17"
        )
    return Identifier(id_type.strip(), value.strip())


@lru_cache(maxsize=65536)
def normalise_phone(value: str, region: str = "DE") -> str | None:
    """E.164 (``+491712345678``), or None when it cannot be a phone number."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if len(str(number.national_number)) < 6 or not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise(kind: Normalisation, value: Any, region: str = "DE") -> str | None:
    """``value`` in the normal form of ``kind``, or None when it is not a usable identifier."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not text:
        return None
    if kind == "exact":
        return text
    if kind == "lower":
        return text.lower()
    if kind == "email":
        lowered = text.lower()
        return lowered if _EMAIL.match(lowered) else None
    return normalise_phone(text, region)


@dataclass
class IdentifierExtractor:
    """Finds every identifier in a Segment message, normalised, junk refused."""

    types: tuple[IdentifierType, ...] = DEFAULT_TYPES
    block_list: BlockList = field(default_factory=BlockList)
    phone_region: str = "DE"

    def __post_init__(self) -> None:
        names = [t.name for t in self.types]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"identifier types named twice: {', '.join(duplicates)}")
        self.by_name = {t.name: t for t in self.types}
        # Paths grouped by their parent object ("context.traits" → email, phone, …), so each
        # parent is looked up once per event: this runs for every stored event.
        groups: dict[tuple[str, ...], list[tuple[str, IdentifierType, int]]] = {}
        rank = 0  # types in order, each type's paths in order: the tie-break within a priority
        for id_type in self.types:
            for path in id_type.paths:
                *parent, leaf = path.split(".")
                groups.setdefault(tuple(parent), []).append((leaf, id_type, rank))
                rank += 1
        self._groups = list(groups.items())
        # The same ids come back event after event: their normal form is remembered.
        self._cache: dict[tuple[str, Any], Any] = {}

    def fingerprint(self) -> str:
        """What decides which identifiers an event has, and in which order, as a short hash:
        the types (names, paths, normal forms, priorities; not the limits, which decide
        merges, not identifiers), the block list, the phone region, the phone numbers'
        metadata and :data:`EXTRACTION_VERSION`. Equal fingerprints find equal identifiers in
        the same events, so a rebuild may reuse the ones stored."""
        rules = {
            "version": EXTRACTION_VERSION,
            "types": [[t.name, list(t.paths), t.normalise, t.priority] for t in self.types],
            "block_values": sorted(self.block_list.values),
            "block_patterns": [[p.pattern, p.flags] for p in self.block_list.patterns],
            "phone_region": self.phone_region,
            "phonenumbers": phonenumbers.__version__,
        }
        return hashlib.sha256(orjson.dumps(rules)).hexdigest()[:32]

    def _clean(self, kind: Normalisation, value: Any) -> str | None:
        text = normalise(kind, value, self.phone_region)
        return None if text is None or self.block_list.blocks(text) else text

    def extract(self, message: Mapping[str, Any]) -> list[Identifier]:
        """Identifiers of ``message`` in priority order, each once."""
        found: dict[Identifier, tuple[int, int, int]] = {}
        cache = self._cache
        for parent, leaves in self._groups:
            node: Any = message
            for key in parent:
                node = node.get(key) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                continue
            for leaf, id_type, rank in leaves:
                value = node.get(leaf)
                if value is None or isinstance(value, dict | list | bool | float):
                    continue
                cached = (id_type.normalise, value)
                text = cache.get(cached, _MISSING)
                if text is _MISSING:
                    text = self._clean(id_type.normalise, value)
                    if len(cache) > 500_000:
                        cache.clear()
                    cache[cached] = text
                if text is None:
                    continue
                identifier = Identifier(id_type.name, text)
                if identifier not in found:
                    found[identifier] = (id_type.priority, rank, len(found))
        if len(found) < 2:
            return list(found)
        return sorted(found, key=found.__getitem__)


def build_extractor(
    extra_types: Iterable[IdentifierType] = (),
    block_values: Iterable[str] = (),
    block_patterns: Iterable[str] = (),
    phone_region: str = "DE",
) -> IdentifierExtractor:
    """The built-in types with ``extra_types`` added (or replacing one of the same name)."""
    types = {t.name: t for t in DEFAULT_TYPES}
    for id_type in extra_types:
        types[id_type.name] = id_type
    ordered = tuple(sorted(types.values(), key=lambda t: t.priority))
    return IdentifierExtractor(
        ordered, BlockList().extended(block_values, block_patterns), phone_region
    )
