"""Destinations through the durable outbox: Standard Webhooks signatures (checked with the
``standardwebhooks`` package), retries on a schedule with jitter (on a fake clock),
Retry-After, 410, dead letters and their replay, per-person order, consent, the guard
against private addresses, erasure; the other kinds (a Segment collector, SMTP through a
real local server, files)."""

from __future__ import annotations

import base64
import csv
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from standardwebhooks.webhooks import Webhook

from conftest import free_port
from receiver import Received, Receiver, receiver
from touchpoints.activate import DeliveryWorker, Senders
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.errors import InvalidRequest


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def tp(tmp_path: Path) -> Iterator[Touchpoints]:
    core = Touchpoints(load_settings(tmp_path / "data", destinations_allow_private=True))
    yield core
    core.close()


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as found:
        yield found


def _worker(tp: Touchpoints, clock: Clock, schedule: list[float] | None = None) -> DeliveryWorker:
    # The outbox's times come from the real clock; the fake one starts a day later, so every
    # message written is due at once, and retries are due when the fake clock says.
    clock.now = datetime.now() + timedelta(days=1)
    return DeliveryWorker(
        tp.destinations,
        Senders(5, allow_private=True),
        schedule or [0, 5, 300, 1800],
        clock=clock,
        jitter=lambda: 0.5,
    )


def _webhook(tp: Touchpoints, url: str, purposes: list[str] | None = None) -> tuple[int, str]:
    made = tp.destinations.create("webhook", "crm", {"url": url + "/hook"}, purposes or [])
    return made.destination.id, made.secrets["secret"]


def _person(tp: Touchpoints, user: str, marketing: bool | None = None) -> int:
    event: dict[str, Any] = {"type": "identify", "userId": user, "traits": {"plan": "pro"}}
    if marketing is not None:
        event["context"] = {"consent": {"categoryPreferences": {"marketing": marketing}}}
    outcome = tp.judge({"batch": [event]}, "batch", source="test")
    tp.write_rows(outcome.rows)
    return tp.profiles.resolve(f"user_id:{user}")


def test_a_webhook_is_signed_per_standard_webhooks(tp: Touchpoints, hook: Receiver) -> None:
    destination, secret = _webhook(tp, hook.url)
    assert secret.startswith("whsec_")
    sent = tp.destinations.enqueue(destination, {"type": "audience.entered", "n": 1})
    clock = Clock()
    assert _worker(tp, clock).run_once() == 1
    (got,) = hook.received
    assert got.headers["webhook-id"] == sent.message_id
    assert Webhook(secret).verify(got.body, got.headers) == {"type": "audience.entered", "n": 1}
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(got.body + b" ", got.headers)
    assert tp.destinations.get(destination).delivered == 1
    assert "secret" not in orjson.dumps(tp.destinations.listing().model_dump()).decode()


def test_a_500_is_retried_on_the_schedule_with_jitter_and_the_same_webhook_id(
    tp: Touchpoints, hook: Receiver
) -> None:
    answers = iter([500, 503, 200])
    hook.answer = lambda _: (next(answers), {})
    destination, _ = _webhook(tp, hook.url)
    tp.destinations.enqueue(destination, {"n": 1})
    clock = Clock()
    worker = _worker(tp, clock, [0, 5, 300])
    assert worker.run_once() == 1
    (message,) = tp.destinations.messages(destination).messages
    assert message.state == "pending" and message.last_status == 500
    # 5 s, plus the jitter (half of 20 %): 5.5 s after the attempt, not before.
    assert message.next_attempt_at - clock.now == timedelta(seconds=5.5)
    clock.advance(5.4)
    assert worker.run_once() == 0
    clock.advance(0.2)
    assert worker.run_once() == 1
    clock.advance(329)
    assert worker.run_once() == 0
    clock.advance(2)
    assert worker.run_once() == 1
    assert len({r.headers["webhook-id"] for r in hook.received}) == 1
    assert len(hook.received) == 3
    (message,) = tp.destinations.messages(destination).messages
    assert (message.state, message.attempts) == ("delivered", 3)
    attempts = tp.destinations.attempts(destination).attempts
    assert [a.outcome for a in reversed(attempts)] == ["retry", "retry", "delivered"]
    assert [a.status for a in reversed(attempts)] == [500, 503, 200]
    assert tp.destinations.get(destination).success_rate == pytest.approx(1 / 3, abs=1e-3)


