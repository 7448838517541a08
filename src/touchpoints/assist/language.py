"""Which language a message is in: German, English, another one, or too short to say.

Function words decide (the way n-gram-free detectors such as ``stop-words`` based ones
work): each language scores the share of a message's words that are among its most common
short words, plus letters only it uses (ß and umlauts for German, ñ for Spanish, ł for
Polish, …). A message in neither German nor English is "other" only when another language
clearly wins (two of its words at least, more than German's or English's): a single word
such as "Hallo" or "ok" must not send a customer away. Measured on the shipped phrases and
foreign sentences in ``benchmarks/assistant.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORDS = {
    "de": """der die das und ist nicht ich du sie wir ihr mein meine meinen meiner meinem
        ein eine einen einem zu mit auf für von wo wann wie was warum bitte danke habe hat
        haben kann können könnt möchte möchten würde gibt es schon noch auch aber oder
        wenn dass mir mich dir dich uns euch sind bin bist wird werden im am bei nach über
        vom zum zur den dem des bis heute morgen gern gerne ja nein hallo mal keine kein
        euer eure habt seid sich man nur jetzt immer wieder hier da sehr ganz ob welche
        welcher welches soll muss will nächste nächsten guten tag tschüss vielen an""",
    "en": """the a an and is are not i you we they my me your our to with on for of from
        where when how what why please thanks thank have has had can could would will want
        there already still also but or if that it its this do does did am be been today
        tomorrow yes no hello hi any anyone some just now again here very all which should
        must need next good bye you're i'm i'd don't can't isn't what's where's it's""",
    "fr": """le la les et est ne pas je tu nous vous mon ma mes un une des du à avec pour où
        quand comment quoi merci bonjour qui sur dans au aux ce cette suis sont mais ou si
        votre vos notre est-ce c'est je veux pouvez""",
    "es": """el la los las y es no yo tú nosotros mi mis un una unos del con para por dónde
        cuándo cómo qué gracias hola que en al este esta está puedo quiero pero usted su
        sus hay muy""",
    "it": """il lo la gli le e è non io tu noi mio mia un una di del della con per dove
        quando come cosa grazie ciao che in al questo questa sono vorrei ma anche molto
        posso""",
    "nl": """de het een en is niet ik jij wij mijn met voor van waar wanneer hoe wat
        alsjeblieft dank bedankt hallo dat op aan deze dit zijn kan wil maar ook heb
        hebben graag jullie""",
    "pt": """o a os as e é não eu você nós meu minha um uma do da com para onde quando como
        obrigado obrigada olá que em no na este esta está posso quero mas também muito""",
    "tr": """bir ve bu ne nerede zaman nasıl merhaba teşekkürler teşekkür lütfen benim için
        ile değil mi var yok ben sen siz çok""",
    "pl": """i w nie jest się na że to jak gdzie kiedy co dziękuję proszę moje moja mój z do
        czy ale jestem""",
}
WORDS: dict[str, frozenset[str]] = {code: frozenset(text.split()) for code, text in _WORDS.items()}
# Letters that say a language by themselves (each counts as half a word).
_LETTERS = {
    "de": "äöüß",
    "es": "ñ¿¡",
    "fr": "çœêèëîï",
    "pt": "ãõ",
    "tr": "ığş",
    "pl": "łąęśżźćń",
    "nl": "ĳ",
}
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


@dataclass(frozen=True)
class Detected:
    """``language``: de, en, other, or None (too little to say); ``other``: which other
    language won, when one did."""

    language: str | None
    other: str | None = None


def detect(text: str) -> Detected:
    """The language of ``text`` (see the module's note)."""
    lowered = text.lower()
    tokens = _TOKEN.findall(lowered)
    if not tokens:
        return Detected(None)
    scores = {code: float(sum(token in words for token in tokens)) for code, words in WORDS.items()}
    for code, letters in _LETTERS.items():
        scores[code] += 0.5 * sum(lowered.count(letter) for letter in letters)
    ours = max(scores["de"], scores["en"])
    foreign, foreign_score = max(
        ((code, value) for code, value in scores.items() if code not in ("de", "en")),
        key=lambda pair: pair[1],
    )
    if foreign_score >= 2 and foreign_score > ours * 1.5:
        return Detected("other", foreign)
    if ours == 0:
        return Detected(None)
    if scores["de"] == scores["en"]:
        return Detected(None)
    return Detected("de" if scores["de"] > scores["en"] else "en")
