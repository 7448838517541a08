"""The identity graph's decisions, case by case, computed by hand."""

from __future__ import annotations

from touchpoints.identity.graph import IdentityGraph, Merge, Rejection
from touchpoints.identity.identifiers import Identifier

LIMITS = {"user_id": 1, "email": 5, "phone": 5}


def ids(*pairs: str) -> list[Identifier]:
    return [Identifier(*pair.split(":", 1)) for pair in pairs]


def test_identifiers_seen_together_are_one_person_named_after_the_first_seen() -> None:
    graph = IdentityGraph(LIMITS)
    laptop = graph.observe(1, ids("anonymous_id:laptop"))
    phone = graph.observe(2, ids("anonymous_id:phone"))
    assert (laptop.person, phone.person) == (1, 2)  # two strangers
    signup = graph.observe(3, ids("user_id:u1", "email:anna@example.com", "anonymous_id:laptop"))
    # u1 is sid 3, e-mail 4; the laptop (sid 1) joins them: the person is 1, the smallest.
    assert signup.person == 1
    assert signup.new_sids == [3, 4]
    login = graph.observe(4, ids("user_id:u1", "anonymous_id:phone"))
    assert login.person == 1
    assert login.merges == [Merge(seq=4, kept=1, absorbed=2, sid=2)]
    assert graph.persons() == {1: 1, 2: 1, 3: 1, 4: 1}


def test_a_new_identifier_joining_a_known_person_is_a_link_not_a_merge() -> None:
    graph = IdentityGraph(LIMITS)
    graph.observe(1, ids("user_id:u1"))
    seen = graph.observe(2, ids("user_id:u1", "anonymous_id:new-device"))
    assert seen.merges == []
    assert seen.person == 1
    first = graph.observe(3, ids("user_id:u2", "anonymous_id:other"))  # both new
    assert first.merges == [] and first.person == 3


def test_a_shared_tablet_does_not_join_two_people_with_user_ids() -> None:
    graph = IdentityGraph(LIMITS)
    graph.observe(1, ids("user_id:mother", "anonymous_id:tablet"))  # sids 1, 2
    graph.observe(2, ids("user_id:son", "anonymous_id:phone"))  # sids 3, 4
    son_on_tablet = graph.observe(3, ids("user_id:son", "anonymous_id:tablet"))
    assert son_on_tablet.person == 3  # the event stays with its anchor: the son
    assert son_on_tablet.merges == []
    assert son_on_tablet.rejections == [
        Rejection(seq=3, person=3, other=1, sid=2, rule="user_id limit 1")
    ]
    assert graph.find(1) != graph.find(3)
    assert graph.find(2) == 1  # the tablet stays with the person who first claimed it


def test_an_anonymous_event_may_bridge_two_people_only_within_the_limits() -> None:
    graph = IdentityGraph(LIMITS)
    graph.observe(1, ids("email:a@x.de", "anonymous_id:d1"))  # sids 1, 2
    graph.observe(2, ids("email:b@x.de", "anonymous_id:d2"))  # sids 3, 4
    # Two e-mails are within the limit of five: these two become one person.
    bridge = graph.observe(3, ids("email:a@x.de", "anonymous_id:d2"))
    assert bridge.merges == [Merge(seq=3, kept=1, absorbed=3, sid=4)]
    assert len(set(graph.persons().values())) == 1


def test_the_limit_counts_identifiers_of_the_whole_person() -> None:
    graph = IdentityGraph({"email": 2})
    graph.observe(1, ids("anonymous_id:d", "email:1@x.de"))
    graph.observe(2, ids("anonymous_id:d", "email:2@x.de"))
    third = graph.observe(3, ids("anonymous_id:d", "email:3@x.de"))
    assert [r.rule for r in third.rejections] == ["email limit 2"]
    assert graph.find(graph.sids[("email", "3@x.de")]) != graph.find(1)


def test_a_detached_identifier_is_never_linked_again_and_replay_splits_the_person() -> None:
    graph = IdentityGraph(LIMITS)
    events = [
        (1, ids("user_id:u1", "anonymous_id:shared")),  # 1, 2
        (2, ids("anonymous_id:shared", "email:b@x.de")),  # 3: joins u1 through the device
        (3, ids("email:b@x.de", "phone:+4917000000")),  # 4
    ]
    for seq, identifiers in events:
        graph.observe(seq, identifiers)
    assert set(graph.persons().values()) == {1}

    graph.detach(2)  # the operator: "this device is shared, unlink it"
    graph.reset(graph.parent)
    rejections = []
    for seq, identifiers in events:
        rejections += graph.observe(seq, identifiers).rejections
    assert graph.persons() == {1: 1, 2: 2, 3: 3, 4: 3}
    assert [(r.seq, r.sid, r.rule) for r in rejections] == [(1, 2, "detached"), (2, 3, "detached")]
    later = graph.observe(4, ids("user_id:u1", "anonymous_id:shared"))
    assert later.person == 1 and graph.find(2) == 2


def test_a_merged_away_person_id_still_finds_its_person() -> None:
    graph = IdentityGraph(LIMITS)
    graph.observe(1, ids("anonymous_id:a"))
    graph.observe(2, ids("anonymous_id:b"))
    graph.observe(3, ids("user_id:u", "anonymous_id:b", "anonymous_id:a"))
    assert graph.find(2) == 1  # person 2 was absorbed: its id resolves to person 1


def test_an_event_without_identifiers_has_no_person() -> None:
    graph = IdentityGraph(LIMITS)
    assert graph.observe(1, []).person is None