def test_a_message_failing_every_attempt_is_a_dead_letter_and_replays(
    tp: Touchpoints, hook: Receiver
) -> None:
    hook.answer = lambda _: (502, {})
    destination, _ = _webhook(tp, hook.url)
    tp.destinations.enqueue(destination, {"n": 1})
    clock = Clock()
    worker = _worker(tp, clock, [0, 1])
    worker.run_once()
    clock.advance(2)
    worker.run_once()
    (dead,) = tp.destinations.messages(destination, state="dead").messages
    assert dead.attempts == 2
    hook.answer = lambda _: (200, {})
    assert tp.destinations.replay(destination, []).replayed == 1
    assert worker.run_once() == 1
    assert tp.destinations.messages(destination).messages[0].state == "delivered"
    assert len({r.headers["webhook-id"] for r in hook.received}) == 1


def test_a_429_waits_as_long_as_retry_after_says(tp: Touchpoints, hook: Receiver) -> None:
    answers = iter([(429, {"Retry-After": "120"}), (200, {})])
    hook.answer = lambda _: next(answers)
    destination, _ = _webhook(tp, hook.url)
    tp.destinations.enqueue(destination, {"n": 1})
    clock = Clock()
    worker = _worker(tp, clock)
    worker.run_once()
    clock.advance(100)  # the schedule's 5 s are long past; the receiver asked for 120
    assert worker.run_once() == 0
    clock.advance(21)
    assert worker.run_once() == 1
    assert tp.destinations.messages(destination).messages[0].state == "delivered"


def test_a_410_disables_the_destination(tp: Touchpoints, hook: Receiver) -> None:
    hook.answer = lambda _: (410, {})
    destination, _ = _webhook(tp, hook.url)
    for n in range(2):
        tp.destinations.enqueue(destination, {"n": n}, ordering_key="one")
    clock = Clock()
    worker = _worker(tp, clock)
    assert worker.run_once() == 1
    found = tp.destinations.get(destination)
    assert found.state == "disabled" and "410" in (found.state_reason or "")
    clock.advance(3600)
    assert worker.run_once() == 0  # the second message waits for the destination
    assert (found.dead, found.pending) == (1, 1)


def test_a_400_is_a_dead_letter_at_once(tp: Touchpoints, hook: Receiver) -> None:
    hook.answer = lambda _: (400, {})
    destination, _ = _webhook(tp, hook.url)
    tp.destinations.enqueue(destination, {"n": 1})
    worker = _worker(tp, Clock())
    worker.run_once()
    (dead,) = tp.destinations.messages(destination, state="dead").messages
    assert (dead.attempts, dead.last_status) == (1, 400)


def test_a_person_keeps_their_order_and_a_failing_person_holds_up_no_one(
    tp: Touchpoints, hook: Receiver
) -> None:
    def answer(got: Received) -> tuple[int, dict[str, str]]:
        return (500 if orjson.loads(got.body)["who"] == "stuck" else 200), {}

    hook.answer = answer
    destination, _ = _webhook(tp, hook.url)
    for n in range(3):
        tp.destinations.enqueue(destination, {"who": "stuck", "n": n}, ordering_key="stuck")
        tp.destinations.enqueue(destination, {"who": "fine", "n": n}, ordering_key="fine")
    clock = Clock()
    worker = _worker(tp, clock)
    for _ in range(4):
        worker.run_once()
    sent = [orjson.loads(r.body) for r in hook.received]
    assert [m["n"] for m in sent if m["who"] == "fine"] == [0, 1, 2]
    assert [m["n"] for m in sent if m["who"] == "stuck"] == [0]  # the rest wait their turn
    hook.answer = lambda _: (200, {})
    clock.advance(10)
    for _ in range(3):
        worker.run_once()
    sent = [orjson.loads(r.body) for r in hook.received]
    assert [m["n"] for m in sent if m["who"] == "stuck"] == [0, 0, 1, 2]


