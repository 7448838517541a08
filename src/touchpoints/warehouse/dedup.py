"""Which messageIds are already stored, answered in memory so deduplication stays fast.

A primary key on the 10M-row events table made DuckDB inserts fall to about 30,000 rows/s
here and an anti-join on the text ids to about 40,000; the writer needs more than 100,000.
So each stored event keeps a 64-bit hash of its messageId (column ``id_hash``) and this index
holds those hashes (8 bytes an event). A hash hit is only a candidate: the writer confirms it
against the exact messageId in the warehouse, so a hash collision can never drop an event.

The hashes are kept as a few sorted NumPy runs plus a set of the latest additions, merged the
way a log-structured tree merges (size-tiered), because the writer waits for every merge:

- The set becomes a run at ``_RUN_AT`` hashes (a sort of 65,536: 5-8 ms).
- Two runs are merged when the newer is at least half the older, up to ``_MERGE_UP_TO``: a
  stable sort of two sorted runs is one linear merge (NumPy's timsort; 12 ms for two runs of
  a million, 45 ms for two of two million, measured here).
- Duplicates are never removed: membership does not need it, and ``np.unique`` (NumPy 2.4)
  took 1.0 s for a million hashes against 55 ms for ``np.sort``. Merging a million new hashes
  into the whole index with it held the writer 1.2 s at the trigger benchmark's load
  (benchmarks/RESULTS.md, "Where the last percent waited").
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b

import numpy as np

_RUN_AT = 65_536  # new hashes held in a set before they become a sorted run
_MERGE_UP_TO = 1 << 22  # runs past four million hashes are not merged further


def id_hash(message_id: str) -> int:
    """Stable across processes and versions (unlike Python's hash or DuckDB's hash())."""
    return int.from_bytes(
        blake2b(message_id.encode(), digest_size=8).digest(), "little", signed=True
    )


class MessageIdIndex:
    def __init__(self, hashes: np.ndarray | None = None) -> None:
        base = np.sort(np.asarray(hashes if hashes is not None else [], dtype=np.int64))
        self._runs: list[np.ndarray] = [base] if len(base) else []  # oldest (largest) first
        self._recent: set[int] = set()

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs) + len(self._recent)

    @property
    def runs(self) -> int:
        """How many sorted runs a lookup searches (for tests and diagnostics)."""
        return len(self._runs)

    def candidates(self, hashes: list[int]) -> list[bool]:
        """For each hash: might it be stored already? (False is certain; True needs a check.)"""
        if not hashes:
            return []
        probe = np.asarray(hashes, dtype=np.int64)
        hits = np.zeros(len(probe), dtype=bool)
        for run in self._runs:
            positions = np.searchsorted(run, probe)
            positions[positions == len(run)] = 0
            hits |= run[positions] == probe
        recent = self._recent
        return [bool(hit) or value in recent for hit, value in zip(hits, hashes, strict=True)]

    def add(self, hashes: Iterable[int]) -> None:
        self._recent.update(hashes)
        if len(self._recent) < _RUN_AT:
            return
        run = np.fromiter(self._recent, dtype=np.int64, count=len(self._recent))
        run.sort()
        self._recent = set()
        runs = self._runs
        runs.append(run)
        while (
            len(runs) >= 2
            and 2 * len(runs[-1]) >= len(runs[-2])
            and len(runs[-1]) + len(runs[-2]) <= _MERGE_UP_TO
        ):
            newer = runs.pop()
            merged = np.concatenate([runs.pop(), newer])
            merged.sort(kind="stable")  # two sorted runs: one linear merge
            runs.append(merged)
