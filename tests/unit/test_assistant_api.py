"""The service assistant through its API, on the real app with its writer running: public
answers for anyone, personal ones only for a verified person (a signed user id, or a
one-time code mailed through a real SMTP server), events of the chat channel for every
message, handover to a team and an agent's reply reaching the customer's poll, voice and
SMS, and bad input answered plainly."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from conftest import AppServer, free_port, start_app
from touchpoints.assist.verification import user_hash

SECRET = "a-site-secret-of-some-length"
ORDER = "NW-7A1B2C3D"


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.mails.append(envelope)
        return "250 OK"

    def code(self, before: int, timeout: float = 15) -> str:
        """The code of the first mail after the ``before`` mails there were."""
        import time

        deadline = time.monotonic() + timeout
        while len(self.mails) <= before:
            assert time.monotonic() < deadline, "no mail came"
            time.sleep(0.05)
        found = re.search(rb"\b(\d{6})\b", self.mails[before].content)
        assert found is not None
        return found.group(1).decode()


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, mailbox: tuple[Mailbox, int]
) -> Iterator[AppServer]:
    found = start_app(
        tmp_path_factory.mktemp("assistant") / "data",
        assistant_identity_secret=SECRET,
        assistant_code_destination="mail",
        destinations_allow_private=True,
        destinations_retry_schedule=[0.0, 0.2],
    )
    found.tp.destinations.create(
        "email", "mail", {"host": "127.0.0.1", "port": mailbox[1], "sender": "bot@example.com"}, []
    )
    with found.client(found.write_key) as client:
        response = client.post("/v1/batch", json={"batch": _customers()})
        assert response.status_code == 200, response.text
    found.wait_idle()
    found.tp.assistant.understanding.warm()
    yield found
    found.stop()


def _customers() -> list[dict[str, Any]]:
    grant = {"consent": {"categoryPreferences": {"analytics": True}}}
    return [
        {"type": "identify", "userId": "u-7", "traits": {"first_name": "Anna",
         "last_name": "Berger", "email": "anna@example.com", "city": "Köln"}, "context": grant},
        {"type": "track", "userId": "u-7", "event": "Order Completed",
         "timestamp": "2026-11-20T10:00:00Z", "properties": {"order_id": ORDER, "revenue": 349.0,
         "currency": "EUR", "products": [{"name": "Dachbox"}]}},
        {"type": "track", "userId": "u-7", "event": "Order Shipped",
         "timestamp": "2026-11-25T10:00:00Z", "properties": {"order_id": ORDER,
         "carrier": "DHL", "expected_delivery": "2026-12-05"}},
        {"type": "identify", "userId": "u-8", "traits": {"first_name": "Ben",
         "email": "ben@example.com"}},
        {"type": "track", "userId": "u-8", "event": "Order Completed",
         "timestamp": "2026-11-21T10:00:00Z", "properties": {"order_id": "NW-BEN00001"}},
    ]  # fmt: skip


def _say(client: httpx.Client, text: str, **fields: Any) -> httpx.Response:
    return client.post("/v1/assistant/messages", json={"text": text, **fields})


def _replies(response: httpx.Response) -> str:
    body = response.json()
    return " ".join(m["text"] for m in body["messages"] if m["author"] == "assistant")


@pytest.fixture
def widget(served: AppServer) -> Iterator[httpx.Client]:
    with served.client(served.write_key) as client:
        yield client


def test_an_anonymous_visitor_gets_opening_hours_in_german(
    served: AppServer, widget: httpx.Client
) -> None:
    answer = _say(widget, "Wann habt ihr am Samstag geöffnet?", anonymous_id="anon-hours")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["understood"]["intent"] == "opening_hours"
    assert body["understood"]["language"] == "de"
    assert "Sa 09:00-16:00" in _replies(answer)
    assert answer.headers["access-control-allow-origin"] == "*"
    served.wait_idle()
    rows = served.tp.warehouse.fetchall(
        "SELECT event, channel, properties FROM events WHERE source = 'assistant' "
        "AND anonymous_id = 'anon-hours' ORDER BY seq"
    )
    events = [(event, channel) for event, channel, _ in rows]
    assert ("Live Chat Conversation Started", "chat") in events
    sent = [orjson.loads(p) for e, _, p in rows if e == "Live Chat Message Sent"]
    assert sent[0]["intent"] == "opening_hours" and sent[0]["language"] == "de"
    assert "text" not in sent[0] and "message_body" not in sent[0]  # never what was said


def test_the_widget_preflight_is_answered(served: AppServer) -> None:
    with served.client() as client:
        response = client.options("/v1/assistant/messages")
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in response.headers["access-control-allow-headers"]


def test_personal_answers_need_a_verified_person(
    served: AppServer, widget: httpx.Client, mailbox: tuple[Mailbox, int]
) -> None:
    anonymous = _say(widget, "Wo ist meine Bestellung?", anonymous_id="anon-order")
    assert ORDER not in _replies(anonymous) and "melden Sie sich" in _replies(anonymous)
    assert anonymous.json()["verified"] is False
    wrong = _say(
        widget,
        "Wo ist meine Bestellung?",
        anonymous_id="anon-order",
        user_id="u-7",
        user_hash=user_hash(SECRET, "u-8"),
    )
    assert wrong.status_code == 403 and "user_hash does not prove user_id" in wrong.text
    signed = _say(
        widget,
        "Wo ist meine Bestellung?",
        anonymous_id="anon-order",
        user_id="u-7",
        user_hash=user_hash(SECRET, "u-7"),
        conversation=anonymous.json()["conversation"],
    )
    said = _replies(signed)
    assert signed.json()["verified"] is True
    assert ORDER in said and "25.11.2026 mit DHL verschickt" in said and "05.12.2026" in said
    assert "NW-BEN00001" not in said
    hello = _say(
        widget,
        "Hallo",
        user_id="u-7",
        user_hash=user_hash(SECRET, "u-7"),
        conversation=signed.json()["conversation"],
    )
    assert _replies(hello).startswith("Hallo Anna!")
    # Signed out (or the conversation's id in other hands): the next message without the
    # site's proof gets no personal answer; the recognised person is offered a code to the
    # address on file instead. (The identity map has caught up with the signed-in messages
    # by then, which tied the browser's anonymous id to the user: under load the writer may
    # not have written them yet within the same second.)
    served.wait_idle()
    before = len(mailbox[0].mails)
    unproven = _say(widget, "Wo ist meine Bestellung?", conversation=signed.json()["conversation"])
    assert unproven.json()["verified"] is False and ORDER not in _replies(unproven)
    assert "Code an a•••@example.com geschickt" in _replies(unproven)
    assert len(mailbox[0].code(before)) == 6


def test_a_one_time_code_by_email_verifies_with_limited_tries(
    widget: httpx.Client, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    before = len(box.mails)
    first = _say(widget, "Where is my order?", anonymous_id="anon-code")
    conversation = first.json()["conversation"]
    assert "e-mail address" in _replies(first)
    asked = _say(
        widget, "it's anna@example.com", conversation=conversation, anonymous_id="anon-code"
    )
    assert "code is on its way" in _replies(asked)
    code = box.code(before)
    wrong = "000000" if code != "000000" else "111111"
    missed = _say(widget, wrong, conversation=conversation, anonymous_id="anon-code")
    assert "2 more tries" in _replies(missed) and missed.json()["verified"] is False
    right = _say(widget, code, conversation=conversation, anonymous_id="anon-code")
    said = _replies(right)
    assert right.json()["verified"] is True and "Thank you Anna" in said and ORDER in said, said
    kept = [m["text"] for m in right.json()["messages"] if m["author"] == "customer"]
    assert kept == ["[code]"]  # the code itself is never kept


def test_wrong_codes_run_out_and_an_unknown_address_reveals_nothing(
    widget: httpx.Client, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    before = len(box.mails)
    first = _say(widget, "Wo ist meine Bestellung?", anonymous_id="anon-nobody")
    conversation = first.json()["conversation"]
    asked = _say(
        widget, "nobody@example.com", conversation=conversation, anonymous_id="anon-nobody"
    )
    assert "Wenn diese Adresse zu einem Kundenkonto gehört" in _replies(asked)
    answers = [
        _replies(_say(widget, code, conversation=conversation, anonymous_id="anon-nobody"))
        for code in ("123456", "234567", "345678")
    ]
    assert "noch 2 Versuch" in answers[0] and "noch 1 Versuch" in answers[1]
    assert "zu viele falsche Codes" in answers[2]
    assert len(box.mails) == before  # nothing was sent to an address nobody has


def test_every_answer_about_a_code_sent_by_email_says_email(
    served: AppServer, widget: httpx.Client, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    before = len(box.mails)
    first = _say(widget, "Where is my order?", anonymous_id="anon-by-mail")
    conversation = {"conversation": first.json()["conversation"], "anonymous_id": "anon-by-mail"}
    asked = _replies(_say(widget, "ben@example.com", **conversation))
    code = box.code(before)
    wrong = "000000" if code != "000000" else "111111"
    missed = _replies(_say(widget, wrong, **conversation))
    with served.codes_later(11):
        expired = _replies(_say(widget, code, **conversation))
    assert "a code is on its way by e-mail" in asked, asked
    assert "the right one is in my e-mail" in missed, missed
    assert "The code in my e-mail has expired" in expired, expired
    assert "e-mail address again for a new code by e-mail" in expired, expired
    # in German, and after a restart (no code waiting): the way a new one can go
    german = _say(widget, "Wo ist meine Bestellung?", anonymous_id="anon-per-mail")
    conversation = {"conversation": german.json()["conversation"], "anonymous_id": "anon-per-mail"}
    given = _replies(_say(widget, "ben@example.com", **conversation))
    served.tp.assistant.codes.forget(conversation["conversation"])
    none = _replies(_say(widget, "123456", **conversation))
    assert "ist ein Code per E-Mail unterwegs" in given, given
    assert "keinen Code geschickt" in none and "E-Mail-Adresse" in none, none
    assert "dann schicke ich einen per E-Mail" in none, none
    for said in (asked, missed, expired, given, none):
        assert "SMS" not in said and "mobile" not in said and "Mobil" not in said, said


def test_bad_input_gets_a_clear_answer(served: AppServer, widget: httpx.Client) -> None:
    empty = _say(widget, "   ", anonymous_id="anon-bad")
    assert empty.status_code == 422 and "the message is empty" in empty.json()["detail"]
    long = _say(widget, "x" * 10_000, anonymous_id="anon-bad")
    assert long.status_code == 422 and "10,000 characters" in long.json()["detail"]
    unknown = _say(widget, "Hallo", anonymous_id="anon-bad", conversation="conv_nope")
    assert unknown.status_code == 404 and "no conversation 'conv_nope'" in unknown.json()["detail"]
    nobody = _say(widget, "Hallo")
    assert nobody.status_code == 422 and "say who is writing" in nobody.json()["detail"]
    french = _say(widget, "Bonjour, où est ma commande ? Je voudrais la suivre", anonymous_id="a")
    assert french.status_code == 200 and "only help in German or English" in _replies(french)
    with served.client() as reader:  # a read key may not chat
        assert reader.post("/v1/assistant/messages", json={"text": "x"}).status_code == 403
    no_key = served.post("/v1/assistant/messages", json={"text": "Hallo", "anonymous_id": "x"})
    assert no_key.status_code == 401


def test_handover_and_an_agents_reply_reach_the_widget(
    served: AppServer, widget: httpx.Client
) -> None:
    start = _say(
        widget,
        "Ich bin total verärgert, die Werkstatt hat meinen Lack zerkratzt!",
        user_id="u-7",
        user_hash=user_hash(SECRET, "u-7"),
    )
    body = start.json()
    conversation = body["conversation"]
    assert body["state"] == "queued" and body["understood"]["intent"] == "complaint"
    assert "Beschwerden" in _replies(start)
    admin = served.admin_key()
    with served.client(admin) as agent:
        queues = {q["team"]: q for q in agent.get("/v1/assistant/queues").json()["queues"]}
        assert queues["complaints"]["waiting"] >= 1
        detail = agent.get(f"/v1/assistant/conversations/{conversation}").json()
        summary = detail["summary"]
        assert summary["who"] == "Anna Berger" and summary["verified"] == "signed_in"
        assert summary["team"] == "complaints" and summary["priority"] == "high"
        assert summary["last_order"]["order_id"] == ORDER
        assert summary["sentiment"] == "negative" and "complaint" in summary["understood"]
        posted = agent.post(
            f"/v1/assistant/conversations/{conversation}/replies",
            json={"text": "Das tut mir leid, Frau Berger. Ich kümmere mich."},
        )
        assert posted.status_code == 201
    polled = widget.get(
        f"/v1/assistant/conversations/{conversation}/messages",
        params={"after": body["after"], "wait": 5},
    ).json()
    assert [m["author"] for m in polled["messages"]] == ["agent"]
    assert polled["messages"][0]["text"].startswith("Das tut mir leid")
    assert polled["state"] == "agent"
    with served.client(admin) as agent:
        closed = agent.post(
            f"/v1/assistant/conversations/{conversation}/close", json={"outcome": "resolved"}
        )
        assert closed.json()["state"] == "closed" and closed.json()["waiting_seconds"] >= 0
    after = _say(
        widget,
        "Noch etwas",
        conversation=conversation,
        user_id="u-7",
        user_hash=user_hash(SECRET, "u-7"),
    )
    assert after.status_code == 409 and "is closed" in after.json()["detail"]
    served.wait_idle()
    names = {
        e
        for (e,) in served.tp.warehouse.fetchall(
            "SELECT event FROM events WHERE properties LIKE ?", [f'%"{conversation}"%']
        )
    }
    assert {"Chatbot Handover", "Complaint Filed", "Live Chat Conversation Ended"} <= names


def test_a_long_poll_waits_and_the_stream_sends_events(
    served: AppServer, widget: httpx.Client
) -> None:
    start = _say(widget, "Hallo", anonymous_id="anon-poll").json()
    conversation, after = start["conversation"], start["after"]
    quiet = widget.get(
        f"/v1/assistant/conversations/{conversation}/messages", params={"after": after, "wait": 0.5}
    ).json()
    assert quiet["messages"] == [] and quiet["after"] == after
    streamed = widget.get(
        f"/v1/assistant/conversations/{conversation}/stream", params={"after": 0, "seconds": 1}
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text.count("event: message") == after and "id: 1\n" in streamed.text


def test_voice_and_sms_run_the_same_assistant(served: AppServer, widget: httpx.Client) -> None:
    voice = widget.post(
        "/v1/assistant/voice",
        json={"phone": "+49 171 5550101", "text": "Wo ist der nächste Händler in Köln?"},
    ).json()
    assert "Nordwind Köln" in voice["speech"] and "http" not in voice["speech"]
    assert voice["end_session"] is False and voice["transfer_to"] is None
    first = widget.post(
        "/v1/assistant/sms",
        json={"sender": "0171 5550102", "text": "Kann ich eine Probefahrt buchen?"},
    ).json()
    assert "Probefahrt" in first["reply"]
    second = widget.post("/v1/assistant/sms", json={"sender": "+491715550102", "text": "ja"}).json()
    assert second["conversation"] == first["conversation"]  # the same sender's conversation
    assert "Verkauf" in second["reply"]
    empty = widget.post("/v1/assistant/sms", json={"sender": "+491715550102", "text": " "})
    assert empty.status_code == 200 and "leer" in empty.json()["reply"]
    served.wait_idle()
    channels = {
        c
        for (c,) in served.tp.warehouse.fetchall(
            "SELECT DISTINCT channel FROM events WHERE source = 'assistant'"
        )
    }
    assert {"voice", "sms", "chat"} <= channels


def test_transcripts_are_kept_only_with_consent_and_redacted(
    served: AppServer, widget: httpx.Client
) -> None:
    signed = {"user_id": "u-7", "user_hash": user_hash(SECRET, "u-7")}
    kept = _say(widget, "Meine Nummer ist 0171 2345678, wann habt ihr offen?", **signed)
    ben = {"user_id": "u-8", "user_hash": user_hash(SECRET, "u-8")}
    withheld = _say(widget, "Wann habt ihr offen?", **ben)  # Ben never consented
    rows = dict(
        served.tp.warehouse.fetchall(
            "SELECT conversation, text FROM assistant_messages WHERE number = 1 "
            "AND conversation IN (?, ?)",
            [kept.json()["conversation"], withheld.json()["conversation"]],
        )
    )
    assert rows[kept.json()["conversation"]] == "Meine Nummer ist [phone], wann habt ihr offen?"
    assert rows[withheld.json()["conversation"]] is None
    # While the conversation runs, the widget still shows Ben his own message.
    page = widget.get(f"/v1/assistant/conversations/{withheld.json()['conversation']}/messages")
    assert page.json()["messages"][0]["text"] == "Wann habt ihr offen?"


def test_figures_trial_and_evaluation(served: AppServer, widget: httpx.Client) -> None:
    # Its own conversations: under xdist the module's other tests may run on another worker.
    for n in range(4):
        assert _say(widget, "Wann habt ihr geöffnet?", anonymous_id=f"fig-{n}").status_code == 200
    complaint = _say(
        widget,
        "Ich bin total verärgert, die Werkstatt hat meinen Lack zerkratzt!",
        user_id="u-7",
        user_hash=user_hash(SECRET, "u-7"),
    )
    assert complaint.json()["state"] == "queued"
    with served.client(served.admin_key()) as admin:
        figures = admin.get("/v1/assistant/figures").json()
        assert figures["conversations"] >= 5 and figures["handed_over"] >= 1
        assert 0 <= figures["containment"] <= 1
        assert any(row["intent"] == "complaint" for row in figures["by_intent"])
        tried = admin.post(
            "/v1/assistant/trial",
            json={"text": "Wo ist meine Bestellung?", "key": "email:anna@example.com"},
        ).json()
        assert tried["understood"]["intent"] == "order_status" and ORDER in tried["replies"][0]
        evaluated = admin.post("/v1/assistant/evaluate", json={"seed": 1}).json()
        assert evaluated["both"]["accuracy"] > 0.85 and evaluated["held_out"] > 100


def test_a_bad_intents_file_stops_the_start(tmp_path: Path) -> None:
    from touchpoints.config import ConfigError, load_settings
    from touchpoints.core import Touchpoints

    bad = tmp_path / "data" / "intents.yaml"
    bad.parent.mkdir()
    bad.write_text("intents:\n  - name: x\n")
    with pytest.raises(ConfigError, match=r"assistant: .*intents\.yaml: intents\[0\]\.description"):
        Touchpoints(load_settings(tmp_path / "data", assistant_intents="intents.yaml"))
