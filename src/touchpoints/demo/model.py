"""The simulated world's objects: the configuration, a person, their devices, the ground
truth, and the seeded ids and times everything is derived from (no clock, no uuid4)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any


@dataclass(frozen=True)
class DemoConfig:
    people: int = 10_000
    seed: int = 42
    # The tests' fixed window (what their hand counts were made on); ``touchpoints demo``
    # takes a year ending today instead (ending()).
    start: datetime = datetime(2026, 3, 1, tzinfo=UTC)
    days: int = 240

    @classmethod
    def ending(cls, day: date, people: int = 10_000, seed: int = 42) -> DemoConfig:
        """A year that ends as ``day`` begins (UTC): the demo's data end today, so what is
        asked about "now" (churn risk, the last 30 days) finds them, with room for churn
        risk's two 90-day windows after the first buyers."""
        start = datetime.combine(day, time(), UTC) - timedelta(days=YEAR)
        return cls(people=people, seed=seed, start=start, days=YEAR)


YEAR = 365  # the days of ``touchpoints demo``'s window


@dataclass
class Device:
    kind: str  # desktop_web, phone_web, tablet_web, phone_app
    anonymous_id: str
    device_id: str | None = None
    advertising_id: str | None = None
    os: str | None = None
    identified: bool = False
    identified_at: str | None = None  # when this device first signed in (ISO time)


@dataclass
class SharedDevice:
    """A household member's use of a tablet or desktop that belongs to another person.

    In the ground truth the device (its anonymous id) belongs to its owner, the household
    member who used it first; ``device`` is this member's own sign-in state on it.
    """

    owner_id: str
    device: Device
    owner_signed_in_at: str  # the member uses it only after the owner signed in on it


@dataclass
class DealerRecord:
    """A customer as a dealer's DMS knows them: the dealer's own customer number and the
    traits a salesperson typed in at the first visit, sent with every event there."""

    dealer: str  # the dealer's city
    number: str  # DMS-<plate code>-<number>
    traits: dict[str, str]


@dataclass
class Person:
    person_id: str
    age: int
    age_group: str
    birth_date: date
    first_name: str
    last_name: str
    email: str
    phone: str
    city: str
    postal_code: str
    user_id: str
    devices: list[Device]
    affinity: dict[str, bool]
    stage_times: dict[str, str] = field(default_factory=dict)
    churned: bool = False
    identified: bool = False
    purchased_model: str | None = None
    pain_points: int = 0
    wallet: str | None = None
    vehicle_id: str | None = None
    social_handle: str | None = None
    social_ids: list[str] = field(default_factory=list)
    customer_number: str | None = None
    identified_at: str | None = None  # when the person first signed up or logged in
    contact_ids: list[str] = field(default_factory=list)  # ids of contacts before sign-up
    dealer_records: dict[str, DealerRecord] = field(default_factory=dict)  # by dealer
    household_id: str | None = None  # shared with the person they live with, if any
    shared: SharedDevice | None = None  # the household device they use (not in ``devices``)
    lapsed_at: str | None = None  # when a customer stopped (life.py); None: still one
    churn_hazards: list[tuple[str, float]] = field(default_factory=list)  # (month, hazard)


@dataclass
class GroundTruth:
    identifiers: list[tuple[str, str, str]] = field(default_factory=list)
    persons: list[dict[str, Any]] = field(default_factory=list)

    def add(self, id_type: str, value: str | None, person_id: str) -> None:
        if value:
            self.identifiers.append((id_type, value, person_id))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def _birth_date(today: date, age: int, rng: random.Random) -> date:
    """A birth date at which someone is exactly ``age`` years old on ``today``."""
    latest = _years_before(today, age)
    earliest = _years_before(today, age + 1) + timedelta(days=1)
    return earliest + timedelta(days=rng.randint(0, (latest - earliest).days))


def _hex(*parts: object, length: int = 32) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:length]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _uuid(*parts: object) -> str:
    h = _hex(*parts)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
