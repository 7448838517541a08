"""The assistant's transcripts are personal data: in a person's export, gone with an
erasure (from the tables and from memory), closed when idle, pruned after
``assistant_transcript_days``, and redacted before they are kept."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from touchpoints.assist.maintenance import tidy
from touchpoints.assist.redact import redact
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.errors import NotFound

SECRET = "privacy-test-secret-000"


@pytest.fixture
def core(tmp_path: Path) -> Touchpoints:
    tp = Touchpoints(load_settings(tmp_path / "data", assistant_identity_secret=SECRET))
    batch = [
        {"type": "identify", "userId": "u-1", "anonymousId": "anon-1",
         "traits": {"email": "lena@example.com", "first_name": "Lena"},
         "context": {"consent": {"categoryPreferences": {"analytics": True}}}},
        {"type": "identify", "userId": "u-2", "traits": {"email": "tom@example.com"},
         "context": {"consent": {"categoryPreferences": {"analytics": True}}}},
    ]  # fmt: skip
    tp.write_rows(tp.judge({"batch": batch}, "batch", source="test").rows)
    return tp


def _chat(tp: Touchpoints, anonymous_id: str, text: str) -> str:
    visitor = tp.assistant.visitor(anonymous_id=anonymous_id)
    return tp.assistant.chat(None, visitor, text).conversation


def test_a_persons_export_holds_their_conversations_and_erasure_removes_them(
    core: Touchpoints,
) -> None:
    lenas = _chat(core, "anon-1", "Wann habt ihr geöffnet? Mail: lena@example.com")
    toms = core.assistant.chat(None, core.assistant.visitor(anonymous_id="anon-2"), "Hallo")
    _, archive = core.privacy.export("email:lena@example.com")
    files = zipfile.ZipFile(io.BytesIO(archive))
    messages = orjson.loads(files.read("tables/assistant_messages.json"))
    assert {m["conversation"] for m in messages} == {lenas}
    assert messages[0]["text"] == "Wann habt ihr geöffnet? Mail: [email]"
    assert "lena@example.com" not in files.read("tables/assistant_messages.json").decode()
    conversations = orjson.loads(files.read("tables/assistant_conversations.json"))
    assert [c["id"] for c in conversations] == [lenas]

    done = core.privacy.erase("email:lena@example.com")
    assert done.removed["assistant_conversations"] == 1
    assert done.removed["assistant_messages"] == 2
    with pytest.raises(NotFound):  # nor is it held in memory any more
        core.assistant.page(lenas)
    assert core.assistant.page(toms.conversation).messages  # another's conversation stays
    rows = core.warehouse.fetchall("SELECT count(*) FROM assistant_messages")
    assert rows == [(2,)]


def test_idle_conversations_are_closed_and_old_ones_pruned(core: Touchpoints) -> None:
    answered = _chat(core, "anon-1", "Wann habt ihr geöffnet?")
    lost = _chat(core, "anon-3", "Wie wird das Wetter morgen in Rom?")
    later = datetime.now(UTC) + timedelta(minutes=31)
    closed, removed = tidy(core.assistant, core.agents, later)
    assert (closed, removed) == (2, 0)
    outcomes = dict(core.warehouse.fetchall("SELECT id, outcome FROM assistant_conversations"))
    assert outcomes == {answered: "resolved", lost: "unresolved"}
    much_later = datetime.now(UTC) + timedelta(days=91)
    assert tidy(core.assistant, core.agents, much_later) == (0, 2)
    assert core.warehouse.fetchall("SELECT count(*) FROM assistant_messages") == [(0,)]
    ended = core.warehouse.fetchall(
        "SELECT count(*) FROM events WHERE event = 'Live Chat Conversation Ended'"
    )
    assert ended == [(2,)]


def test_redaction_of_addresses_phone_and_card_numbers() -> None:
    text = (
        "Ich bin anna.m@example.de, Tel. +49 (171) 234-5678, Karte 4111 1111 1111 1111, "
        "Bestellung NW-3F2A19C0 vom 20.11.2026 über 349,00 €, Kundennummer K-1000234, "
        "keine Karte (Luhn): 1234 5678 9012 3456"
    )
    assert redact(text) == (
        "Ich bin [email], Tel. [phone], Karte [card], Bestellung NW-3F2A19C0 vom 20.11.2026 "
        "über 349,00 €, Kundennummer K-1000234, keine Karte (Luhn): 1234 5678 9012 3456"
    )


def test_no_text_is_kept_without_consent_and_none_after_closing(tmp_path: Path) -> None:
    tp = Touchpoints(load_settings(tmp_path / "data"))
    conversation = _chat(tp, "anon-x", "Wann habt ihr geöffnet?")
    assert tp.warehouse.fetchall("SELECT text FROM assistant_messages") == [(None,), (None,)]
    assert tp.assistant.page(conversation).messages[0].text == "Wann habt ihr geöffnet?"
    tp.agents.close(conversation, "resolved")
    assert tp.assistant.page(conversation).messages[0].text is None  # forgotten with it
    tp.close()