def test_private_addresses_are_refused_unless_allowed(tmp_path: Path, hook: Receiver) -> None:
    with Touchpoints(load_settings(tmp_path / "strict")) as tp:
        destination, _ = _webhook(tp, hook.url)
        tp.destinations.enqueue(destination, {"n": 1})
        worker = DeliveryWorker(tp.destinations, Senders(5, allow_private=False), [0, 5])
        worker.run_once()
        (dead,) = tp.destinations.messages(destination, state="dead").messages
        assert "private" in (dead.last_error or "") and hook.received == []


def test_a_person_without_the_destinations_purposes_is_never_sent(
    tp: Touchpoints, hook: Receiver
) -> None:
    destination, _ = _webhook(tp, hook.url, purposes=["marketing"])
    yes, no, never = _person(tp, "u-1", True), _person(tp, "u-2", False), _person(tp, "u-3")
    assert tp.destinations.enqueue(destination, {"n": 1}, person=yes).message_id
    assert tp.destinations.enqueue(destination, {"n": 2}, person=no).skipped
    assert tp.destinations.enqueue(destination, {"n": 3}, person=never).skipped
    _worker(tp, Clock()).run_once()
    assert [orjson.loads(r.body)["n"] for r in hook.received] == [1]
    assert tp.destinations.get(destination).skipped == 2


def test_a_message_is_written_in_the_callers_transaction_or_not_at_all(
    tp: Touchpoints, hook: Receiver
) -> None:
    """... and the delivery worker is woken once it is committed (woken before, it would
    find nothing and wait for its next round)."""
    destination, _ = _webhook(tp, hook.url)
    wake = tp.destinations.wake
    wake.clear()
    with pytest.raises(RuntimeError), tp.warehouse.transaction() as cursor:
        tp.destinations.enqueue(destination, {"n": 1}, cursor=cursor)
        raise RuntimeError("the change that caused it failed")
    assert tp.destinations.messages(destination).messages == []
    assert not wake.is_set()
    with tp.warehouse.transaction() as cursor:
        tp.destinations.enqueue(destination, {"n": 2}, cursor=cursor)
        assert not wake.is_set()
    assert wake.is_set()
    assert len(tp.destinations.messages(destination).messages) == 1
    wake.clear()
    with tp.warehouse.transaction() as cursor:
        tp.destinations.enqueue_many(
            destination, [(7, {"n": 3}, "m3")], consented={7}, cursor=cursor
        )
        assert not wake.is_set()
    assert wake.is_set()
    wake.clear()
    tp.destinations.enqueue(destination, {"n": 4})  # in a transaction of its own
    assert wake.is_set()
    assert len(tp.destinations.messages(destination).messages) == 3


def test_erasure_removes_the_persons_messages_and_attempts(tp: Touchpoints, hook: Receiver) -> None:
    hook.answer = lambda _: (503, {})
    destination, _ = _webhook(tp, hook.url)
    anna, bert = _person(tp, "anna"), _person(tp, "bert")
    for person in (anna, bert):
        tp.destinations.enqueue(destination, {"email": f"{person}@example.com"}, person=person)
    _worker(tp, Clock()).run_once()
    tp.privacy.erase("user_id:anna")
    assert [m.person for m in tp.destinations.messages(destination).messages] == [bert]
    assert {a.person for a in tp.destinations.attempts(destination).attempts} == {bert}


def test_a_destination_is_checked_when_made(tp: Touchpoints) -> None:
    make = tp.destinations.create
    with pytest.raises(InvalidRequest, match="config.url"):
        make("webhook", "x", {}, [])
    with pytest.raises(InvalidRequest, match="kind"):
        make("pigeon", "x", {}, [])
    with pytest.raises(InvalidRequest, match="purposes: unknown sales"):
        make("webhook", "x", {"url": "https://example.com"}, ["sales"])
    with pytest.raises(InvalidRequest, match="write_key"):
        make("segment", "x", {"url": "https://example.com"}, [])
    with pytest.raises(InvalidRequest, match="absolute"):
        make("file", "x", {"directory": "exports"}, [])
    with pytest.raises(InvalidRequest, match="make it first"):
        make("file", "x", {"directory": "/nonexistent/exports"}, [])
    with pytest.raises(InvalidRequest, match="config.port"):
        make("email", "x", {"host": "smtp.example.com", "sender": "a@b.c", "port": 0}, [])
    with pytest.raises(InvalidRequest, match="url: give a string"):
        make("webhook", "x", {"url": 2**70}, [])


