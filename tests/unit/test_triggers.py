"""Triggers on a real DuckDB file: definitions refused with their place and reason; an event
with matching properties fires, the frequency cap holds (also across a merge of two
persons), audience entries and journey stages fire, a delay survives closing the data
directory and checks its condition again, traits are set through an identify call, and a
person's firings are in their export and gone with their erasure."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from touchpoints.activate.audiences.conditions import DefinitionError
from touchpoints.activate.triggers import dispatch as dispatch_module
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.errors import Conflict
from touchpoints.warehouse import utc_now


def _open(path: Path) -> Touchpoints:
    return Touchpoints.open(load_settings(path / "data"))


def _send(tp: Touchpoints, *messages: dict[str, Any]) -> None:
    outcome = tp.judge({"batch": list(messages)}, "batch", source="trigger-test")
    assert not outcome.rejected, outcome.rejected
    tp.write_rows(outcome.rows)


_N = iter(range(1_000_000))


def _track(user: str, event: str, key: str = "userId", **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        key: user,
        "event": event,
        "properties": properties,
        "messageId": f"m{next(_N)}",
    }


def _hook(tp: Touchpoints) -> int:
    made = tp.destinations.create("webhook", "crm", {"url": "https://example.com/hook"}, [])
    return made.destination.id


def _outbox(tp: Touchpoints) -> list[dict[str, Any]]:
    rows = tp.warehouse.fetchall("SELECT payload FROM outbox ORDER BY seq")
    return [orjson.loads(row[0]) for row in rows]


def test_mistakes_are_answered_with_their_place_and_reason(tmp_path: Path) -> None:
    with _open(tmp_path) as tp:
        hook = _hook(tp)
        base = {"key": "t", "name": "T", "when": {"event": "Viewed"}, "steps": [{"send": hook}]}
        cases = [
            ({**base, "steps": [{"sned": 1}]}, "steps[0]: a step is an object with one of"),
            ({**base, "steps": [{"delay": "5x"}]}, "steps[0].delay: give a duration"),
            ({**base, "when": {"evnt": "Viewed"}}, "when: when is an object with one of the keys"),
            ({**base, "limit": {"times": 0, "per": "1d"}}, "limit.times"),
            ({**base, "steps": []}, "steps: List should have at least 1 item"),
            (
                {**base, "when": {"event": "V", "where": {"price": {"gte": 5, "equals": 1}}}},
                "when.where.price: give one test",
            ),
            ({**base, "steps": [{"send": 99}]}, "steps[0].send: no destination 99"),
            ({**base, "when": {"audience": "nobody"}}, "when.audience: no audience nobody"),
            ({**base, "when": {"journey_stage": "Nirvana"}}, "when.journey_stage: no journey"),
            (
                {**base, "steps": [{"delay": "1h", "check": {"not": {"audience": "gone"}}}]},
                "steps[0].check.not: no audience gone",
            ),
            ({**base, "key": "firings"}, "key: firings is a word of the API"),
        ]
        for definition, expected in cases:
            with pytest.raises(DefinitionError) as caught:
                tp.triggers.create(definition)
            assert expected in str(caught.value), (definition, str(caught.value))
        tp.triggers.create(base)
        with pytest.raises(Conflict, match="key: a trigger t exists"):
            tp.triggers.create(base)
        assert [t.key for t in tp.triggers.listing().triggers] == ["t"]


def test_an_event_with_matching_properties_fires_within_the_frequency_cap(tmp_path: Path) -> None:
    with _open(tmp_path) as tp:
        hook = _hook(tp)
        _send(tp, _track("u1", "Product Added", price=500))  # before the trigger: not its cause
        tp.triggers.create(
            {
                "key": "big_cart",
                "name": "Big cart",
                "when": {"event": "Product Added", "where": {"price": {"gte": 100}}},
                "steps": [{"send": hook, "event": "Cart Reminder"}],
                "limit": {"times": 2, "per": "1d"},
            }
        )
        _send(
            tp,
            _track("u1", "Product Added", price=50),  # filtered out
            _track("u1", "Product Added", price=150, sku="A"),
            _track("u1", "Product Viewed", price=150),  # another event
            _track("u1", "Product Added", price=250),
            _track("u1", "Product Added", price=350),  # over the cap
            _track("u2", "Product Added", price=120),
        )
        done = tp.dispatch.run()
        assert (done.fired, done.capped, done.messages) == (3, 1, 3)
        assert tp.dispatch.run().fired == 0  # each cause once
        calls = _outbox(tp)
        assert [c["properties"]["price"] for c in calls] == [150, 250, 120]
        first = calls[0]
        assert first["event"] == "Cart Reminder" and first["userId"] == "u1"
        assert first["properties"] == {"price": 150, "sku": "A", "trigger": "big_cart"}
        assert first["context"]["trigger"]["event"] == "Product Added"
        assert tp.triggers.get("big_cart").fired == 3
        # A day later the cap has room again.
        later = utc_now() + timedelta(days=1, minutes=1)
        _send(tp, _track("u1", "Product Added", price=999))
        assert tp.dispatch.run(later).fired == 1


def test_an_event_trigger_reads_the_new_events_itself(tmp_path: Path) -> None:
    """A dispatch reads the batch out of ``events`` (not the journey tables' copy, which
    it no longer waits for): names as the journeys name them (a page's name), lists of
    names, the channel, and property filters on only the events of the trigger's names.
    Expected firings counted by hand."""
    with _open(tmp_path) as tp:
        hook = _hook(tp)
        steps = [{"send": hook}]
        for key, when in {
            "by_mail": {"event": ["Product Added", "Product Removed"], "channel": "email"},
            "home": {"event": "Home"},
            "gift_free_a": {
                "event": "Product Added",
                "where": {"sku": "A", "gift": {"exists": False}, "qty": {"lt": 3}},
            },
        }.items():
            tp.triggers.create({"key": key, "name": key, "when": when, "steps": steps})
        mail = {"campaign": {"medium": "email", "source": "newsletter"}}
        _send(
            tp,
            {**_track("u1", "Product Added", n=1, sku="A", qty=1), "context": mail},
            {**_track("u1", "Product Removed", n=2, sku="B"), "context": mail},
            _track("u1", "Product Removed", n=3),  # no campaign: not e-mail
            {**_track("u2", "Product Viewed", n=4, sku="A", qty=1), "context": mail},
            _track("u2", "Product Added", n=5, sku="A", qty=2),
            _track("u2", "Product Added", n=6, sku="A", qty=2, gift=True),
            _track("u2", "Product Added", n=7, sku="A", qty=3),
            _track("u3", "Product Added", n=8, sku="a", qty=1),
            {"type": "page", "anonymousId": "anon-1", "name": "Home", "properties": {"n": 9}},
            {"type": "page", "anonymousId": "anon-2", "name": "Shop", "properties": {"n": 10}},
            {"type": "track", "userId": "u4", "event": "Home", "properties": {"n": 11}},
        )
        done = tp.dispatch.run()
        assert done.fired == 6
        fired: dict[str, list[int]] = {}
        for call in _outbox(tp):
            fired.setdefault(call["properties"]["trigger"], []).append(call["properties"]["n"])
        assert fired == {"by_mail": [1, 2], "home": [9, 11], "gift_free_a": [1, 5]}
        # The journey tables' copy is the journeys' to make, when an analysis asks for it.
        assert tp.warehouse.scalar("SELECT count(*) FROM journey_events") == 0
        assert tp.dispatch.run().fired == 0


def test_batches_bearing_no_watched_name_are_not_queried_and_nothing_is_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event store tells the dispatch what it stored: a window of events that bear
    none of the names event triggers watch is not queried. A named event, events stored
    without telling it (a gap) and a trigger on a new name are queried, and fire."""
    with _open(tmp_path) as tp:
        hook = _hook(tp)
        steps = [{"send": hook}]
        tp.triggers.create(
            {"key": "probe", "name": "P", "when": {"event": "Probe Sent"}, "steps": steps}
        )
        assert tp.dispatch.run().fired == 0  # the definitions read: the names known
        queried: list[tuple[int, int]] = []
        batch = tp.dispatch.store.batch

        def counted(window: tuple[int, int], *args: Any, **kwargs: Any) -> Any:
            queried.append(window)
            return batch(window, *args, **kwargs)

        monkeypatch.setattr(tp.dispatch.store, "batch", counted)
        _send(tp, _track("u1", "Viewed"), _track("u2", "Other"))  # seqs 1, 2
        _send(tp, _track("u2", "Viewed"))  # 3
        assert tp.dispatch.run().fired == 0 and queried == []
        _send(tp, _track("u1", "Viewed"), _track("u1", "Probe Sent"))  # 4, 5
        assert tp.dispatch.run().fired == 1 and queried == [(3, 5)]
        _send(tp, _track("u1", "Viewed"))  # 6
        assert tp.dispatch.run().fired == 0 and queried == [(3, 5)]
        tp.store.listeners.remove(tp.dispatch.appended)
        _send(tp, _track("u3", "Probe Sent"))  # 7, not told
        tp.store.listeners.append(tp.dispatch.appended)
        _send(tp, _track("u3", "Viewed"))  # 8: told, bears no name, but after a gap
        assert tp.dispatch.run().fired == 1 and queried[-1] == (6, 8)
        tp.triggers.create(
            {"key": "other", "name": "O", "when": {"event": "Other"}, "steps": steps}
        )
        # Stored before the dispatch read the new definition: told with the names before.
        _send(tp, _track("u4", "Other"))  # 9
        assert tp.dispatch.run().fired == 1 and queried[-1] == (8, 9)
        fired = [(c["properties"]["trigger"], c["event"]) for c in _outbox(tp)]
        assert [key for key, _ in fired] == ["probe", "probe", "other"]


def _saved(tp: Touchpoints) -> int:
    """How far the triggers' reading position stands in the table."""
    return int(tp.warehouse.scalar("SELECT events_seq FROM trigger_state"))


def test_a_dispatch_that_finds_nothing_saves_its_place_later_and_fires_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The position is saved with each firing; a dispatch that finds nothing keeps it in
    memory (saved at most a second later, or when the server stops). Closing without saving
    (a crash) reads those events again and finds nothing again; and the position is saved
    before other definitions are used, so a trigger made later never fires for an event
    read before it existed, even after a crash."""
    monkeypatch.setattr(dispatch_module, "_SAVE_EVERY", 3600.0)  # no save for the time alone
    with _open(tmp_path) as tp:
        hook = _hook(tp)
        steps = [{"send": hook}]
        tp.triggers.create(
            {"key": "added", "name": "A", "when": {"event": "Added"}, "steps": steps}
        )
        _send(tp, _track("u1", "Added"))  # seq 1
        assert tp.dispatch.run().fired == 1
        assert _saved(tp) == 1  # with the firing
        _send(tp, _track("u1", "Viewed"), _track("u2", "Viewed"))  # seqs 2, 3: no trigger
        assert tp.dispatch.run().fired == 0
        assert _saved(tp) == 1 and tp.dispatch.store.position(tp.warehouse.cursor()) == (3, 0)
    with _open(tmp_path) as tp:  # closed without saving: read again, nothing fires twice
        assert tp.dispatch.run().fired == 0
        assert len(_outbox(tp)) == 1
        tp.triggers.create(
            {"key": "viewed", "name": "V", "when": {"event": "Viewed"}, "steps": steps}
        )
        assert tp.dispatch.run().fired == 0  # the Viewed events came before it
        assert _saved(tp) == 3  # saved before the new definitions were used
        _send(tp, _track("u3", "Viewed"), _track("u3", "Other"))  # seqs 4, 5
        assert tp.dispatch.run().fired == 1
        _send(tp, _track("u3", "Other"))  # seq 6
        assert tp.dispatch.run().fired == 0 and _saved(tp) == 5
        tp.dispatch.save()  # as the server does when it stops
        assert _saved(tp) == 6
        monkeypatch.setattr(dispatch_module, "_SAVE_EVERY", 0.0)  # the second has passed
        _send(tp, _track("u3", "Other"))  # seq 7
        assert tp.dispatch.run().fired == 0 and _saved(tp) == 7
    with _open(tmp_path) as tp:
        assert tp.dispatch.run().fired == 0
        assert [c["properties"]["trigger"] for c in _outbox(tp)] == ["added", "viewed"]


def test_consent_given_in_an_earlier_batch_lets_the_message_go(tmp_path: Path) -> None:
    """A destination's purposes are checked against the person's consent as stored, however
    recent: a choice of the batch before the trigger's event counts (it once did not: the
    check read the journey tables' persons, which the journeys derive only now and then)."""
    with _open(tmp_path) as tp:
        made = tp.destinations.create(
            "webhook", "crm", {"url": "https://example.com/hook"}, ["marketing"]
        )
        tp.triggers.create(
            {
                "key": "cart",
                "name": "Cart",
                "when": {"event": "Product Added"},
                "steps": [{"send": made.destination.id}],
            }
        )

        def choose(user: str, granted: bool) -> dict[str, Any]:
            return {
                "type": "identify",
                "userId": user,
                "messageId": f"m{next(_N)}",
                "context": {"consent": {"categoryPreferences": {"marketing": granted}}},
            }

        _send(tp, choose("yes", True), choose("no", False))
        assert tp.dispatch.run().fired == 0
        _send(tp, _track("yes", "Product Added"), _track("no", "Product Added"))
        done = tp.dispatch.run()
        assert (done.fired, done.messages) == (2, 1)
        assert [call["userId"] for call in _outbox(tp)] == ["yes"]
        notes = tp.warehouse.fetchall("SELECT detail FROM trigger_firings ORDER BY id")
        assert [row[0] for row in notes] == [
            None,
            f"not sent to destination {made.destination.id}: no consent",
        ]


def test_a_merge_of_two_persons_does_not_fire_beyond_the_cap(tmp_path: Path) -> None:
    with _open(tmp_path) as tp:
        hook = _hook(tp)
        tp.triggers.create(
            {
                "key": "viewed",
                "name": "Viewed",
                "when": {"event": "Viewed"},
                "steps": [{"send": hook}],
                "limit": {"times": 2, "per": "7d"},
            }
        )
        _send(tp, _track("device-1", "Viewed", key="anonymousId"), _track("u1", "Viewed"))
        assert tp.dispatch.run().fired == 2  # two persons, once each
        before = {tp.profiles.resolve("anonymous_id:device-1"), tp.profiles.resolve("user_id:u1")}
        assert len(before) == 2
        # Signing in on the device merges them: the merged person has fired twice already.
        _send(
            tp,
            {**_track("u1", "Viewed"), "anonymousId": "device-1"},
            _track("u1", "Viewed"),
        )
        assert tp.profiles.resolve("anonymous_id:device-1") == tp.profiles.resolve("user_id:u1")
        done = tp.dispatch.run()
        assert (done.fired, done.capped) == (0, 2)
        assert len(_outbox(tp)) == 2
        merged = tp.profiles.resolve("user_id:u1")
        shown = tp.triggers.firings(person=f"person:{merged}").firings
        assert len(shown) == 2  # both persons' firings are the merged person's history


def test_audience_entries_and_journey_stages_fire(tmp_path: Path) -> None:
    with _open(tmp_path) as tp:
        hook = _hook(tp)
        tp.audiences.create(
            {"key": "buyers", "name": "Buyers", "condition": {"event": "Order Completed"}}
        )
        tp.triggers.create(
            {
                "key": "welcome",
                "name": "Welcome buyer",
                "when": {"audience": "buyers"},
                "steps": [{"send": hook}],
            }
        )
        tp.triggers.create(
            {
                "key": "deciding",
                "name": "Deciding",
                "when": {"journey_stage": "decision"},
                "steps": [{"send": hook, "event": "Deciding"}],
            }
        )
        _send(tp, _track("u1", "Order Completed", total=10), _track("u2", "Quote Requested"))
        tp.evaluation.catch_up()
        tp.dispatch.run()
        calls = {(c["event"], c.get("userId")) for c in _outbox(tp)}
        assert calls == {("Welcome buyer", "u1"), ("Deciding", "u2")}
        _send(tp, _track("u2", "Product Added"))  # decision again: entered once only
        tp.dispatch.run()
        assert len(_outbox(tp)) == 2


def test_a_delay_survives_a_restart_and_checks_its_condition_again(tmp_path: Path) -> None:
    with _open(tmp_path) as tp:
        hook = _hook(tp)
        tp.triggers.create(
            {
                "key": "abandoned",
                "name": "Abandoned cart",
                "when": {"event": "Product Added"},
                "steps": [
                    {"delay": "30m", "check": {"not": {"event": "Order Completed"}}},
                    {"send": hook},
                    {"set_trait": "reminded", "value": True},
                ],
            }
        )
        _send(tp, _track("u1", "Product Added"), _track("u2", "Product Added"))
        done = tp.dispatch.run()
        assert (done.fired, done.delays, done.messages) == (2, 2, 0)
        _send(tp, _track("u2", "Order Completed"))
    with _open(tmp_path) as tp:
        assert tp.triggers.get("abandoned").waiting == 2
        assert tp.dispatch.run_delays().resumed == 0  # not yet due
        done = tp.dispatch.run_delays(utc_now() + timedelta(minutes=31))
        assert (done.resumed, done.stopped, done.messages, done.traits) == (1, 1, 1, 1)
        assert [c.get("userId") for c in _outbox(tp)] == ["u1"]
        states = {f.person: f.state for f in tp.triggers.firings("abandoned").firings}
        assert sorted(states.values()) == ["done", "stopped"]
        assert tp.triggers.get("abandoned").waiting == 0
        anna = tp.profiles.resolve("user_id:u1")
        assert tp.profiles.get(anna).traits["reminded"].value is True


def test_a_persons_firings_are_in_their_export_and_gone_with_their_erasure(
    tmp_path: Path,
) -> None:
    with _open(tmp_path) as tp:
        hook = _hook(tp)
        tp.triggers.create(
            {
                "key": "viewed",
                "name": "Viewed",
                "when": {"event": "Viewed"},
                "steps": [{"send": hook}, {"delay": "1d"}, {"send": hook}],
            }
        )
        _send(tp, _track("u1", "Viewed"), _track("u2", "Viewed"))
        tp.dispatch.run()
        anna = tp.profiles.resolve("user_id:u1")
        count = "SELECT count(*) FROM {} WHERE person = ?"
        for table in ("trigger_firings", "trigger_delays"):
            assert tp.warehouse.scalar(count.format(table), [anna]) == 1
        _request, archive = tp.privacy.export("user_id:u1")
        files = zipfile.ZipFile(io.BytesIO(archive))
        firings = orjson.loads(files.read("tables/trigger_firings.json"))
        assert [row["person"] for row in firings] == [anna]
        tp.privacy.erase("user_id:u1")
        for table in ("trigger_firings", "trigger_delays", "outbox"):
            assert tp.warehouse.scalar(count.format(table), [anna]) == 0, table
        assert tp.triggers.get("viewed").fired == 1  # the other person's stays


def test_waiting_firings_stop_when_the_trigger_is_disabled_or_loses_its_delay(
    tmp_path: Path,
) -> None:
    with _open(tmp_path) as tp:
        hook = _hook(tp)
        definition = {
            "key": "later",
            "name": "Later",
            "when": {"event": "Viewed"},
            "steps": [{"send": hook}, {"delay": "1h"}, {"send": hook}],
        }
        tp.triggers.create(definition)
        _send(tp, _track("u1", "Viewed"))
        assert tp.dispatch.run().delays == 1
        tp.triggers.change("later", {**definition, "steps": [{"send": hook}]})
        _send(tp, _track("u2", "Viewed"))
        assert tp.dispatch.run().fired == 1
        done = tp.dispatch.run_delays(utc_now() + timedelta(hours=2))
        assert (done.stopped, done.messages) == (1, 0)
        details = [f.detail for f in tp.triggers.firings("later").firings]
        assert "stopped after the delay: the trigger was changed while it waited" in details
        tp.triggers.change("later", {**definition, "enabled": False})
        _send(tp, _track("u3", "Viewed"))
        assert tp.dispatch.run().fired == 0  # a disabled trigger fires for nothing
