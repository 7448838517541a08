"""Understanding one message: its language, sentiment, intent and, when no intent covers
it, an FAQ entry. The encoder and classifier are made on first use (or by ``warm`` in a
server's thread at start), once per process and intents file."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from touchpoints.assist.classifier import Guess, IntentClassifier, trained
from touchpoints.assist.encoder import Encoder, shared_encoder
from touchpoints.assist.faq import Faq, FaqAnswer, FaqFile
from touchpoints.assist.intents import OUT_OF_SCOPE, IntentFile
from touchpoints.assist.language import detect
from touchpoints.assist.sentiment import Sentiment, sentiment


@dataclass(frozen=True)
class Reading:
    """What one message was understood as."""

    guess: Guess
    language: str  # de, en or other
    sentiment: Sentiment
    faq: FaqAnswer | None

    @property
    def intent(self) -> str:
        return self.guess.intent


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
        if guess.intent == OUT_OF_SCOPE and found != "other":
            answer = self.faq.answer(text, vector)
        return Reading(guess, found, sentiment(text), answer)
