"""Links between identifiers that share no event: accepted matches join persons, the merge
rules still apply, and an operator can take a link back; a rebuild keeps every decision."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_identity_rebuild import event_persons, send, snapshot

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.errors import NotFound
from touchpoints.identity.identifiers import Identifier
from touchpoints.identity.rebuild import rebuild
from touchpoints.identity.resolver import LinkRequest

CRM = Identifier("anonymous_id", "K-1001")
WEB = Identifier("email", "ida.lange@posteo.de")


def two_strangers(tp: Touchpoints) -> None:
    """A CRM record and a web shopper: one person, but they share no identifier."""
    send(
        tp,
        [
            {
                "type": "identify",
                "anonymousId": "K-1001",
                "traits": {"first_name": "Ida", "last_name": "Lnage", "birthday": "1963-03-16"},
                "messageId": "crm-1",
            },
            {
                "type": "identify",
                "userId": "u1",
                "anonymousId": "laptop",
                "traits": {"email": "Ida.Lange@posteo.de", "first_name": "Ida"},
                "messageId": "web-1",
            },
            {"type": "track", "event": "Viewed", "anonymousId": "laptop", "messageId": "web-2"},
        ],
    )


def test_an_accepted_match_joins_two_persons_and_the_merge_log_names_the_link(
    tmp_path: Path,
) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        two_strangers(tp)
        crm, web = tp.identity.lookup(CRM), tp.identity.lookup(WEB)
        assert crm != web
        [outcome] = tp.identity.add_links([LinkRequest(CRM, WEB, "match", 0.973)])
        assert outcome.refused is None and not outcome.already_one
        assert tp.identity.lookup(CRM) == tp.identity.lookup(WEB) == min(crm, web)
        assert tp.identity.lookup(Identifier("person", str(max(crm, web)))) == min(crm, web)
        assert set(event_persons(tp).values()) == {min(crm, web)}
        log = tp.warehouse.fetchall(
            "SELECT kind, kept, absorbed, link_id, message_id, note FROM identity_merges"
        )
        assert log == [
            (
                "link",
                min(crm, web),
                max(crm, web),
                outcome.link_id,
                None,
                f"probabilistic match link {outcome.link_id}, p=0.973",
            )
        ]
        profile = tp.profiles.get(tp.profiles.resolve("anonymous_id:K-1001"))
        assert profile.identifiers["email"][0].value == "ida.lange@posteo.de"
        assert profile.traits["last_name"].value == "Lnage"  # every trait of both kept


def test_a_link_that_would_give_a_person_two_user_ids_is_refused_with_its_evidence(
    tmp_path: Path,
) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(
            tp,
            [
                {"type": "identify", "userId": "u1", "traits": {"email": "a@x.de"}},
                {"type": "identify", "userId": "u2", "traits": {"email": "b@x.de"}},
            ],
        )
        a, b = Identifier("email", "a@x.de"), Identifier("email", "b@x.de")
        before = snapshot(tp)["identifiers"]
        [outcome] = tp.identity.add_links([LinkRequest(a, b, "review", 0.8, "same household")])
        assert outcome.refused == "user_id limit 1"
        assert tp.identity.lookup(a) != tp.identity.lookup(b)
        assert snapshot(tp)["identifiers"] == before
        assert tp.warehouse.fetchall(
            "SELECT message_id, link_id, rule FROM identity_rejections"
        ) == [(None, outcome.link_id, "user_id limit 1")]
        assert not tp.warehouse.fetchall("SELECT * FROM identity_merges")


def test_removing_a_link_splits_the_person_again_and_a_rebuild_agrees(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        two_strangers(tp)
        alone = event_persons(tp)
        [outcome] = tp.identity.add_links([LinkRequest(CRM, WEB, "match", 0.95)])
        joined = snapshot(tp)
        rebuild(tp.identity)
        assert snapshot(tp) == joined  # the link is applied again by the rebuild
        persons = tp.identity.remove_link(outcome.link_id, note="different Ida")
        assert len(persons) == 2
        assert tp.identity.lookup(CRM) != tp.identity.lookup(WEB)
        assert event_persons(tp) == alone
        split = snapshot(tp)
        rebuild(tp.identity)
        assert snapshot(tp) == split  # a removed link stays removed
        unmerge = tp.warehouse.fetchall(
            "SELECT kind, link_id, note FROM identity_merges WHERE kind = 'unmerge'"
        )
        assert unmerge == [("unmerge", outcome.link_id, "different Ida")]
        with pytest.raises(NotFound, match="no link .* in force"):
            tp.identity.remove_link(outcome.link_id)  # already removed


def test_events_after_a_link_follow_it(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        two_strangers(tp)
        tp.identity.add_links([LinkRequest(CRM, WEB, "match", 0.95)])
        send(tp, [{"type": "track", "event": "Call", "anonymousId": "K-1001", "messageId": "c2"}])
        assert event_persons(tp)["c2"] == tp.identity.lookup(WEB)
        linked = snapshot(tp)
        rebuild(tp.identity)
        assert snapshot(tp) == linked


def test_a_link_to_an_unknown_identifier_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        two_strangers(tp)
        before = snapshot(tp)
        nobody = Identifier("email", "nobody@example.com")
        with pytest.raises(NotFound, match="links\\[1\\]: no identifier email:nobody@example.com"):
            tp.identity.add_links(
                [LinkRequest(CRM, WEB, "match", 0.95), LinkRequest(CRM, nobody, "match", 0.95)]
            )
        with pytest.raises(ValueError, match="same identifier"):
            tp.identity.add_links([LinkRequest(WEB, WEB, "match", 0.95)])
        assert snapshot(tp) == before
        assert tp.warehouse.scalar("SELECT count(*) FROM identity_links") == 0


def test_a_failed_identity_write_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Identifiers, event identifiers, merges and the processed mark commit together: a
    failure after some were written rolls all back, and the next catch-up does it once."""
    import touchpoints.identity.store.identity_map as identity_map

    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        send(tp, [{"type": "identify", "anonymousId": "laptop", "messageId": "m1"}])
        before = snapshot(tp)

        def broken(*args: object) -> None:
            raise RuntimeError("disk full")

        monkeypatch.setattr(identity_map, "insert_rejections", broken)
        outcome = tp.judge(
            {
                "batch": [
                    {"type": "identify", "userId": "u1", "anonymousId": "phone", "messageId": "m2"},
                    {"type": "track", "event": "x", "userId": "u1", "anonymousId": "laptop"},
                ]
            },
            "batch",
            source="identity-test",
        )
        with pytest.raises(RuntimeError, match="disk full"):
            tp.write_rows(outcome.rows)
        assert snapshot(tp) == before  # the events are stored; their identity rows are not
        assert tp.warehouse.scalar("SELECT count(*) FROM identity_merges") == 0
        monkeypatch.undo()
        tp.identity.catch_up()
        after = snapshot(tp)
        assert len(after["event_identifiers"]) == 1 + 2 + 2  # each event's rows once
        assert tp.identity.lookup(Identifier("anonymous_id", "laptop")) == tp.identity.lookup(
            Identifier("user_id", "u1")
        )
        assert tp.warehouse.scalar("SELECT count(*) FROM identity_merges") == 1
        rebuilt = snapshot(tp)
        rebuild(tp.identity)
        assert snapshot(tp) == rebuilt
