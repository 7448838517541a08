"""A deterministic simulator of a car maker's customers on every channel, with ground truth.

*Nordwind Motors* sells cars through an online configurator, dealers and a web shop for
accessories, runs a mobile app, connected cars, newsletters, SMS, social media, chat and a
hotline. Each simulated person has an age (and age group) that shapes which channels they
use (younger: app, chat, social; older: e-mail, phone, store), one to three devices, each with
its own anonymous id, and a journey through the six stages (awareness → consideration →
decision → purchase → retention → advocacy) that can stop at any stage; pain points (errors,
abandoned configurations, complaints) make stopping likelier. People browse anonymously and
become identified when they sign up or log in on a device. A few live with an earlier person
and sign in on that person's family tablet or desktop too (households.py). Dealers never see
the web shop's user id: their DMS knows a customer by the dealer's own customer number and the
name, birth date and address a salesperson typed in (dealers.py). Customers buy again in the
web shop at a rate of their own until they stop or lapse (shop.py).

Everything is derived from the seed (``random.Random`` per person, no clock, no uuid4), so the
same configuration gives the same events byte for byte. The ground truth records which
identifiers belong to which person (each to exactly one: a shared device to the household
member who used it first), how far each got, and when a customer lapsed with the monthly
churn hazards that drove it (life.py), for measuring identity resolution, journey analytics
and churn risk.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from touchpoints.demo.catalogue import (
    ADVANCE,
    AGE_GROUPS,
    CHANNEL_AFFINITY,
    MODELS,
    STAGES,
    _ascii,
)
from touchpoints.demo.dealers import DealerBook, dealer_identifiers
from touchpoints.demo.households import household_rng, join_household, shared_device_visits
from touchpoints.demo.journey import Journey
from touchpoints.demo.life import customer_life
from touchpoints.demo.model import (
    DemoConfig,
    Device,
    GroundTruth,
    Person,
    _birth_date,
    _hex,
    _iso,
    _uuid,
)
from touchpoints.demo.names import CITIES, FIRST_NAMES, LAST_NAMES, MAIL_DOMAINS
from touchpoints.demo.shop import shop_orders
from touchpoints.demo.stages import STEPS, newsletters

__all__ = [
    "AGE_GROUPS",
    "MODELS",
    "STAGES",
    "DemoConfig",
    "Device",
    "GroundTruth",
    "Person",
    "Simulator",
]


class Simulator:
    def __init__(self, config: DemoConfig | None = None) -> None:
        self.config = config or DemoConfig()
        self.truth = GroundTruth()
        self._people: list[Person] = []
        self._emails: set[str] = set()
        self.crm: list[dict[str, str]] | None = None
        self.dealers = DealerBook(self.config.seed)

    def events(self) -> Iterator[dict[str, Any]]:
        """Every person's events, person by person, each person's in time order."""
        self.truth = GroundTruth()
        self._people = []
        self._emails = set()
        self.crm = None  # the CRM export, made once (files.py)
        self.dealers = DealerBook(self.config.seed)  # the dealers' DMS records (dealers.py)
        for index in range(self.config.people):
            rng = random.Random(f"{self.config.seed}-{index}")
            person = self._person(index, rng)
            household = household_rng(self.config.seed, index)
            owner = join_household(person, self._people, household)
            if owner is not None:  # the owner's truth row was written already
                self.truth.persons[int(owner.person_id[1:])]["household_id"] = owner.household_id
            journey = self._journey(person, rng, household)
            self._people.append(person)
            self._record_truth(person)
            yield from journey.events

    # -- people ------------------------------------------------------------------------------
    def _person(self, index: int, rng: random.Random) -> Person:
        seed = self.config.seed
        group, low, high = rng.choices(AGE_GROUPS, weights=(11, 19, 18, 18, 18, 16))[0]
        age = rng.randint(low, high)
        born = _birth_date(self.config.start.date(), age, rng)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = rng.choice(MAIL_DOMAINS)
        style = rng.random()
        local = (
            f"{first}.{last}"
            if style < 0.6
            else f"{first[0]}{last}"
            if style < 0.85
            else f"{first}{rng.randint(1, 99)}"
        )
        email = _ascii(f"{local}@{domain}".lower())
        if rng.random() < 0.15 or email in self._emails:  # namesakes: addresses must differ
            email = email.replace("@", f".{index}@")
        self._emails.add(email)
        phone = f"+49 1{rng.choice('567')}{rng.randint(0, 9)} {rng.randint(1000000, 9999999)}"
        city, postcode = rng.choice(CITIES)
        affinity = {ch: rng.random() < pr for ch, pr in CHANNEL_AFFINITY[group].items()}
        kinds = ["desktop_web"] if age > 40 or rng.random() < 0.5 else ["phone_web"]
        if affinity["app"]:
            kinds.append("phone_app")
        if rng.random() < 0.35:
            kinds.append(rng.choice(("phone_web", "tablet_web", "desktop_web")))
        devices = []
        for d, kind in enumerate(dict.fromkeys(kinds)):
            device = Device(kind, _uuid(seed, "anon", index, d))
            if kind == "phone_app":
                device.os = rng.choice(("iOS", "Android"))
                device.device_id = _hex(seed, "dev", index, d, length=16).upper()
                device.advertising_id = _uuid(seed, "ad", index, d).upper()
            devices.append(device)
        return Person(
            person_id=f"P{index:06d}",
            age=age,
            age_group=group,
            birth_date=born,
            first_name=first,
            last_name=last,
            email=email,
            phone=phone,
            city=city,
            postal_code=postcode,
            user_id=f"u_{_hex(seed, 'user', index, length=12)}",
            devices=devices,
            affinity=affinity,
        )

    # -- journeys ----------------------------------------------------------------------------
    def _journey(self, p: Person, rng: random.Random, household: random.Random) -> Journey:
        cfg = self.config
        start = cfg.start + timedelta(
            days=rng.uniform(0, cfg.days * 0.55), hours=rng.uniform(7, 22)
        )
        j = Journey(self, p, rng, start)
        end = cfg.start + timedelta(days=cfg.days)
        model = rng.choice(MODELS)
        for stage in STAGES:
            if j.now >= end:
                break
            p.stage_times[stage] = _iso(j.now)
            pain = STEPS[stage](j, model)
            p.pain_points += pain
            if stage == "advocacy":
                break
            base, hurt = ADVANCE[stage]
            if rng.random() >= (hurt if pain else base):
                p.churned = stage in ("purchase", "retention") or rng.random() < 0.5
                if not p.churned and p.identified and p.affinity["email"]:
                    j.wait_days(20)
                    if j.now < end:
                        j.service("email", "Email Opened", {"campaign_name": "Newsletter"})
                break
            j.wait_days(
                {
                    "awareness": 6,
                    "consideration": 10,
                    "decision": 14,
                    "purchase": 30,
                    "retention": 40,
                }[stage]
            )
        customer_life(j, end)
        newsletters(j, end)
        shared_device_visits(j, household, end)
        shop_orders(j, end)
        j.events.sort(key=lambda e: e["timestamp"])  # later steps interleave with the journey
        j.events = [e for e in j.events if e["timestamp"] < _iso(end)]
        return j

    # -- ground truth ------------------------------------------------------------------------
    def _record_truth(self, p: Person) -> None:
        """Every identifier has exactly one owner (the scoring is pairwise over identifiers):
        a household's shared tablet or desktop is in its owner's ``devices`` only, the member
        who used it first; the member's ``shared`` use of it is not recorded for the member."""
        t = self.truth
        for d in p.devices:
            t.add("anonymous_id", d.anonymous_id, p.person_id)
            t.add("device_id", d.device_id, p.person_id)
            t.add("advertising_id", d.advertising_id, p.person_id)
        for social_id in p.social_ids:
            t.add("anonymous_id", social_id, p.person_id)
        for contact in p.contact_ids:
            t.add("anonymous_id", contact, p.person_id)
        for id_type, value in dealer_identifiers(p):
            t.add(id_type, value, p.person_id)
        t.add("user_id", p.user_id, p.person_id)
        t.add("email", p.email, p.person_id)
        t.add("phone", p.phone, p.person_id)
        t.add("wallet", p.wallet, p.person_id)
        t.add("vehicle_id", p.vehicle_id, p.person_id)
        t.add("device_id", p.vehicle_id, p.person_id)  # the connected car reports its VIN
        if p.social_handle:
            t.add("social_handle", p.social_handle.lower(), p.person_id)
        t.add("customer_number", p.customer_number, p.person_id)
        reached = [s for s in STAGES if s in p.stage_times]
        t.persons.append(
            {
                "person_id": p.person_id,
                "age": p.age,
                "age_group": p.age_group,
                "birth_date": p.birth_date.isoformat(),
                "city": p.city,
                "highest_stage": reached[-1] if reached else "",
                **{f"{s}_at": p.stage_times.get(s, "") for s in STAGES},
                "churned": p.churned,
                "identified": p.identified,
                "devices": len(p.devices),
                "pain_points": p.pain_points,
                "preferred_channels": " ".join(ch for ch, on in p.affinity.items() if on),
                "household_id": p.household_id or "",
                "lapsed_at": p.lapsed_at or "",
                "churn_hazards": " ".join(f"{m}={h}" for m, h in p.churn_hazards),
            }
        )

    def people(self) -> list[Person]:
        return self._people
