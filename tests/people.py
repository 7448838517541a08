"""Synthetic customers for identity tests: web shop accounts with full traits, and the records
a car dealer's system keeps of some of them (own number, name maybe misspelt, German dates,
address; no e-mail, no phone), so that only probabilistic matching can join the two."""

from __future__ import annotations

import random
from typing import Any

FIRST = ["Anna", "Ida", "Jan", "Lea", "Max", "Tom", "Eva", "Ben", "Mia", "Paul", "Lena", "Finn"]
LAST = ["Berg", "Lange", "Wolf", "Kraus", "Vogel", "Roth", "Brandt", "Haas", "Jung", "Franke"]
TOWNS = [("20095", "Hamburg"), ("80331", "München"), ("50667", "Köln"), ("04109", "Leipzig")]


def customers(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    people = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        postcode, city = rng.choice(TOWNS)
        born = f"{rng.randint(1960, 1979)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        people.append(
            {
                "i": i,
                "first_name": first,
                "last_name": last,
                "email": f"{first}.{last}.{i}@example.de".lower(),
                "phone": f"+49 171 {1000000 + i}",
                "birthday": born,
                "postal_code": postcode,
                "city": city,
            }
        )
    return people


def web_identify(p: dict[str, Any]) -> dict[str, Any]:
    traits = {k: p[k] for k in ("first_name", "last_name", "email", "phone", "birthday")}
    traits |= {"postal_code": p["postal_code"], "city": p["city"]}
    return {
        "type": "identify",
        "userId": f"u{p['i']}",
        "traits": traits,
        "messageId": f"web-{p['i']}",
        "timestamp": "2026-05-01T10:00:00Z",
    }


def dealer_record(p: dict[str, Any], typo: bool) -> dict[str, Any]:
    """What a dealer's system knows: its own number, the name (maybe misspelt), birth date in
    German notation, address; no e-mail, no phone."""
    last = p["last_name"]
    if typo:
        last = last[0] + last[2] + last[1] + last[3:]
    day = p["birthday"]
    return {
        "type": "track",
        "event": "Test Drive Completed",
        "anonymousId": f"DMS-{p['i']}",
        "context": {
            "channel": "store",
            "traits": {
                "firstName": p["first_name"],
                "lastName": last,
                "birthday": f"{day[8:10]}.{day[5:7]}.{day[:4]}",
                "address": {"postalCode": p["postal_code"], "city": p["city"]},
            },
        },
        "messageId": f"dms-{p['i']}",
        "timestamp": "2026-06-01T10:00:00Z",
    }
