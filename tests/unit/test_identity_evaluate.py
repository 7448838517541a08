"""Pairwise scores, checked on cases counted by hand."""

from __future__ import annotations

from itertools import combinations

from hypothesis import given
from hypothesis import strategies as st

from touchpoints.identity.evaluate import pairwise_scores


def test_a_hand_counted_case() -> None:
    # truth: {a,b,c} {d,e}; predicted: {a,b} {c,d,e}
    truth = {"a": 1, "b": 1, "c": 1, "d": 2, "e": 2}
    predicted = {"a": "x", "b": "x", "c": "y", "d": "y", "e": "y"}
    scores = pairwise_scores(predicted, truth)
    # predicted pairs: ab, cd, ce, de = 4; true pairs: ab, ac, bc, de = 4; correct: ab, de = 2
    assert (scores.predicted_pairs, scores.true_pairs, scores.correct_pairs) == (4, 4, 2)
    assert scores.precision == 0.5 and scores.recall == 0.5 and scores.f1 == 0.5


def test_only_items_both_sides_know_count() -> None:
    scores = pairwise_scores({"a": 1, "b": 1, "z": 1}, {"a": 7, "b": 7, "q": 7})
    assert scores.items == 2
    assert (scores.precision, scores.recall) == (1.0, 1.0)


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=25))
def test_agrees_with_counting_every_pair(labels: list[tuple[int, int]]) -> None:
    predicted = {i: p for i, (p, _) in enumerate(labels)}
    truth = {i: t for i, (_, t) in enumerate(labels)}
    pairs = list(combinations(range(len(labels)), 2))
    same_p = {pair for pair in pairs if predicted[pair[0]] == predicted[pair[1]]}
    same_t = {pair for pair in pairs if truth[pair[0]] == truth[pair[1]]}
    scores = pairwise_scores(predicted, truth)
    assert scores.predicted_pairs == len(same_p)
    assert scores.true_pairs == len(same_t)
    assert scores.correct_pairs == len(same_p & same_t)
