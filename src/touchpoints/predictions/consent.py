"""Whose consent lets predictions be made about them (profiling, GDPR Art. 4(4)).

A person may be scored when the category of the purpose ``predictions`` holds for them: their
latest choice grants it, or they never chose and the category's default grants it
(``consent_defaults``; by default only ``necessary``, so a person who never chose is not
scored). This is what ``Profiles.allows(person, "predictions")`` answers for one person; the
services ask it for everyone at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Allowed:
    """Who may be scored: a person whose latest choice granted the category, or who never
    chose while the category's ``default`` grants it."""

    default: bool
    granted: frozenset[int] = frozenset()
    denied: frozenset[int] = frozenset()

    def __contains__(self, person: object) -> bool:
        if person in self.granted:
            return True
        return self.default and person not in self.denied

    def mask(self, persons: np.ndarray) -> np.ndarray:
        """Per person of ``persons``, whether they may be scored."""
        if self.default:
            if not self.denied:
                return np.ones(persons.size, dtype=bool)
            return ~np.isin(persons, _array(self.denied))
        return np.isin(persons, _array(self.granted))


EVERYONE = Allowed(default=True)  # no consent purpose names predictions


def _array(persons: frozenset[int]) -> np.ndarray:
    return np.fromiter(persons, np.int64, len(persons))
