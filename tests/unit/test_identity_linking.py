"""Probabilistic linking on the real DuckDB file: dealer records that share no identifier with
the web shop's customers are linked to the right person, borderline pairs wait for review,
decisions stick, and the merge rules still apply."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_identity_rebuild import send, snapshot

from people import customers, dealer_record, web_identify
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.errors import NotFound
from touchpoints.identity.identifiers import Identifier
from touchpoints.identity.linking import MatchingError, PairDecided
from touchpoints.identity.rebuild import rebuild


def load(tp: Touchpoints, people: int = 300, dealer_every: int = 5) -> list[int]:
    """Web customers, and dealer records of every ``dealer_every``-th of them."""
    crowd = customers(people)
    send(tp, [web_identify(p) for p in crowd])
    visited = [p["i"] for p in crowd if p["i"] % dealer_every == 0]
    send(tp, [dealer_record(crowd[i], typo=i % 3 == 0) for i in visited])
    return visited


def dealer(i: int) -> Identifier:
    return Identifier("anonymous_id", f"DMS-{i}")


def web(i: int) -> Identifier:
    return Identifier("user_id", f"u{i}")


def test_records_take_each_trait_from_its_latest_event_in_any_spelling(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(
            tp,
            [
                {
                    "type": "identify",
                    "userId": "u1",
                    "traits": {"firstName": "Ida", "birthday": "16.03.1963", "city": "Köln"},
                    "timestamp": "2026-05-02T00:00:00Z",
                },
                {  # older by event time, though it arrives later: loses for city
                    "type": "identify",
                    "userId": "u1",
                    "traits": {
                        "last_name": "Lange",
                        "address": {"city": "Bonn", "street": "Hauptstraße 5"},
                    },
                    "timestamp": "2026-05-01T00:00:00Z",
                },
            ],
        )
        [record] = tp.linker.records().to_pylist()
        assert record["record_id"] == "user_id:u1"
        assert (record["first_name"], record["last_name"]) == ("Ida", "Lange")
        assert record["birth_date"] == "1963-03-16"
        assert record["city"] == "Köln"
        assert record["street"] == "Hauptstraße 5"  # the Segment spec's address.street


@pytest.mark.slow
def test_dealer_records_are_linked_to_their_web_customers_with_the_probability(
    tmp_path: Path,
) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        visited = load(tp)
        for i in visited:
            assert tp.identity.lookup(dealer(i)) != tp.identity.lookup(web(i))
        run = tp.linker.run()
        assert run.records == 300 + len(visited)
        linked = [i for i in visited if tp.identity.lookup(dealer(i)) == tp.identity.lookup(web(i))]
        # Every link is right, and nearly every dealer record found its customer (namesakes
        # born on another day are told apart by the birth date and postcode).
        assert len(linked) >= 0.9 * len(visited), (run, len(linked), len(visited))
        assert run.linked == len(linked)
        persons = {tp.identity.lookup(web(p["i"])) for p in customers(300)}
        assert len(persons) == 300  # no two customers were joined
        links = tp.warehouse.fetchall(
            "SELECT source, probability FROM identity_links WHERE NOT removed"
        )
        assert len(links) == run.linked
        assert all(s == "match" and p >= tp.settings.match_threshold for s, p in links)
        log = tp.warehouse.fetchall(
            "SELECT count(*) FROM identity_merges WHERE kind = 'link' AND link_id IS NOT NULL"
        )
        assert log == [(run.linked,)]
        profile = tp.profiles.get(tp.identity.lookup(dealer(visited[0])))
        assert "probabilistic match link" in (profile.merges[0].note or "")
        # A rebuild applies the links again.
        linked_map = snapshot(tp)
        rebuild(tp.identity)
        assert snapshot(tp) == linked_map
        # A second run compares the linked persons as one record each: nothing new to link.
        again = tp.linker.run()
        assert again.records == 300
        assert again.linked == 0


@pytest.mark.slow
def test_reviewers_accept_or_reject_borderline_pairs_and_decisions_stick(
    tmp_path: Path,
) -> None:
    settings = load_settings(tmp_path / "data").model_copy(
        update={"match_threshold": 0.999999, "match_review_from": 0.5}
    )
    with Touchpoints(settings) as tp:
        load(tp)
        run = tp.linker.run()
        assert run.review > 2, run
        page = tp.linker.pairs("review", limit=1000)
        pairs = page.pairs
        assert page.count == run.review == len(pairs)
        assert pairs == sorted(pairs, key=lambda p: -p.probability)
        first, second = pairs[0], pairs[1]
        for side in (first.a, first.b):
            assert side.record is not None and side.record.last_name  # both, to compare
        a = Identifier(first.a.identifier.type, first.a.identifier.value)
        b = Identifier(first.b.identifier.type, first.b.identifier.value)
        decided = tp.linker.decide(first.pair_id, accept=True, note="same birthday, typo")
        assert decided.status == "accepted" and decided.link_id is not None
        assert tp.identity.lookup(a) == tp.identity.lookup(b)
        source = tp.warehouse.fetchall(
            "SELECT source, probability FROM identity_links WHERE link_id = ?",
            [decided.link_id],
        )
        assert source == [("review", first.probability)]
        rejected = tp.linker.decide(second.pair_id, accept=False, note="different people")
        assert rejected.status == "rejected" and rejected.link_id is None
        with pytest.raises(PairDecided, match="decided already: rejected"):
            tp.linker.decide(second.pair_id, accept=True)
        with pytest.raises(NotFound, match="no matched pair"):
            tp.linker.decide(10**9, accept=True)
        # A new run does not propose decided or pending pairs again.
        again = tp.linker.run()
        assert again.review == 0 and again.linked == 0
        assert tp.linker.pairs("review").count == run.review - 2
        assert tp.linker.pairs("rejected").count == 1


@pytest.mark.slow
def test_an_accepted_pair_that_would_join_two_user_ids_is_refused(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        crowd = customers(300)
        send(tp, [web_identify(p) for p in crowd])
        # The same customer signed up twice (two accounts): a likely match the rules refuse.
        twin = {**web_identify(crowd[4]), "userId": "u-second", "messageId": "twin"}
        twin["traits"] = {**twin["traits"], "email": "other@example.de", "phone": None}
        send(tp, [twin])
        run = tp.linker.run()
        assert run.refused == 1, run
        assert tp.identity.lookup(web(4)) != tp.identity.lookup(Identifier("user_id", "u-second"))
        [(status, note)] = tp.warehouse.fetchall(
            "SELECT status, note FROM identity_match_pairs WHERE status = 'refused'"
        )
        assert note == "user_id limit 1"


def test_matching_too_few_persons_says_why(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(tp, [{"type": "identify", "userId": "u1", "traits": {"email": "a@x.de"}}])
        with pytest.raises(MatchingError, match=r"1 person\(s\) have an e-mail, a phone"):
            tp.linker.run()
        assert tp.warehouse.scalar("SELECT count(*) FROM identity_match_pairs") == 0


def test_matching_with_nothing_to_learn_from_says_so_and_changes_nothing(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        people = [
            {
                "type": "identify",
                "userId": f"u{i}",
                "traits": {
                    "first_name": "Ida",
                    "last_name": f"L{i}",
                    "birthday": f"1970-01-{i:02d}",
                },
            }
            for i in range(1, 6)
        ]
        send(tp, people)
        before = snapshot(tp)
        with pytest.raises(MatchingError, match="no two of the 5 persons with traits share"):
            tp.linker.run()
        assert snapshot(tp) == before
        assert tp.warehouse.scalar("SELECT count(*) FROM identity_match_pairs") == 0


@pytest.mark.slow
def test_a_link_an_operator_removed_is_not_made_again_by_the_next_run(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        visited = load(tp)
        first = tp.linker.run()
        assert first.linked > 0
        (pair,) = tp.linker.pairs("linked", limit=1).pairs
        assert pair.link_id is not None
        a = Identifier(pair.a.identifier.type, pair.a.identifier.value)
        b = Identifier(pair.b.identifier.type, pair.b.identifier.value)
        tp.identity.remove_link(pair.link_id, note="namesakes")
        assert tp.identity.lookup(a) != tp.identity.lookup(b)
        assert tp.linker.pair(pair.pair_id).status == "unlinked"
        assert tp.linker.pairs("unlinked").count == 1
        again = tp.linker.run()
        assert again.linked == 0
        assert tp.identity.lookup(a) != tp.identity.lookup(b)  # the operator's decision holds
        assert len(visited) == first.linked  # (every dealer record had been linked)
