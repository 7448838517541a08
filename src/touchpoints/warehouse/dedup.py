"""Which messageIds are already stored, answered in memory so deduplication stays fast.

A primary key on the 10M-row events table made DuckDB inserts fall to about 30,000 rows/s
here and an anti-join on the text ids to about 40,000; the writer needs more than 100,000.
So each stored event keeps a 64-bit hash of its messageId (column ``id_hash``) and this index
holds those hashes: a sorted NumPy array plus a small set of recent additions (8 bytes an
event). A hash hit is only a candidate: the writer confirms it against the exact messageId in
the warehouse, so a hash collision can never drop an event.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b

import numpy as np

_MERGE_AT = 1_000_000


def id_hash(message_id: str) -> int:
    """Stable across processes and versions (unlike Python's hash or DuckDB's hash())."""
    return int.from_bytes(
        blake2b(message_id.encode(), digest_size=8).digest(), "little", signed=True
    )


class MessageIdIndex:
    def __init__(self, hashes: np.ndarray | None = None) -> None:
        base = np.asarray(hashes if hashes is not None else [], dtype=np.int64)
        self._base = np.unique(base)
        self._recent: set[int] = set()

    def __len__(self) -> int:
        return len(self._base) + len(self._recent)

    def candidates(self, hashes: list[int]) -> list[bool]:
        """For each hash: might it be stored already? (False is certain; True needs a check.)"""
        if not hashes:
            return []
        probe = np.asarray(hashes, dtype=np.int64)
        if len(self._base):
            positions = np.searchsorted(self._base, probe)
            positions[positions == len(self._base)] = 0
            hits = self._base[positions] == probe
        else:
            hits = np.zeros(len(probe), dtype=bool)
        recent = self._recent
        return [bool(hit) or value in recent for hit, value in zip(hits, hashes, strict=True)]

    def add(self, hashes: Iterable[int]) -> None:
        self._recent.update(hashes)
        if len(self._recent) >= _MERGE_AT:
            merged = np.concatenate([self._base, np.fromiter(self._recent, dtype=np.int64)])
            self._base = np.unique(merged)
            self._recent = set()
