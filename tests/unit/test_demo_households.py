"""Households in the demo: a few people use a family tablet or shared desktop of an earlier
simulated person and sign in on it with their own account. The ground truth gives the device
to its first user; identity resolution must refuse the link (one user id per person) and keep
the two people apart, each with their own events.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.demo import DemoConfig, Simulator, write_demo_files
from touchpoints.demo.simulator import Person

CONFIG = DemoConfig(people=1000, seed=7)


@dataclass
class Demo:
    sim: Simulator
    events: list[dict[str, Any]]
    persons: dict[str, dict[str, str]]  # truth_persons.csv by person_id
    people: dict[str, Person]
    pairs: list[tuple[Person, Person]]  # (owner, member) of every household


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    sim = Simulator(CONFIG)
    events = list(sim.events())
    files = write_demo_files(sim, tmp_path_factory.mktemp("households"))
    with files.truth_persons.open(encoding="utf-8", newline="") as handle:
        persons = {row["person_id"]: row for row in csv.DictReader(handle)}
    people = {p.person_id: p for p in sim.people()}
    pairs = [(people[p.shared.owner_id], p) for p in people.values() if p.shared is not None]
    return Demo(sim, events, persons, people, pairs)


def _used(demo: Demo) -> list[tuple[Person, Person]]:
    """The households whose member did sign in on the shared device (within the window)."""
    return [(o, m) for o, m in demo.pairs if m.shared and m.shared.device.identified_at]


def test_a_few_percent_live_in_households_of_two_with_one_address(demo: Demo) -> None:
    households = Counter(p["household_id"] for p in demo.persons.values() if p["household_id"])
    assert set(households.values()) == {2}
    assert 0.01 * CONFIG.people < 2 * len(households) < 0.12 * CONFIG.people
    assert len(demo.pairs) == len(households)
    for owner, member in demo.pairs:
        assert owner.person_id < member.person_id  # streaming: the owner came earlier
        assert owner.household_id == member.household_id
        assert demo.persons[owner.person_id]["household_id"] == owner.household_id
        assert (owner.city, owner.postal_code) == (member.city, member.postal_code)
        assert owner.user_id != member.user_id
    assert len(_used(demo)) >= 5


def test_the_shared_device_belongs_to_its_first_user_and_both_sign_in_on_it(
    demo: Demo,
) -> None:
    position = {event["messageId"]: i for i, event in enumerate(demo.events)}
    for owner, member in _used(demo):
        assert member.shared is not None
        anonymous_id = member.shared.device.anonymous_id
        owners = [pid for kind, value, pid in demo.sim.truth.identifiers if value == anonymous_id]
        assert owners == [owner.person_id]  # exactly one owner in the truth
        assert anonymous_id in {d.anonymous_id for d in owner.devices}
        assert anonymous_id not in {d.anonymous_id for d in member.devices}
        on_it = [e for e in demo.events if e.get("anonymousId") == anonymous_id]
        by_owner = [e for e in on_it if e.get("userId") != member.user_id]
        by_member = [e for e in on_it if e.get("userId") == member.user_id]
        assert by_member and len(by_owner) + len(by_member) == len(on_it)
        assert {e.get("userId") for e in by_owner} <= {owner.user_id, None}
        assert any(e.get("userId") == owner.user_id for e in by_owner)  # the owner signed in
        assert by_member[0]["event"] == "Logged In"  # the member never browses it anonymously
        assert any(e["type"] == "identify" for e in by_member)
        first_owner_login = min(e["timestamp"] for e in by_owner if "userId" in e)
        assert first_owner_login < by_member[0]["timestamp"]  # first in time
        assert max(position[e["messageId"]] for e in by_owner) < min(
            position[e["messageId"]] for e in by_member
        )  # and first in the stream


@pytest.mark.slow
def test_demo_household_links_are_refused_and_members_stay_two_persons(
    demo: Demo, tmp_path: Path
) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        for start in range(0, len(demo.events), 2000):
            batch = demo.events[start : start + 2000]
            outcome = tp.judge({"batch": batch}, "import", source="demo-test")
            assert not outcome.rejected
            tp.write_rows(outcome.rows)
        refused = tp.warehouse.fetchall(
            "SELECT r.message_id, r.rule, i.type, i.value FROM identity_rejections r "
            "JOIN identifiers i ON i.sid = r.sid"
        )
        person = {
            (kind, value): pid
            for kind, value, pid in tp.warehouse.fetchall(
                "SELECT type, value, person FROM identifiers"
            )
        }
        event_person = dict(
            tp.warehouse.fetchall(
                "SELECT e.message_id, i.person FROM events e "
                "JOIN event_identifiers ei ON ei.seq = e.seq AND ei.pos = 0 "
                "JOIN identifiers i ON i.sid = ei.sid"
            )
        )
    used = _used(demo)
    shared = {m.shared.device.anonymous_id: m for _, m in used if m.shared}
    assert {rule for _, rule, _, _ in refused} == {"user_id limit 1"}
    assert {(kind, value) for _, _, kind, value in refused} == {("anonymous_id", a) for a in shared}
    member_events_on_shared = {
        e["messageId"]
        for e in demo.events
        if e.get("anonymousId") in shared and e.get("userId") == shared[e["anonymousId"]].user_id
    }
    assert {message_id for message_id, _, _, _ in refused} == member_events_on_shared
    for owner, member in used:
        assert member.shared is not None
        owner_person = person[("user_id", owner.user_id)]
        member_person = person[("user_id", member.user_id)]
        assert owner_person != member_person
        assert person[("anonymous_id", member.shared.device.anonymous_id)] == owner_person
        assert person[("email", member.email.lower())] == member_person
        for event in demo.events:
            if event.get("userId") == member.user_id:
                assert event_person[event["messageId"]] == member_person, event["messageId"]
            elif event.get("userId") == owner.user_id:
                assert event_person[event["messageId"]] == owner_person, event["messageId"]
