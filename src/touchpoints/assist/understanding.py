"""Understanding one message: its language, sentiment, intent and, when no intent covers
it (or the best one is unsure: below ``UNSURE``), an FAQ entry, which then answers. The
encoder and classifier are made on first use (or by ``warm`` in a server's thread at start),
once per process and intents file."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from touchpoints.assist.classifier import Guess, IntentClassifier, trained
from touchpoints.assist.encoder import Encoder, shared_encoder
from touchpoints.assist.faq import Faq, FaqAnswer, FaqFile
from touchpoints.assist.intents import OUT_OF_SCOPE, IntentFile
from touchpoints.assist.language import detect
from touchpoints.assist.sentiment import Sentiment, sentiment

# Below this probability an intent gives way to an FAQ entry that answers the message ("Can I
# pay with PayPal?" comes closest to no intent and is the FAQ's question).
UNSURE = 0.5
FAQ = "faq"  # what a message answered from the FAQ is recorded as


@dataclass(frozen=True)
class Reading:
    """What one message was understood as."""

    guess: Guess
    language: str  # de, en or other
    sentiment: Sentiment
    faq: FaqAnswer | None  # the FAQ entry that answers (no intent, or an unsure one)

    @property
    def intent(self) -> str:
        """The intent, ``faq`` when an FAQ entry answers, or ``out_of_scope``."""
        return FAQ if self.faq is not None else self.guess.intent


class Understanding:
    def __init__(self, intents: IntentFile, faq: FaqFile, encoder: Encoder | None = None) -> None:
        self.intents = intents
        self.encoder = encoder or shared_encoder()
        self.faq = Faq(faq, self.encoder)
        self._classifier: IntentClassifier | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._classifier is not None

    @property
    def classifier(self) -> IntentClassifier:
        if self._classifier is None:
            with self._lock:
                if self._classifier is None:
                    found = trained(self.intents, self.encoder)
                    self.faq.by_meaning(self.encoder.one("warm"))  # the FAQ's questions too
                    self._classifier = found
        return self._classifier

    def warm(self) -> None:
        """Load the encoder and train the classifier now (a server does it at start)."""
        _ = self.classifier

    def read(self, text: str, language: str | None = None) -> Reading:
        """``text`` understood; ``language``: the conversation's so far, kept when the
        message is too short to tell."""
        detected = detect(text)
        found = detected.language or language or "de"
        vector = self.classifier.encoder.one(text)
        guess = self.classifier.guess(text, vector)
        answer = None
        unsure = guess.intent == OUT_OF_SCOPE or guess.confidence < UNSURE
        if unsure and found != "other":
            answer = self.faq.answer(text, vector)
        return Reading(guess, found, sentiment(text), answer)
