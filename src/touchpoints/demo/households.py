"""Households: a few people live with another simulated person and also use that person's
family tablet or shared desktop, signing in on it with their own account.

So the same anonymous id comes with two user ids, which identity resolution's merge rules
must refuse to join (one user id per person). The device belongs to the household member who
used it first: the owner, always an earlier person of the stream (people are simulated one
by one, so the owner's journey is complete when the member's begins), and the member uses it
only after the owner signed in on it, so "first" holds in stream order and in event time.

Household choices and visits draw from their own seeded ``random.Random``, so everyone
else's events, and the member's other events, are the same as without households.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from touchpoints.demo.catalogue import BROWSE_PAGES
from touchpoints.demo.journey import Journey
from touchpoints.demo.model import Device, Person, SharedDevice

JOIN_SHARE = 0.03  # chance that a person lives with an earlier one (partners: 6% in pairs)
LOOK_BACK = 30  # how many earlier people a newcomer's household is looked for among
SHAREABLE = ("tablet_web", "desktop_web")  # a family tablet first, else a shared desktop


def household_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"{seed}-{index}-household")


def shareable_device(owner: Person) -> Device | None:
    """The owner's tablet or desktop that they signed in on, if they have one."""
    for kind in SHAREABLE:
        for device in owner.devices:
            if device.kind == kind and device.identified_at is not None:
                return device
    return None


def join_household(person: Person, earlier: list[Person], rng: random.Random) -> Person | None:
    """Maybe move ``person`` in with one of the last ``LOOK_BACK`` people who has a device to
    share and no household yet; return that owner. The member takes the owner's address."""
    if rng.random() >= JOIN_SHARE:
        return None
    for owner in reversed(earlier[-LOOK_BACK:]):
        if owner.household_id is not None:
            continue
        device = shareable_device(owner)
        if device is None or device.identified_at is None:
            continue
        owner.household_id = person.household_id = f"H{owner.person_id[1:]}"
        person.city, person.postal_code = owner.city, owner.postal_code
        person.shared = SharedDevice(
            owner.person_id, Device(device.kind, device.anonymous_id), device.identified_at
        )
        return owner
    return None


def shared_device_visits(j: Journey, rng: random.Random, end: datetime) -> None:
    """One to three visits on the household's device, each after signing in with the member's
    own account, once both the member has an account and the owner has signed in on it."""
    p, shared = j.p, j.p.shared
    if shared is None or p.identified_at is None:
        return
    journey_rng, j.rng = j.rng, rng
    j.now = datetime.fromisoformat(max(p.identified_at, shared.owner_signed_in_at))
    for _ in range(rng.randint(1, 3)):
        j.now += timedelta(days=rng.expovariate(1 / 12), minutes=rng.randint(0, 600))
        if j.now >= end:
            break
        j.identify(shared.device, "Logged In")
        j.session(shared.device, rng.sample(BROWSE_PAGES, rng.randint(1, 4)), [])
    j.rng = journey_rng
