"""The comparisons matching can make, as Splink comparisons: what counts as agreement on a
field, at which levels. German CRM data shaped them (issue 16): names arrive normalised
(umlauts and ß written out, hyphens as spaces: ``store.matching.german_name_sql``), may be
swapped, a double first name may be cut short, and an umlaut may be lost ("Krger" for
"Krüger"); birth dates may have day and month transposed, one digit off, or be missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl

# The label of a neutral level for a value missing on both sides (where missing on one side
# is a level of its own); other neutral levels read as "missing on one side".
MISSING_BOTH = "missing on both sides"


def splink_comparisons(
    names: Sequence[str],
    name_comparison: str,
    date_transposed: bool,
    missing_birth_date_level: bool = False,
) -> list[Any]:
    """Splink's comparisons for the named ones, in order ("name" split makes two)."""
    comparisons = {
        "name": _name_comparisons if name_comparison == "split" else _joint_names,
        "birth_date": lambda: _birth_date_comparison(date_transposed, missing_birth_date_level),
        "email": lambda: cl.EmailComparison("email"),
        # Levenshtein on phones: 2.5 times faster than Damerau-Levenshtein here; a swap of two
        # digits is distance 2. Postcodes are short, so Damerau-Levenshtein is cheap there.
        "phone": lambda: cl.LevenshteinAtThresholds("phone", [1, 2]),
        # A street line ("12 lange straße"), typed by hand. Jaro-Winkler: on FEBRL4 as
        # accurate as Damerau-Levenshtein at [1, 3] (F1 0.9977 against 0.9975) and 5 times
        # faster.
        "street": lambda: cl.JaroWinklerAtThresholds("street", [0.95, 0.88]),
        "postcode": lambda: cl.DamerauLevenshteinAtThresholds("postcode", [1]).configure(
            term_frequency_adjustments=True
        ),
        "city": lambda: cl.JaroWinklerAtThresholds("city", [0.9]).configure(
            term_frequency_adjustments=True
        ),
    }
    made = [comparisons[name]() for name in names]
    return [c for m in made for c in (m if isinstance(m, list) else [m])]


def _joint_names() -> Any:
    # A reversed-names level catches swapped first and last names; term frequencies on the
    # full name make "anna müller" weaker evidence than "ida lange".
    return cl.ForenameSurnameComparison(
        "first_name", "last_name", forename_surname_concat_col_name="full_name"
    )


def _name_comparisons() -> list[Any]:
    """First and last name, each its own comparison on the normalised names (umlauts written
    out, hyphens as spaces: see ``store.german_name_sql``).

    Two comparisons rather than Splink's joint ``ForenameSurnameComparison``: a duplicate
    with a typo in one name still earns the other name's full weight, and expectation
    maximisation can learn each name's m in sessions blocked on the other one. With the joint
    comparison, only sessions blocked on the birth date could train names, and when every
    duplicate carries one error the true pairs there never agree on both names, so EM learnt
    that an exact full name is rare among matches (issue 16). Levels: exact (with term
    frequencies: agreeing on "mueller" counts less than on "zabrowski"); the names swapped
    (this field equals the other's and back); for first names, one of a double name's parts
    ("hans peter" / "hans"); Jaro-Winkler at 0.92 and 0.88 on the names with umlauts as plain
    vowels (``first_name_plain``: "krger", a typo that dropped the umlaut, is one letter from
    "kruger" but two from "krueger"); anything else.

    The swapped level reads ``name_set`` (both names, sorted), not the other name's column:
    Splink leaves out of an EM session every comparison that reads a column the session is
    blocked on, so reading ``last_name`` kept the first-name comparison out of the session
    blocked on the last name, and that session trained the birth date alone (an EM with one
    comparison cannot tell matches from the rest; its m came out of the starting values).
    """
    return [
        _name_comparison("first_name", "first name"),
        _name_comparison("last_name", "last name"),
    ]


def _name_comparison(column: str, label: str) -> Any:
    levels: list[Any] = [
        cll.NullLevel(column),
        cll.ExactMatchLevel(column).configure(
            tf_adjustment_column=column, label_for_charts=f"Exact match on {label}"
        ),
        # The names swapped: one piece of evidence, so counted once, under the first name;
        # the last name's level is neutral (weight 0, like a missing value). Counted in both,
        # namesakes entered the other way round ("Meyer, Klaus") outweighed any birth date.
        cll.CustomLevel(
            f"{column}_l <> {column}_r AND name_set_l = name_set_r",
            label_for_charts="First and last name swapped"
            + ("" if column == "first_name" else " (counted under first_name)"),
            base_dialect_str="duckdb",
        ).configure(is_null_level=column != "first_name"),
    ]
    if column == "first_name":
        levels.append(
            cll.CustomLevel(
                f"len(list_intersect(string_split({column}_l, ' '), "
                f"string_split({column}_r, ' '))) > 0",
                label_for_charts="One of the first names agrees",
                base_dialect_str="duckdb",
            )
        )
    similarity = f"jaro_winkler_similarity({column}_plain_l, {column}_plain_r)"
    levels += [
        cll.CustomLevel(
            f"{similarity} >= {threshold}",
            label_for_charts=f"Jaro-Winkler >= {threshold}",
            base_dialect_str="duckdb",
        )
        for threshold in (0.92, 0.88)
    ]
    return cl.CustomComparison(
        output_column_name=column, comparison_levels=[*levels, cll.ElseLevel()]
    )


def _birth_date_comparison(transposed_level: bool, missing_level: bool) -> Any:
    """Splink's date-of-birth levels (exact; one character off, which is one digit off;
    within a month, a year, ten years), optionally with two more.

    ``transposed_level``: day and month transposed (04.03. for 03.04.), a common slip
    between date formats, before the fuzzy levels.

    ``missing_level``: a birth date missing on one side is a level of its own, its m and u
    learnt like any other's, instead of neutral (Splink's default; both missing stays
    neutral). Where duplicates are the records typed in a hurry, a missing birth date is
    evidence of a duplicate: on the German CRM export, EM learns m 0.054 (true 0.045) against
    u 0.012, +2.2 bits, and the share of true pairs linked or for review rose from about 0.96
    to 0.986 (the duplicates without a birth date, whose twin shares their full name, had
    scored 0.2 to 0.5 against the namesakes). Where originals miss it as often, m comes out
    near u and it weighs nothing. (The same level on the names made EM unstable there, m 0.2
    to 0.4 against a true 0.05, so names keep the neutral level.)
    """
    created = cl.DateOfBirthComparison("birth_date", input_is_string=False)
    if not transposed_level and not missing_level:
        return created
    levels: list[Any] = list(created.create_comparison_levels())
    if transposed_level:
        transposed = cll.CustomLevel(
            "year(birth_date_l) = year(birth_date_r) AND month(birth_date_l) = day(birth_date_r) "
            "AND day(birth_date_l) = month(birth_date_r)",
            label_for_charts="Day and month transposed",
            base_dialect_str="duckdb",
        )
        levels = [*levels[:2], transposed, *levels[2:]]
    if missing_level:
        levels[:1] = [
            cll.CustomLevel(
                "birth_date_l IS NULL AND birth_date_r IS NULL",
                label_for_charts=MISSING_BOTH,
                base_dialect_str="duckdb",
            ).configure(is_null_level=True),
            cll.CustomLevel(
                "birth_date_l IS NULL OR birth_date_r IS NULL",
                label_for_charts="Birth date missing on one side",
                base_dialect_str="duckdb",
            ),
        ]
    return cl.CustomComparison(output_column_name="birth_date", comparison_levels=levels)