def test_segment_forwarding_posts_a_batch_with_the_write_key(
    tp: Touchpoints, hook: Receiver
) -> None:
    made = tp.destinations.create(
        "segment", "rudder", {"url": hook.url}, [], {"write_key": "wk_123"}
    )
    sent = tp.destinations.enqueue(
        made.destination.id, {"type": "track", "userId": "u-1", "event": "Order Completed"}
    )
    _worker(tp, Clock()).run_once()
    (got,) = hook.received
    assert got.path == "/v1/batch"
    assert got.headers["authorization"] == "Basic " + base64.b64encode(b"wk_123:").decode()
    (event,) = orjson.loads(got.body)["batch"]
    assert event["messageId"] == sent.message_id and event["event"] == "Order Completed"


def test_email_goes_through_a_real_smtp_server(tp: Touchpoints) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    class Keep(Sink):
        def __init__(self) -> None:
            self.mails: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            self.mails.append(envelope)
            return "250 OK"

    handler = Keep()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        made = tp.destinations.create(
            "email", "mail", {"host": "127.0.0.1", "port": port, "sender": "shop@example.com"}, []
        )
        tp.destinations.enqueue(
            made.destination.id, {"to": "anna@example.com", "subject": "Hi", "text": "Welcome"}
        )
        _worker(tp, Clock()).run_once()
    finally:
        controller.stop()
    (mail,) = handler.mails
    assert mail.rcpt_tos == ["anna@example.com"]
    assert b"Subject: Hi" in mail.content and b"Welcome" in mail.content
    assert tp.destinations.get(made.destination.id).delivered == 1


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_file_export_writes_the_members(tp: Touchpoints, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    made = tp.destinations.create("file", "files", {"directory": str(out), "format": fmt}, [])
    members = [{"person": 1, "email": "a@example.com"}, {"person": 2, "email": "b@example.com"}]
    sent = tp.destinations.enqueue(made.destination.id, {"name": "vip", "members": members})
    _worker(tp, Clock()).run_once()
    (written,) = out.iterdir()
    assert written.name == f"vip-{sent.message_id}.{fmt}"
    if fmt == "csv":
        rows = list(csv.DictReader(written.open()))
        assert rows == [{k: str(v) for k, v in m.items()} for m in members]
    else:
        assert pq.read_table(written).to_pylist() == members


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (200, {}, "delivered"),
        (204, {}, "delivered"),
        (301, {"Location": "http://10.0.0.1/"}, "dead"),  # redirects are not followed
        (400, {}, "dead"),
        (404, {}, "dead"),
        (408, {}, "retry"),
        (410, {}, "gone"),
        (422, {}, "dead"),
        (429, {"Retry-After": "30"}, "retry"),
        (500, {}, "retry"),
        (503, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}, "retry"),
    ],
)
def test_each_answer_is_delivered_retried_gone_or_dead(
    status: int, headers: dict[str, str], expected: str
) -> None:
    import httpx

    from touchpoints.activate.senders import http_outcome

    outcome = http_outcome(httpx.Response(status, headers=headers))
    found = (
        "delivered"
        if outcome.ok
        else "gone"
        if outcome.gone
        else "retry"
        if outcome.retry
        else "dead"
    )
    assert (found, outcome.status) == (expected, status)
    if status == 429:
        assert outcome.retry_after == 30
    if status == 503:
        assert outcome.retry_after is not None and outcome.retry_after > 86_400


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "0.0.0.0"],
)
def test_the_guard_refuses_every_address_that_is_not_public(host: str) -> None:
    from touchpoints.activate.guard import Refused, check_host

    with pytest.raises(Refused, match="destinations_allow_private|does not resolve"):
        check_host(host, 80, allow_private=False)
    check_host(host, 80, allow_private=True)


