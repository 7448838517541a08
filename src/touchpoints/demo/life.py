"""A customer's life after the journey: month by month with the car until they lapse, with
a churn hazard driven by pain points and engagement, recorded in the ground truth so churn
risk can be checked against the truth.

Every customer who bought and did not stop in the purchase or retention stage lives on:
each month they drive (trips from the connected car), some use the app, and bad experiences
happen (a complaint, a low rating after it, two support calls within days, a chatbot that
hands over). At the start of each month the simulator draws whether the customer lapses
during it, with the month's hazard::

    logit(h) = -3.4 + 2.2 * (1 - engagement) + 1.2 * (pain signals in the last 90 days, at most 3)

so an engaged customer without trouble lapses about 3 % a month and a disengaged one after
two bad experiences about 60 %. A lapsed customer does nothing more, and the company's
newsletters stop reaching them (the customer account and its mailing list end with the
relationship). A customer who stopped in the purchase or retention stage lapsed there.

The truth (``truth_persons.csv``): ``lapsed_at`` (empty: still a customer at the end) and
``churn_hazards``: each month's start and hazard, ``2026-07-01=0.0412 …``. Everything is drawn
from a generator of the person's own (``{seed}-life-{person}``), so the journey before, and
the newsletters of a customer who does not lapse, stay exactly as they were.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from touchpoints.demo.catalogue import SITE
from touchpoints.demo.conversations import converse
from touchpoints.demo.journey import Journey
from touchpoints.demo.model import _iso

MONTH = timedelta(days=30)
BASE_LOGIT = -3.4
DISENGAGED = 2.2
PER_PAIN = 1.2
PAIN_MEMORY = timedelta(days=90)


def hazard(engagement: float, recent_pains: int) -> float:
    """The chance a customer lapses during a month (see the module's docstring)."""
    logit = BASE_LOGIT + DISENGAGED * (1 - engagement) + PER_PAIN * min(recent_pains, 3)
    return 1 / (1 + math.exp(-logit))


def customer_life(j: Journey, end: datetime) -> None:
    """Months of a customer's life from now until they lapse or the simulation ends."""
    p = j.p
    if p.purchased_model is None:
        return
    if p.churned:
        p.lapsed_at = _iso(j.now)
        return
    own = random.Random(f"{j.sim.config.seed}-life-{p.person_id}")
    journey_rng, j.rng = j.rng, own  # visits draw from it too: the journey's stays as it was
    try:
        _live(j, own, end)
    finally:
        j.rng = journey_rng


def _live(j: Journey, own: random.Random, end: datetime) -> None:
    p = j.p
    engagement = min(1.0, max(0.05, 0.25 + 0.3 * p.affinity["app"] + own.uniform(-0.2, 0.5)))
    pains: list[datetime] = []
    month = j.now
    while month < end:
        recent = sum(1 for when in pains if month - when <= PAIN_MEMORY)
        chance = hazard(engagement, recent)
        p.churn_hazards.append((month.date().isoformat(), round(chance, 4)))
        lapses = own.random() < chance
        stop = month + own.uniform(0, 1) * MONTH if lapses else month + MONTH
        _month(j, own, engagement, month, min(stop, end), pains)
        if lapses:
            p.lapsed_at = _iso(min(stop, end))
            break
        month += MONTH
    j.now = month


def _month(
    j: Journey,
    own: random.Random,
    engagement: float,
    start: datetime,
    stop: datetime,
    pains: list[datetime],
) -> None:
    """A month's activity from ``start`` until ``stop`` (a lapse cuts it short)."""
    p = j.p
    span = (stop - start).total_seconds()
    if span <= 0:
        return

    def at(share: float) -> None:
        j.now = start + timedelta(seconds=span * share)

    car = _car(j)
    for _ in range(own.randint(0, int(2 + 10 * engagement))):
        at(own.random())
        km = round(own.uniform(3, 180), 1)
        j.emit({**car, "event": "Trip Completed", "properties": {"km": km, "vin": p.vehicle_id}})
    if p.affinity["app"] and own.random() < engagement:
        app = j.device("phone_app")
        if app.kind == "phone_app":
            at(own.random())
            j.session(app, ["Fahrzeug"], [("Remote Climate Started", {"vin": p.vehicle_id})])
    _voice_question(j, start, stop)
    roll = own.random()
    if roll < 0.05:
        at(own.random())
        channel = own.choice(("phone", "chat")) if p.affinity["chat"] else "phone"
        j.service(channel, "Complaint Filed", {"topic": "Software", "team": "complaints"})
        pains.append(j.now)
        if own.random() < 0.4:
            j.now += timedelta(hours=own.uniform(2, 48))
            _review(j, own.choice((1, 2)))
    elif roll < 0.10:
        at(own.random() * 0.8)
        for reason in ("Ladefehler", "Rückruf fehlt"):
            j.service("phone", "Call Completed", {"reason": reason, "team": "support"})
            j.now += timedelta(days=own.uniform(1, 6))
        pains.append(j.now)
    elif roll < 0.13 and p.affinity["chat"]:
        # A charging problem the assistant cannot place: the customer asks for a person.
        at(own.random())
        start = j.now
        j.advance(own.uniform(1, 6))
        handed = converse(
            j, "chat", ["out_of_scope", "human"], start, j.now, team="support", until=stop
        )
        pains.append(handed or j.now)
    j.now = stop


def _voice_question(j: Journey, start: datetime, stop: datetime) -> None:
    """Now and then a customer asks the service assistant by voice: one who talks to their
    car, or one who calls the hotline, where the assistant answers first (a generator of its
    own per month: the rest of the month is drawn as before)."""
    p = j.p
    chance = 0.3 if p.affinity["voice"] else 0.06 if p.affinity["phone"] else 0.0
    if not chance:
        return
    own = random.Random(f"{j.sim.config.seed}-voice-{p.person_id}-{_iso(start)}")
    if own.random() >= chance:
        return
    begin = start + (stop - start) * own.random()
    end = begin + timedelta(minutes=own.uniform(1, 3))
    if end > stop:
        return
    intent = own.choice(("service_appointment", "opening_hours", "nearest_dealer", "order_status"))
    if own.random() < 0.2:
        converse(j, "voice", [intent, "human"], begin, end, team="service", until=stop)
    else:
        converse(j, "voice", [intent, "thanks"], begin, end)


def _car(j: Journey) -> dict[str, Any]:
    p = j.p
    return {
        "type": "track",
        "userId": p.user_id,
        "context": {
            "device": {
                "id": p.vehicle_id,
                "type": "car",
                "manufacturer": "Nordwind",
                "model": p.purchased_model,
            },
            "library": {"name": "nordwind-connected-car", "version": "2.3"},
        },
    }


def _review(j: Journey, rating: int) -> None:
    j.emit(
        {
            "type": "track",
            "event": "Review Submitted",
            "userId": j.p.user_id,
            "properties": {"rating": rating, "model": j.p.purchased_model},
            "context": {
                "library": {"name": "analytics.js", "version": "next-1.74.0"},
                "page": {"path": "/bewertung", "url": SITE + "/bewertung"},
                "locale": "de-DE",
            },
        }
    )
