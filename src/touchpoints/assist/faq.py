"""FAQ answers by retrieval over the operator's FAQ file, with the source shown.

A message no intent covers is compared with every question of the file by meaning (cosine
of sentence embeddings, across languages: an English question finds a German entry's
English answer) and by its words (BM25: Okapi, k1 1.2, b 0.75, over each entry's questions,
answer and source title), which finds what the encoder misses (rare product words, model
names). An entry answers when

- its nearest question is at least ``MEANING`` near; or
- meaning and words point at it together, at least ``AGREED`` near and ``AGREED_WORDS``; or
- its words alone score ``WORDS`` or more (the BM25 fallback).

Sentences about cars sit 0.5 to 0.7 apart whatever they ask, so meaning alone must be
near; agreeing evidence may be weaker. The thresholds were set by looking at paraphrases of
the shipped entries and out-of-scope phrases (``benchmarks/assistant.py``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from touchpoints.assist.encoder import Encoder
from touchpoints.assist.files import load_file
from touchpoints.assist.intents import Lang
from touchpoints.assist.language import WORDS

MEANING = 0.6
AGREED, AGREED_WORDS = 0.45, 2.0
WORDS_MIN = 8.0
_K1, _B = 1.2, 0.75


class Questions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    de: list[str] = Field(min_length=1)
    en: list[str] = Field(min_length=1)

    @field_validator("de", "en")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if any(not question.strip() for question in value):
            raise ValueError("a question is empty")
        return [question.strip() for question in value]


class Texts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    de: str = Field(min_length=1, max_length=2000)
    en: str = Field(min_length=1, max_length=2000)

    def of(self, language: str) -> str:
        return self.en if language == "en" else self.de


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=200)
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=80)
    questions: Questions
    answer: Texts
    source: Source


class FaqFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    faqs: list[Entry]

    @model_validator(mode="after")
    def _distinct(self) -> FaqFile:
        ids = [entry.id for entry in self.faqs]
        for i, found in enumerate(ids):
            if ids.index(found) != i:
                raise ValueError(f"faqs[{i}].id: {found!r} is used twice")
        return self


def load_faq(path: Path | None = None) -> FaqFile:
    """The FAQ file at ``path`` (or the shipped one), validated."""
    return load_file(FaqFile, path, "faq.yaml", "FAQ file")


@dataclass(frozen=True)
class FaqAnswer:
    entry: Entry
    method: str  # meaning or words
    score: float

    def text(self, language: str) -> str:
        return self.entry.answer.of(language)


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = WORDS["de"] | WORDS["en"]


def terms(text: str) -> list[str]:
    """A text's terms for BM25: lower-case words without the commonest ones, each also as
    its first five letters (a crude stem: Garantie, Garantiebedingungen)."""
    out: list[str] = []
    for word in _TOKEN.findall(text.casefold()):
        if word in _STOP or len(word) < 2:
            continue
        out.append(word)
        if len(word) > 5:
            out.append(word[:5] + "…")
    return out


class Bm25:
    """Okapi BM25 over documents of terms."""

    def __init__(self, documents: list[list[str]]) -> None:
        self.documents = [Counter(doc) for doc in documents]
        self.lengths = [len(doc) for doc in documents]
        self.average = sum(self.lengths) / len(documents) if documents else 0.0
        frequency: Counter[str] = Counter()
        for doc in documents:
            frequency.update(set(doc))
        n = len(documents)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in frequency.items()}

    def scores(self, query: list[str]) -> list[float]:
        out = []
        for counts, length in zip(self.documents, self.lengths, strict=True):
            total = 0.0
            for term in set(query):
                tf = counts.get(term, 0)
                if tf:
                    norm = tf + _K1 * (1 - _B + _B * length / (self.average or 1))
                    total += self.idf[term] * tf * (_K1 + 1) / norm
            out.append(total)
        return out


class Faq:
    """Retrieval over a FAQ file (the questions embedded once, on first use)."""

    def __init__(self, file: FaqFile, encoder: Encoder) -> None:
        self.file = file
        self.encoder = encoder
        self._owners: list[int] = []
        for index, entry in enumerate(file.faqs):
            self._owners.extend([index] * (len(entry.questions.de) + len(entry.questions.en)))
        self._vectors: np.ndarray | None = None
        self._bm25 = Bm25(
            [
                terms(
                    " ".join(
                        [*e.questions.de, *e.questions.en, e.answer.de, e.answer.en, e.source.title]
                    )
                )
                for e in file.faqs
            ]
        )

    def _questions(self) -> np.ndarray:
        if self._vectors is None:
            texts = [q for e in self.file.faqs for q in (*e.questions.de, *e.questions.en)]
            self._vectors = self.encoder.encode(texts) if texts else np.zeros((0, 512))
        return self._vectors

    def by_meaning(self, vector: np.ndarray) -> FaqAnswer | None:
        """The entry whose question is nearest, and how near (None: no entries)."""
        vectors = self._questions()
        if not len(vectors):
            return None
        similarity = vectors @ vector
        best = int(np.argmax(similarity))
        entry = self.file.faqs[self._owners[best]]
        return FaqAnswer(entry, "meaning", round(float(similarity[best]), 4))

    def by_words(self, text: str) -> FaqAnswer | None:
        scores = self._bm25.scores(terms(text))
        if not scores:
            return None
        best = int(np.argmax(scores))
        return FaqAnswer(self.file.faqs[best], "words", round(scores[best], 3))

    def answer(self, text: str, vector: np.ndarray) -> FaqAnswer | None:
        """The entry that answers ``text`` (its embedding ``vector``), or None."""
        meaning = self.by_meaning(vector)
        if meaning is None:
            return None
        if meaning.score >= MEANING:
            return meaning
        words = self.by_words(text)
        if words is None:
            return None
        agreed = words.entry.id == meaning.entry.id
        if agreed and meaning.score >= AGREED and words.score >= AGREED_WORDS:
            return FaqAnswer(meaning.entry, "meaning and words", meaning.score)
        if words.score >= WORDS_MIN:
            return words
        return None


def question_language(language: str | None) -> Lang:
    return "en" if language == "en" else "de"
