"""Dealers' customer records: how a dealer's DMS (dealer management system) knows a customer.

A dealer never sees the web shop's user id or cookies. At a customer's first test drive or
order there, a salesperson creates a record under the dealer's own customer number
(``DMS-<licence-plate code of the dealer's city>-<number>``, e.g. ``DMS-HH-041377``) and types
in name, birth date and address; a phone number only sometimes (in whatever format, now and
then with two digits swapped), an e-mail address rarely, now and then a misspelt last name or
an empty field. The customer's later events at that dealer come under the same number.

Most records share no identifier with the rest of the person's events: deterministic
stitching keeps them apart, and they are what probabilistic matching (name, birth date,
address) is for. The ground truth gives each number, and a mistyped phone number, to its
person.

A record's choices draw from their own seeded ``random.Random`` (per person and dealer), so
the rest of the person's journey is the same as without them. Each dealer hands out
increasing numbers in stream order, with gaps for customers who are not simulated.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from touchpoints.demo.model import DealerRecord, Person
from touchpoints.demo.names import PLATE_CODES
from touchpoints.demo.slips import _digit_slip, _phone_style, _typo

PHONE_SHARE = 0.30  # records with a phone number
PHONE_SLIP_SHARE = 0.05  # of those, typed with two digits swapped
EMAIL_SHARE = 0.10  # records with an e-mail address
NAME_TYPO_SHARE = 0.04  # records with a misspelt last name
GAP_SHARE = 0.05  # records without a birth date or without a postcode


class DealerBook:
    """Every dealer's customer records: the numbers handed out so far, per dealer."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._last: dict[str, int] = {}

    def record(self, p: Person, dealer: str) -> DealerRecord:
        """``p``'s record at ``dealer``: the one made at their first visit, else a new one."""
        known = p.dealer_records.get(dealer)
        if known is not None:
            return known
        rng = random.Random(f"{self.seed}-{p.person_id}-{dealer}-dms")
        last = self._last.get(dealer)
        if last is None:  # a dealer that has been in business for a while
            last = random.Random(f"{self.seed}-{dealer}-dms").randint(10_000, 60_000)
        self._last[dealer] = number = last + rng.randint(1, 40)
        code = PLATE_CODES.get(dealer) or re.sub(r"\W", "", dealer)[:3].upper()
        record = DealerRecord(dealer, f"DMS-{code}-{number:06d}", _typed_traits(p, rng))
        p.dealer_records[dealer] = record
        return record


def _typed_traits(p: Person, rng: random.Random) -> dict[str, str]:
    traits = {
        "first_name": p.first_name,
        "last_name": _typo(p.last_name, rng) if rng.random() < NAME_TYPO_SHARE else p.last_name,
        "birthday": p.birth_date.isoformat(),
        "postal_code": p.postal_code,
        "city": p.city,
    }
    if rng.random() < GAP_SHARE:
        del traits[rng.choice(("birthday", "postal_code"))]
    if rng.random() < PHONE_SHARE:
        phone = _phone_style(p.phone, rng)
        traits["phone"] = _digit_slip(phone, rng) if rng.random() < PHONE_SLIP_SHARE else phone
    if rng.random() < EMAIL_SHARE:
        traits["email"] = p.email
    return traits


def _national(phone: str) -> str:
    return re.sub(r"\D", "", phone)[-10:]


def dealer_identifiers(p: Person) -> Iterator[tuple[str, str]]:
    """The ground truth's (type, value) pairs of ``p``'s dealer records: each customer number
    (sent as the anonymous id) and each phone number typed with a slip."""
    for record in p.dealer_records.values():
        yield "anonymous_id", record.number
        phone = record.traits.get("phone")
        if phone and _national(phone) != _national(p.phone):
            yield "phone", phone
