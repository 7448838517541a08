"""Pairwise precision and recall of same-person decisions, against a ground truth.

For items (identifiers, or records) that both clusterings know, a pair of items is *predicted*
when the resolver put them in one person and *true* when the ground truth says they are one
person. Precision = correct predicted pairs / predicted pairs; recall = correct predicted pairs
/ true pairs. Counted from the contingency table of the two clusterings (pairs within each
cell), so a million items cost no more than a group-by, never a loop over pairs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PairScores:
    items: int
    predicted_pairs: int
    true_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise_scores(
    predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable]
) -> PairScores:
    """Score ``predicted`` (item → cluster) against ``truth`` (item → cluster) on shared items."""
    items = predicted.keys() & truth.keys()
    cells = Counter((predicted[i], truth[i]) for i in items)
    by_predicted = Counter(predicted[i] for i in items)
    by_truth = Counter(truth[i] for i in items)
    return PairScores(
        items=len(items),
        predicted_pairs=sum(_pairs(n) for n in by_predicted.values()),
        true_pairs=sum(_pairs(n) for n in by_truth.values()),
        correct_pairs=sum(_pairs(n) for n in cells.values()),
    )
