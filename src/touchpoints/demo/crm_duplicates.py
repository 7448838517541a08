"""A German CRM export with duplicates, for testing and measuring probabilistic matching.

Shaped like the public benchmark of issue 16: person records with first name, last name and
birth date only; a tenth of them duplicates of another record, each differing from its twin
by one error of the kinds German CRM data has (a typo, an umlaut written out or dropped, ß as
ss, a double first name shortened or unhyphenated, first and last name swapped, day and month
transposed, one digit of the date off, a field left empty). Names are drawn by frequency from
shipped lists of common German names, so "Müller" is common and "Zabrowski" rare, as in a
real export. Seeded: the same arguments give the same records. Nothing is downloaded.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from touchpoints.demo.slips import _typo

# Common German surnames, most frequent first (the order of the usual frequency lists), and
# some rarer ones; drawn with weight 1 / rank.
SURNAMES = (
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch "
    "Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann "
    "Hartmann Lange Schmitt Werner Schmitz Krause Meier Lehmann Schmid Schulze Maier Köhler "
    "Herrmann König Walter Mayer Huber Kaiser Fuchs Peters Lang Scholz Möller Weiß Jung Hahn "
    "Schubert Vogel Friedrich Keller Günther Frank Berger Winkler Roth Beck Lorenz Baumann "
    "Franke Albrecht Schuster Simon Ludwig Böhm Winter Kraus Martin Schumacher Krämer Vogt "
    "Stein Jäger Otto Sommer Groß Seidel Heinrich Brandt Haas Schreiber Graf Schulte Dietrich "
    "Ziegler Kuhn Kühn Pohl Engel Horn Busch Bergmann Thomas Voigt Sauer Arnold Wolff Pfeiffer "
    "Ernst Lindner Hübner Kramer Jansen Franz Peter Hansen Wenzel Götz Paul Riedel Barth "
    "Kern Lenz Hermann Ott Bender Marx Fröhlich Nowak Kowalski Yilmaz Kaya Öztürk Zabrowski "
    "Ließmann Grüneberg Rößler Kießling Weißenborn Straßburger Nußbaum Blümel Düsterhöft "
    "Käßbohrer Wißmann Sauerbier Eichhorn Mühlenkamp Brökelmann"
).split()
FIRST_NAMES = (
    "Maria Ursula Monika Petra Elisabeth Sabine Renate Helga Karin Brigitte Ingrid Erika "
    "Andrea Gisela Claudia Susanne Gabriele Christa Christine Hildegard Anna Birgit Barbara "
    "Gertrud Heike Marianne Elke Martina Angelika Irmgard Inge Ute Jutta Stefanie Nicole "
    "Julia Katharina Sandra Anja Jürgen Hans Peter Michael Wolfgang Klaus Thomas Werner "
    "Andreas Manfred Stefan Helmut Gerhard Uwe Dieter Frank Bernd Horst Heinz Christian "
    "Rainer Joachim Günter Markus Ralf Walter Karl Matthias Martin Jörg Alexander Dirk "
    "Sebastian Tobias Lukas Jonas Felix Leon Paul Emma Mia Hannah Lea Sophie Jörn Björn "
    "Sören Hans-Peter Karl-Heinz Hans-Jürgen Anna-Lena Marie-Luise Eva-Maria Klaus-Dieter "
    "Ann-Kathrin Hans-Georg Jan-Hendrik"
).split()
# The long tail: most people do not carry one of the hundred commonest names. Rarer surnames
# are made of a common first part and ending (Brökelmann, Hagedorn), about a thousand of them.
SURNAME_STEMS = (
    "Brökel Hage Linde Oster Wester Holz Stein Mühl Eich Buch Tann Rosen Kirch Berg Feld "
    "Wald Brunn Mohr Sieg Hell Ahl Dör Gött Kött Lüd Schoen Bieder Klett Rehm Ster Wend "
    "Fried Hein Gerl Ritt Stolz Bött Krög Pütt Wiß"
).split()
SURNAME_ENDINGS = (
    "mann dorf berg er ing hoff hausen kamp meier ke bach reuther ner lein inger stedt "
    "brock horst wig feld mund kötter rath baum huber"
).split()
COMMON_SURNAME_SHARE = 0.2
# The errors, with their weights; each duplicate gets exactly one.
ERRORS = {
    "typo": 30,
    "umlaut": 12,
    "double_name": 8,
    "swapped_names": 10,
    "day_month": 10,
    "date_digit": 15,
    "missing": 15,
}
_SPELLINGS = {"ä": ("ae", "a"), "ö": ("oe", "o"), "ü": ("ue", "u"), "ß": ("ss",)}

Record = dict[str, str | None]
Pair = tuple[str, str]


def german_crm(
    records: int = 10_000, duplicates: int = 1_000, seed: int = 16
) -> tuple[list[Record], set[Pair]]:
    """``records`` person records (``record_id``, ``first_name``, ``last_name``,
    ``birth_date`` as ISO text), ``duplicates`` of them a duplicate of another, and the true
    pairs (``(id_a, id_b)`` with ``id_a < id_b``)."""
    if not 0 <= duplicates <= records // 2:
        raise ValueError(f"duplicates must be between 0 and records / 2, not {duplicates}")
    rng = random.Random(seed)
    surname_weights = [1 / rank**0.7 for rank in range(1, len(SURNAMES) + 1)]
    first_weights = [1 / rank**0.5 for rank in range(1, len(FIRST_NAMES) + 1)]
    originals: list[Record] = []
    seen: set[tuple[str, str, str]] = set()
    start = date(1935, 1, 1)
    while len(originals) < records - duplicates:
        first = rng.choices(FIRST_NAMES, first_weights)[0]
        if rng.random() < COMMON_SURNAME_SHARE:
            last = rng.choices(SURNAMES, surname_weights)[0]
        else:
            last = rng.choice(SURNAME_STEMS) + rng.choice(SURNAME_ENDINGS)
        born = (start + timedelta(days=rng.randrange(70 * 365))).isoformat()
        if (first, last, born) in seen:
            continue
        seen.add((first, last, born))
        originals.append({"first_name": first, "last_name": last, "birth_date": born})
    twins = rng.sample(range(len(originals)), duplicates)
    copies = [_with_error(originals[i], rng) for i in twins]
    rows = originals + copies
    order = list(range(len(rows)))
    rng.shuffle(order)  # duplicates do not sit next to their twins, nor at the end
    ids = {index: f"r{position:06d}" for position, index in enumerate(order)}
    out = [{"record_id": ids[i], **rows[i]} for i in sorted(range(len(rows)), key=lambda i: ids[i])]
    truth = {
        tuple(sorted((ids[original], ids[len(originals) + n]))) for n, original in enumerate(twins)
    }
    return out, truth  # type: ignore[return-value]


def _with_error(record: Record, rng: random.Random) -> Record:
    """A copy of ``record`` with one error (drawn again until the copy differs: a typo in a
    name of three letters changes nothing)."""
    while (copy := _one_error(record, rng)) == record:
        pass
    return copy


def _one_error(record: Record, rng: random.Random) -> Record:
    """A copy of ``record`` with one error; a kind that cannot apply falls back to a typo."""
    kind = rng.choices(list(ERRORS), list(ERRORS.values()))[0]
    copy = dict(record)
    first, last, born = (record[k] or "" for k in ("first_name", "last_name", "birth_date"))
    if kind == "umlaut" and any(c in _SPELLINGS for c in (first + last).lower()):
        field = "last_name" if any(c in _SPELLINGS for c in last.lower()) else "first_name"
        copy[field] = _respell(copy[field] or "", rng)
    elif kind == "double_name" and "-" in first:
        copy["first_name"] = first.replace("-", " ") if rng.random() < 0.5 else first.split("-")[0]
    elif kind == "swapped_names":
        copy["first_name"], copy["last_name"] = last, first
    elif kind == "day_month" and int(born[8:]) <= 12 and born[5:7] != born[8:]:
        copy["birth_date"] = f"{born[:4]}-{born[8:]}-{born[5:7]}"
    elif kind in ("date_digit", "day_month"):
        copy["birth_date"] = _digit_off(born, rng)
    elif kind == "missing":
        copy[rng.choice(("first_name", "last_name", "birth_date"))] = None
    else:
        field = rng.choice(("first_name", "last_name"))
        copy[field] = _typo(copy[field] or "", rng)
    return copy


def _respell(name: str, rng: random.Random) -> str:
    """Umlauts and ß as a system without them writes them: ü as ue or u, ß as ss."""
    spelling = rng.choice((0, 1))
    out = []
    for char in name:
        lower = char.lower()
        if lower in _SPELLINGS:
            options = _SPELLINGS[lower]
            text = options[min(spelling, len(options) - 1)]
            out.append(text.capitalize() if char.isupper() else text)
        else:
            out.append(char)
    return "".join(out)


def _digit_off(born: str, rng: random.Random) -> str:
    """The ISO date with one digit of day, month or year changed, still a real date."""
    while True:
        position = rng.choice((2, 3, 5, 6, 8, 9))
        digit = str(rng.randrange(10))
        text = born[:position] + digit + born[position + 1 :]
        if text == born:
            continue
        try:
            date.fromisoformat(text)
        except ValueError:
            continue
        return text
