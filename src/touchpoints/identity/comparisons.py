"""The comparisons matching can make, as Splink comparisons: what counts as agreement on a
field, at which levels. German CRM data shaped them (issue 16): names arrive normalised
(umlauts and ß written out, hyphens as spaces: ``store.matching.german_name_sql``), may be
swapped, and a double first name may be cut short; birth dates may have day and month
transposed or one digit off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl


def splink_comparisons(
    names: Sequence[str], name_comparison: str, date_transposed: bool
) -> list[Any]:
    """Splink's comparisons for the named ones, in order ("name" split makes two)."""
    comparisons = {
        "name": _name_comparisons if name_comparison == "split" else _joint_names,
        "birth_date": lambda: _birth_date_comparison(date_transposed),
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
    ("hans peter" / "hans"); Jaro-Winkler at 0.92 and 0.88; anything else.
    """
    return [
        _name_comparison("first_name", "last_name", "first name"),
        _name_comparison("last_name", "first_name", "last name"),
    ]


def _name_comparison(column: str, other: str, label: str) -> Any:
    levels: list[Any] = [
        cll.NullLevel(column),
        cll.ExactMatchLevel(column).configure(
            tf_adjustment_column=column, label_for_charts=f"Exact match on {label}"
        ),
        # The names swapped: one piece of evidence, so counted once, under the first name;
        # the last name's level is neutral (weight 0, like a missing value). Counted in both,
        # namesakes entered the other way round ("Meyer, Klaus") outweighed any birth date.
        cll.CustomLevel(
            f"{column}_l = {other}_r AND {column}_r = {other}_l",
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
    levels += [
        cll.JaroWinklerLevel(column, threshold).configure(
            label_for_charts=f"Jaro-Winkler >= {threshold}"
        )
        for threshold in (0.92, 0.88)
    ]
    return cl.CustomComparison(
        output_column_name=column, comparison_levels=[*levels, cll.ElseLevel()]
    )


def _birth_date_comparison(transposed_level: bool) -> Any:
    """Splink's date-of-birth levels (exact; one character off, which is one digit off;
    within a month, a year, ten years) and one more before the fuzzy ones: day and month
    transposed (04.03. for 03.04.), a common slip between date formats."""
    levels = cl.DateOfBirthComparison("birth_date", input_is_string=False)
    if not transposed_level:
        return levels
    created = levels.create_comparison_levels()
    transposed = cll.CustomLevel(
        "year(birth_date_l) = year(birth_date_r) AND month(birth_date_l) = day(birth_date_r) "
        "AND day(birth_date_l) = month(birth_date_r)",
        label_for_charts="Day and month transposed",
        base_dialect_str="duckdb",
    )
    return cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[*created[:2], transposed, *created[2:]],
    )
