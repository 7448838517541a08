"""The intent classifier: a logistic-regression head over sentence embeddings, with the
out-of-scope phrases as a class of their own and a threshold below which nothing is
guessed.

Training (about a second for the shipped 600 phrases, once per intents file and process):

1. every example phrase is embedded (:mod:`touchpoints.assist.encoder`);
2. the threshold is tuned on out-of-fold probabilities (stratified 5-fold cross-validation
   of the training phrases): the one that best balances in-scope accuracy and out-of-scope
   recall (their mean), as in the CLINC150 evaluations;
3. the head is fitted on every phrase.

A message is out of scope when the out-of-scope class wins or the best intent's
probability is below the threshold. The same head fits any features (the benchmark runs a
TF-IDF baseline through it: ``benchmarks/assistant.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from touchpoints.assist.encoder import Encoder
from touchpoints.assist.intents import OUT_OF_SCOPE, IntentFile

C = 10.0  # inverse regularisation: measured on the shipped phrases (benchmarks/assistant.py)
_THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.01), 2)


@dataclass(frozen=True)
class Guess:
    """What a message was understood as: an intent, or ``out_of_scope``, with the head's
    probability for the best intent and the runners-up (for the handover summary)."""

    intent: str
    confidence: float
    best: str  # the best intent even when out of scope (what it came closest to)
    ranking: tuple[tuple[str, float], ...]

    @property
    def in_scope(self) -> bool:
        return self.intent != OUT_OF_SCOPE


@dataclass
class Head:
    """A fitted logistic regression and its out-of-scope threshold."""

    model: Any
    classes: list[str]
    threshold: float

    def guesses(self, features: Any) -> list[Guess]:
        probabilities = self.model.predict_proba(features)
        return [self._guess(row) for row in probabilities]

    def _guess(self, row: np.ndarray) -> Guess:
        order = np.argsort(row)[::-1]
        ranking = tuple(
            (self.classes[i], round(float(row[i]), 4))
            for i in order[:4]
            if self.classes[i] != OUT_OF_SCOPE
        )[:3]
        best, confidence = ranking[0] if ranking else (OUT_OF_SCOPE, 0.0)
        top = self.classes[int(order[0])]
        intent = best if top != OUT_OF_SCOPE and confidence >= self.threshold else OUT_OF_SCOPE
        return Guess(intent, confidence, best, ranking)


def held_out(
    phrases: Sequence[tuple[str, str, str]], share: float, seed: int
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(training, held out): ``share`` of each (intent, language)'s phrases held out, at
    least one, chosen at random with ``seed``."""
    import random

    groups: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for phrase in phrases:
        groups.setdefault((phrase[1], phrase[2]), []).append(phrase)
    rng = random.Random(seed)
    train: list[tuple[str, str, str]] = []
    test: list[tuple[str, str, str]] = []
    for key in sorted(groups):
        items = groups[key][:]
        rng.shuffle(items)
        cut = max(1, round(len(items) * share))
        test.extend(items[:cut])
        train.extend(items[cut:])
    return train, test


def _logistic(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=3000, random_state=seed)


def _decide(probabilities: np.ndarray, classes: list[str], threshold: float) -> list[str]:
    head = Head(None, classes, threshold)
    return [head._guess(row).intent for row in probabilities]


def score(truth: Sequence[str], predicted: Sequence[str]) -> tuple[float, float]:
    """(in-scope accuracy, out-of-scope recall): the share of in-scope phrases given their
    intent (an in-scope phrase called out of scope counts as wrong), and the share of
    out-of-scope phrases called out of scope."""
    inside = [(t, p) for t, p in zip(truth, predicted, strict=True) if t != OUT_OF_SCOPE]
    outside = [p for t, p in zip(truth, predicted, strict=True) if t == OUT_OF_SCOPE]
    accuracy = sum(t == p for t, p in inside) / len(inside) if inside else 0.0
    recall = sum(p == OUT_OF_SCOPE for p in outside) / len(outside) if outside else 0.0
    return accuracy, recall


def tune_threshold(features: Any, labels: Sequence[str], seed: int = 0) -> float:
    """The threshold that maximises the mean of in-scope accuracy and out-of-scope recall
    on out-of-fold probabilities (stratified 5-fold cross-validation); of several equally
    good, the middle one."""
    from sklearn.model_selection import StratifiedKFold

    labels = list(labels)
    classes = sorted(set(labels))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    probabilities = np.zeros((len(labels), len(classes)))
    target = np.array(labels)
    for train, test in folds.split(np.zeros(len(labels)), target):
        model = _logistic(seed).fit(features[train], target[train])
        found = model.predict_proba(features[test])
        for j, name in enumerate(model.classes_):
            probabilities[test, classes.index(name)] = found[:, j]
    values = []
    for threshold in _THRESHOLDS:
        accuracy, recall = score(labels, _decide(probabilities, classes, float(threshold)))
        values.append((accuracy + recall) / 2)
    # The middle of the best plateau: as far from both of its edges as the data allows.
    top = max(values)
    best = [float(t) for t, value in zip(_THRESHOLDS, values, strict=True) if value >= top - 1e-9]
    return round(best[len(best) // 2], 2)


def fit_head(features: Any, labels: Sequence[str], seed: int = 0) -> Head:
    """A head fitted on ``features`` (one row per phrase) and ``labels`` (intent names and
    ``out_of_scope``), its threshold tuned by cross-validation.

    On one BLAS thread: these are small matrices, and on a busy machine a thread pool
    fighting for the cores made the fit ten times slower (2.7 s against 0.26 s here)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        threshold = tune_threshold(features, labels, seed)
        model = _logistic(seed).fit(features, np.array(list(labels)))
    return Head(model, [str(name) for name in model.classes_], threshold)


class IntentClassifier:
    """Intents from text, through the encoder and a fitted head."""

    def __init__(self, encoder: Encoder, head: Head, fingerprint: str) -> None:
        self.encoder = encoder
        self.head = head
        self.fingerprint = fingerprint

    @classmethod
    def train(cls, intents: IntentFile, encoder: Encoder, seed: int = 0) -> IntentClassifier:
        phrases = intents.phrases()
        features = encoder.encode([text for text, _, _ in phrases])
        head = fit_head(features, [label for _, label, _ in phrases], seed)
        return cls(encoder, head, intents.fingerprint())

    @property
    def threshold(self) -> float:
        return self.head.threshold

    def guess(self, text: str, vector: np.ndarray | None = None) -> Guess:
        features = (self.encoder.one(text) if vector is None else vector).reshape(1, -1)
        return self.head.guesses(features)[0]


_trained: dict[tuple[int, str], IntentClassifier] = {}
_trained_lock = threading.Lock()


def trained(intents: IntentFile, encoder: Encoder) -> IntentClassifier:
    """The classifier for ``intents``, trained once per process and intents file."""
    key = (id(encoder), intents.fingerprint())
    with _trained_lock:
        found = _trained.get(key)
        if found is None:
            found = IntentClassifier.train(intents, encoder)
            _trained[key] = found
        return found