def test_a_checked_address_is_the_one_connected_to() -> None:
    from touchpoints.activate.guard import pinned

    assert pinned("https://hooks.example.com/in?x=1", "93.184.216.34") == (
        "https://93.184.216.34/in?x=1",
        {"host": "hooks.example.com"},
        {"sni_hostname": "hooks.example.com"},
    )
    assert pinned("http://hooks.example.com:8080/", "2606:2800::1")[0] == (
        "http://[2606:2800::1]:8080/"
    )
    assert pinned("http://127.0.0.1:9/", None) == ("http://127.0.0.1:9/", {}, {})


def test_collected_events_are_forwarded_to_a_collector_with_consent(
    tp: Touchpoints, hook: Receiver
) -> None:
    _person(tp, "before", True)  # collected before the destination: not forwarded
    assert tp.destinations.forward() == 0  # none forwards (kept in mind until one is made)
    made = tp.destinations.create(
        "segment",
        "rudder",
        {"url": hook.url, "forward": "track,identify"},
        ["marketing"],
        {"write_key": "wk"},
    )
    with pytest.raises(InvalidRequest, match="config.forward: bogus"):
        tp.destinations.create(
            "segment", "x", {"url": hook.url, "forward": "track,bogus"}, [], {"write_key": "k"}
        )
    _person(tp, "yes", True)
    _person(tp, "no", False)
    events = [
        {"type": "track", "userId": who, "event": "Order Completed", "messageId": f"o-{who}"}
        for who in ("yes", "no")
    ] + [{"type": "page", "userId": "yes", "name": "Home", "messageId": "p-yes"}]
    tp.write_rows(tp.judge({"batch": events}, "batch", source="test").rows)
    worker = _worker(tp, Clock())
    worker.run_once()
    worker.run_once()
    sent = [orjson.loads(r.body)["batch"][0] for r in hook.received]
    assert [(e["type"], e["userId"]) for e in sent] == [("identify", "yes"), ("track", "yes")]
    assert sent[1]["messageId"] == "o-yes"  # the collector deduplicates by it
    assert tp.destinations.forward() == 0  # each event once
    found = tp.destinations.get(made.destination.id)
    assert (found.delivered, found.skipped) == (2, 2)
    # Disabled, it forwards nothing; enabled again, what came meanwhile.
    tp.destinations.disable(made.destination.id)
    more = {"type": "track", "userId": "yes", "event": "Trip Booked", "messageId": "t-yes"}
    tp.write_rows(tp.judge(more, "track", source="test").rows)
    assert tp.destinations.forward() == 0
    tp.destinations.enable(made.destination.id)
    assert tp.destinations.forward() == 1


def test_done_messages_and_their_attempts_leave_after_the_keep_days(
    tp: Touchpoints, hook: Receiver
) -> None:
    destination, _ = _webhook(tp, hook.url)
    tp.destinations.enqueue(destination, {"n": 1})
    clock = Clock()
    worker = _worker(tp, clock)
    worker.run_once()
    hook.answer = lambda _: (503, {})
    tp.destinations.enqueue(destination, {"n": 2})
    clock.advance(1)
    worker.run_once()  # n=2 is pending, with one failed attempt
    clock.now = datetime.now() + timedelta(days=31)
    worker.run_once()
    left = tp.destinations.messages(destination).messages
    assert [m.state for m in left] == ["pending"]
    assert {a.message_id for a in tp.destinations.attempts(destination).attempts} == {
        left[0].message_id
    }


def test_a_collector_gets_due_messages_of_different_persons_in_one_batch(
    tp: Touchpoints, hook: Receiver
) -> None:
    made = tp.destinations.create("segment", "c", {"url": hook.url}, [], {"write_key": "k"})
    destination = made.destination.id
    for n in range(5):
        event = {"type": "track", "userId": f"u{n}", "event": "E"}
        tp.destinations.enqueue(destination, event, ordering_key=f"u{n}")
    tp.destinations.enqueue(
        destination, {"type": "track", "userId": "u0", "event": "F"}, ordering_key="u0"
    )
    worker = _worker(tp, Clock())
    assert worker.run_once() == 5
    assert worker.run_once() == 1  # u0's second waited for its first
    first, second = (orjson.loads(r.body)["batch"] for r in hook.received)
    assert [e["userId"] for e in first] == ["u0", "u1", "u2", "u3", "u4"]
    assert [(e["userId"], e["event"]) for e in second] == [("u0", "F")]
    assert tp.destinations.get(destination).delivered == 6
