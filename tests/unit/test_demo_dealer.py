"""Dealer records in the demo: a dealer's DMS knows a customer by the dealer's own customer
number and what a salesperson typed in (name, birth date, address; a phone number sometimes,
an e-mail address rarely, now and then a slip), never by the web shop's user id. The ground
truth owns the numbers; most records share no identifier with the rest of their person, so
deterministic stitching keeps them apart (probabilistic matching's pool).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.demo import DemoConfig, Simulator
from touchpoints.demo.catalogue import AGE_GROUPS
from touchpoints.demo.model import DealerRecord, Person
from touchpoints.demo.names import PLATE_CODES

CONFIG = DemoConfig(people=1000, seed=7)
NUMBER = re.compile(r"^DMS-([A-Z]{1,3})-(\d{6})$")
TRAITS = {"first_name", "last_name", "birthday", "postal_code", "city"}


@dataclass
class Demo:
    sim: Simulator
    events: list[dict[str, Any]]
    people: dict[str, Person]
    owners: dict[tuple[str, str], set[str]]  # the ground truth: (type, value) -> person ids
    dealer_events: dict[str, list[dict[str, Any]]]  # each person's store events, in order
    records: list[tuple[Person, DealerRecord]]


@pytest.fixture(scope="module")
def demo() -> Demo:
    sim = Simulator(CONFIG)
    events = list(sim.events())
    owners: dict[tuple[str, str], set[str]] = defaultdict(set)
    for id_type, value, pid in sim.truth.identifiers:
        owners[(id_type, value)].add(pid)
    dealer_events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["context"].get("channel") == "store":
            (pid,) = owners[("anonymous_id", event["anonymousId"])]
            dealer_events[pid].append(event)
    people = {p.person_id: p for p in sim.people()}
    records = [(p, r) for p in people.values() for r in p.dealer_records.values()]
    return Demo(sim, events, people, dict(owners), dict(dealer_events), records)


def _one_slip(right: str, typed: str) -> bool:
    """``typed`` is ``right`` with two neighbours swapped, one letter doubled or one dropped."""
    if len(typed) == len(right):
        diff = [i for i, (a, b) in enumerate(zip(right, typed, strict=True)) if a != b]
        return len(diff) == 2 and diff[1] == diff[0] + 1 and sorted(right) == sorted(typed)
    longer, shorter = (typed, right) if len(typed) > len(right) else (right, typed)
    return len(longer) == len(shorter) + 1 and any(
        longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer))
    )


def _national(phone: str) -> str:
    return re.sub(r"\D", "", phone)[-10:]


def test_dealer_events_come_from_the_dms_without_a_user_id(demo: Demo) -> None:
    store = [e for es in demo.dealer_events.values() for e in es]
    assert {e["event"] for e in store} == {"Test Drive Completed", "Order Completed"}
    for event in store:
        assert "userId" not in event, event
        assert NUMBER.match(event["anonymousId"]), event["anonymousId"]
        assert event["context"]["library"]["name"] == "touchpoints-dealer-dms"
        traits = event["context"]["traits"]
        assert {"first_name", "last_name", "city"} <= set(traits) <= TRAITS | {"phone", "email"}
        assert len(TRAITS - set(traits)) <= 1  # at most one field left empty
        if "birthday" in traits:
            date.fromisoformat(traits["birthday"])
    # Dealers see people who never signed in and people who did, alike.
    identified = Counter(demo.people[pid].identified for pid in demo.dealer_events)
    assert identified[True] > 0 and identified[False] > 0


def test_one_dealer_number_per_person_and_dealer_reused_for_later_events(
    demo: Demo,
) -> None:
    repeat = 0
    for pid, events in demo.dealer_events.items():
        person = demo.people[pid]
        for event in events:
            record = person.dealer_records[event["properties"]["dealer"]]
            assert event["anonymousId"] == record.number
            assert event["context"]["traits"] == record.traits  # typed once, sent every time
        repeat += len(events) > 1
    assert repeat > 20  # a test drive, then the order, under the same number
    numbers = [r.number for _, r in demo.records]
    assert len(set(numbers)) == len(numbers)
    for person, record in demo.records:
        code, _ = NUMBER.match(record.number).groups()  # type: ignore[union-attr]
        assert code == PLATE_CODES[record.dealer]
        assert record.dealer == person.city  # the dealer in the customer's city
    per_dealer: dict[str, list[int]] = defaultdict(list)
    for _, record in demo.records:  # people are simulated one by one: numbers in that order
        per_dealer[record.dealer].append(int(record.number[-6:]))
    assert all(values == sorted(values) for values in per_dealer.values())


def test_dealer_traits_are_the_persons_as_a_salesperson_typed_them(demo: Demo) -> None:
    counts: Counter[str] = Counter()
    for person, record in demo.records:
        traits = record.traits
        assert traits["first_name"] == person.first_name
        assert traits["city"] == person.city
        assert traits.get("postal_code", person.postal_code) == person.postal_code
        assert traits.get("birthday", person.birth_date.isoformat()) == (
            person.birth_date.isoformat()
        )
        if traits["last_name"] != person.last_name:
            counts["typo"] += 1
            assert _one_slip(person.last_name, traits["last_name"]), traits["last_name"]
        counts["gap"] += len(TRAITS - set(traits))
        if "phone" in traits:
            counts["phone"] += 1
            typed, right = _national(traits["phone"]), _national(person.phone)
            if typed != right:
                counts["phone slip"] += 1
                assert sorted(typed) == sorted(right), traits["phone"]
        if "email" in traits:
            counts["email"] += 1
            assert traits["email"] == person.email
    n = len(demo.records)
    assert 0.1 * CONFIG.people < n < 0.4 * CONFIG.people
    assert 0.2 < counts["phone"] / n < 0.42
    assert 0.04 < counts["email"] / n < 0.18
    assert 0 < counts["typo"] / n < 0.1
    assert 0 < counts["gap"] / n < 0.12


def test_the_truth_owns_the_dealer_numbers_and_mistyped_phones(demo: Demo) -> None:
    for person, record in demo.records:
        assert demo.owners[("anonymous_id", record.number)] == {person.person_id}
        phone = record.traits.get("phone")
        if phone and _national(phone) != _national(person.phone):
            assert demo.owners[("phone", phone)] == {person.person_id}
        if "email" in record.traits:
            assert person.person_id in demo.owners[("email", record.traits["email"])]
    truth_numbers = {v for t, v in demo.owners if t == "anonymous_id" and v.startswith("DMS-")}
    assert truth_numbers == {r.number for _, r in demo.records}


def test_older_people_come_to_dealers_more(demo: Demo) -> None:
    def share(group: str) -> float:
        people = [p for p in demo.people.values() if p.age_group == group]
        return sum(bool(p.dealer_records) for p in people) / len(people)

    assert share(AGE_GROUPS[-1][0]) > 1.3 * share(AGE_GROUPS[0][0])


def test_dealer_records_are_deterministic_per_seed() -> None:
    def dealer_events(seed: int) -> list[dict[str, Any]]:
        sim = Simulator(DemoConfig(people=200, seed=seed))
        return [e for e in sim.events() if e["context"].get("channel") == "store"]

    first = dealer_events(3)
    assert first and first == dealer_events(3)
    assert first != dealer_events(4)
    sim = Simulator(DemoConfig(people=200, seed=3))
    list(sim.events())
    assert [e for e in sim.events() if e["context"].get("channel") == "store"] == first


@pytest.mark.slow
def test_records_without_phone_or_email_stay_apart_in_the_deterministic_map(
    demo: Demo, tmp_path: Path
) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        for start in range(0, len(demo.events), 2000):
            outcome = tp.judge(
                {"batch": demo.events[start : start + 2000]}, "import", source="demo-test"
            )
            assert not outcome.rejected
            tp.write_rows(outcome.rows)
        person = {
            (kind, value): pid
            for kind, value, pid in tp.warehouse.fetchall(
                "SELECT type, value, person FROM identifiers"
            )
        }
    size = Counter(person.values())
    alone = joined = 0
    for p, record in demo.records:
        dms = person[("anonymous_id", record.number)]
        if "phone" not in record.traits and "email" not in record.traits:
            assert size[dms] == 1, record.number  # a person of its own
            alone += 1
        elif record.traits.get("email") and p.identified:
            assert dms == person[("user_id", p.user_id)], record.number
            joined += 1
    assert alone > 0.5 * len(demo.records)
    assert joined > 0
