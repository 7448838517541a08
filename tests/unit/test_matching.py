"""Probabilistic matching on a small hand-made CRM: 30 people, 6 duplicates, 1 borderline record.

Each duplicate differs from its original the way CRM rows do: formatting only (d01), a typo in
the last name (d02), first and last name swapped with no e-mail (d03), no e-mail (d04), and one
person entered three times (p05, d05 without phone, d06 with a first-name typo and no birth
date). The data also holds two clear non-matches that share a lot: namesakes in different
cities (p06, p07) and a couple sharing surname, landline and address (p08, p09).
"""

from __future__ import annotations

import logging

import duckdb
import pyarrow as pa
import pytest
from pydantic import ValidationError

from touchpoints.identity.matching import PAIR_SCHEMA, MatchResult, MatchSettings, match_records

COLUMNS = ("record_id", "first_name", "last_name", "email", "phone", "birth_date", "postcode")
PEOPLE = [
    ("p01", "Anna", "Berg", "anna.berg@example.org", "+49 151 1000001", "1985-03-14", "10115"),
    ("p02", "Jonas", "Schmidt", "jonas.schmidt@mail.de", "+49 160 2000002", "1979-11-02", "20095"),
    ("p03", "Lukas", "Weber", "l.weber@web.de", "+49 171 3000003", "1992-07-21", "80331"),
    ("p04", "Marie", "Fischer", "marie.f@gmx.de", "+49 152 4000004", "1968-01-30", "50667"),
    ("p05", "Paul", "Wagner", "paul.wagner@posteo.de", "+49 176 5000005", "2001-05-09", "60311"),
    ("p06", "Thomas", "Müller", "t.mueller@example.org", "+49 157 6000006", "1975-09-17", "70173"),
    ("p07", "Thomas", "Müller", "tmueller@mail.de", "+49 162 7000007", "1990-02-11", "04109"),
    ("p08", "Sabine", "Koch", "sabine.koch@web.de", "+49 30 8000008", "1971-04-22", "10117"),
    ("p09", "Peter", "Koch", "peter.koch@gmx.de", "+49 30 8000008", "1969-12-05", "10117"),
    (
        "p10",
        "Laura",
        "Schulz",
        "laura.schulz@t-online.de",
        "+49 155 1000010",
        "1988-06-06",
        "28195",
    ),
    ("p11", "Felix", "Becker", "felix.becker@gmx.de", "+49 159 1000011", "1983-08-19", "01067"),
    ("p12", "Lena", "Hoffmann", "lena.h@web.de", "+49 170 1000012", "1995-12-24", "30159"),
    ("p13", "Tim", "Schäfer", "tim.schaefer@mail.de", "+49 172 1000013", "1966-02-03", "90402"),
    ("p14", "Mia", "Richter", "mia.richter@posteo.de", "+49 173 1000014", "2003-10-10", "47051"),
    ("p15", "Jan", "Klein", "jan.klein@example.org", "+49 174 1000015", "1958-05-27", "44787"),
    ("p16", "Sophie", "Wolf", "sophie.wolf@gmx.de", "+49 175 1000016", "1999-03-03", "42103"),
    ("p17", "Niklas", "Schröder", "niklas.s@web.de", "+49 177 1000017", "1987-07-07", "33602"),
    ("p18", "Emma", "Neumann", "emma.neumann@mail.de", "+49 178 1000018", "1993-01-15", "53111"),
    (
        "p19",
        "Leon",
        "Schwarz",
        "leon.schwarz@t-online.de",
        "+49 179 1000019",
        "1981-11-11",
        "48143",
    ),
    ("p20", "Hannah", "Zimmermann", "hannah.z@gmx.de", "+49 151 1000020", "1977-04-04", "68159"),
    ("p21", "Finn", "Braun", "finn.braun@posteo.de", "+49 152 1000021", "2000-09-30", "76133"),
    ("p22", "Lea", "Krüger", "lea.krueger@web.de", "+49 157 1000022", "1990-06-18", "86150"),
    ("p23", "Ben", "Hofmann", "ben.hofmann@example.org", "+49 160 1000023", "1972-12-12", "65183"),
    (
        "p24",
        "Clara",
        "Hartmann",
        "clara.hartmann@mail.de",
        "+49 162 1000024",
        "1986-02-28",
        "24103",
    ),
    ("p25", "Elias", "Lange", "elias.lange@gmx.de", "+49 163 1000025", "1964-08-08", "79098"),
    ("p26", "Ida", "Schmitt", "ida.schmitt@web.de", "+49 170 1000026", "1997-05-05", "18055"),
    ("p27", "Noah", "Werner", "noah.werner@posteo.de", "+49 171 1000027", "1980-10-01", "99084"),
    ("p28", "Lina", "Krause", "lina.krause@t-online.de", "+49 172 1000028", "1991-03-21", "55116"),
    ("p29", "Luis", "Meier", "luis.meier@gmx.de", "+49 173 1000029", "1974-07-14", "93047"),
    ("p30", "Greta", "Lehmann", "greta.lehmann@mail.de", "+49 174 1000030", "1960-01-01", "10115"),
]
CITIES = {
    "10115": "Berlin",
    "10117": "Berlin",
    "20095": "Hamburg",
    "80331": "München",
    "50667": "Köln",
    "60311": "Frankfurt am Main",
    "70173": "Stuttgart",
    "04109": "Leipzig",
    "28195": "Bremen",
    "01067": "Dresden",
    "30159": "Hannover",
    "90402": "Nürnberg",
    "47051": "Duisburg",
    "44787": "Bochum",
    "42103": "Wuppertal",
    "33602": "Bielefeld",
    "53111": "Bonn",
    "48143": "Münster",
    "68159": "Mannheim",
    "76133": "Karlsruhe",
    "86150": "Augsburg",
    "65183": "Wiesbaden",
    "24103": "Kiel",
    "79098": "Freiburg im Breisgau",
    "18055": "Rostock",
    "99084": "Erfurt",
    "55116": "Mainz",
    "93047": "Regensburg",
}
DUPLICATES = [
    ("d01", "  ANNA ", "berg", "Anna.Berg@Example.ORG ", "0151 1000001", "1985-03-14", "101 15"),
    ("d02", "Jonas", "Schmitd", "jonas.schmidt@mail.de", "0160/2000002", "1979-11-02", "20095"),
    ("d03", "Weber", "Lukas", None, "0049 171 3000003", "1992-07-21", "80331"),
    ("d04", "Marie", "Fischer", None, "0152 4000004", "1968-01-30", "50667"),
    ("d05", "Paul", "Wagner", "paul.wagner@posteo.de", None, "2001-05-09", "60311"),
    ("d06", "Pual", "Wagner", "paul.wagner@posteo.de", "+49 176 5000005", None, "60311"),
]
# The same rare full name and postcode as p10, nothing else: evidence, but nothing confirms it.
BORDERLINE = [("a01", "Laura", "Schulz", None, None, None, "28195")]
RECORDS = [
    {**dict(zip(COLUMNS, row, strict=True)), "city": CITIES[row[6].replace(" ", "")]}
    for row in PEOPLE + DUPLICATES + BORDERLINE
]
DUPLICATE_PAIRS = {
    ("d01", "p01"),
    ("d02", "p02"),
    ("d03", "p03"),
    ("d04", "p04"),
    ("d05", "d06"),
    ("d05", "p05"),
    ("d06", "p05"),
}
CLEAR_NON_MATCHES = {("p06", "p07"), ("p08", "p09")}


def pairs(table: pa.Table) -> set[tuple[str, str]]:
    return set(zip(table["record_id_l"].to_pylist(), table["record_id_r"].to_pylist(), strict=True))


def probabilities(result: MatchResult) -> dict[tuple[str, str], float]:
    both = pa.concat_tables([result.accepted, result.review]).to_pylist()
    return {(r["record_id_l"], r["record_id_r"]): r["match_probability"] for r in both}


@pytest.fixture(scope="module")
def result() -> MatchResult:
    return match_records(RECORDS, MatchSettings())


def test_obvious_duplicates_are_accepted_and_nothing_else(result: MatchResult) -> None:
    assert pairs(result.accepted) == DUPLICATE_PAIRS
    assert min(result.accepted["match_probability"].to_pylist()) >= 0.9


def test_clear_non_matches_are_neither_accepted_nor_reviewed(result: MatchResult) -> None:
    scored = pairs(result.accepted) | pairs(result.review)
    assert not scored & CLEAR_NON_MATCHES


def test_borderline_pair_is_listed_for_review_not_accepted(result: MatchResult) -> None:
    assert pairs(result.review) == {("a01", "p10")}
    assert 0.5 <= probabilities(result)[("a01", "p10")] < 0.9


def test_raising_the_threshold_moves_the_weakest_pair_into_review(result: MatchResult) -> None:
    """Training does not depend on the threshold, so the same pairs are only split differently.

    d05-d06 is the weakest duplicate: a first-name typo, no birth date on one side, no phone on
    the other; only e-mail and postcode agree exactly. A threshold just above it moves it alone.
    """
    before = probabilities(result)
    ranked = sorted(pairs(result.accepted), key=before.__getitem__)
    assert ranked[0] == ("d05", "d06")
    threshold = (before[ranked[0]] + before[ranked[1]]) / 2
    strict = match_records(
        RECORDS, MatchSettings(threshold=threshold, review_band=(0.5, threshold))
    )
    assert pairs(strict.accepted) == set(ranked[1:])
    assert pairs(strict.review) == pairs(result.review) | {("d05", "d06")}


def test_training_survives_a_level_no_duplicate_reaches() -> None:
    """No duplicate here has an exact last name with another first name. Training on full names
    as well, EM estimates that level's m as 0.0, which Splink 5.0.0 alone refuses and aborts on
    (see ``_floor_em_probabilities``); with the floor, training ends with the same answer."""
    settings = MatchSettings(em_rules=(("first_name", "last_name"), ("birth_date",)))
    assert pairs(match_records(RECORDS, settings).accepted) == DUPLICATE_PAIRS


def test_pairs_are_sorted_by_ids_and_typed(result: MatchResult) -> None:
    for table in (result.accepted, result.review):
        assert table.schema == PAIR_SCHEMA
        left, right = table["record_id_l"].to_pylist(), table["record_id_r"].to_pylist()
        keys = list(zip(left, right, strict=True))
        assert keys == sorted(keys)
        assert all(left < right for left, right in keys)


def test_clusters_are_connected_components_of_accepted_pairs(result: MatchResult) -> None:
    assert result.clusters() == [
        ("d01", "p01"),
        ("d02", "p02"),
        ("d03", "p03"),
        ("d04", "p04"),
        ("d05", "d06", "p05"),
    ]
    chain = pa.Table.from_pylist(
        [
            {"record_id_l": "c", "record_id_r": "d", "match_probability": 0.95},
            {"record_id_l": "a", "record_id_r": "b", "match_probability": 0.99},
            {"record_id_l": "b", "record_id_r": "c", "match_probability": 0.97},
            {"record_id_l": "x", "record_id_r": "y", "match_probability": 0.91},
        ],
        schema=PAIR_SCHEMA,
    )
    assert MatchResult(chain, PAIR_SCHEMA.empty_table()).clusters() == [
        ("a", "b", "c", "d"),
        ("x", "y"),
    ]


def test_two_runs_give_identical_results(result: MatchResult) -> None:
    again = match_records(RECORDS, MatchSettings())
    assert again.accepted.equals(result.accepted)
    assert again.review.equals(result.review)


def test_formatting_differences_are_normalised_away(result: MatchResult) -> None:
    """d01 differs from p01 only in case, spaces and phone style: it scores as an exact copy."""
    copy = {**RECORDS[0], "record_id": "d01"}
    exact = match_records(
        [copy if r["record_id"] == "d01" else r for r in RECORDS], MatchSettings()
    )
    assert probabilities(exact)[("d01", "p01")] == probabilities(result)[("d01", "p01")]


def test_arrow_input_on_a_callers_connection_leaves_it_as_found(result: MatchResult) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.execute("SET enable_progress_bar = true")
    catalog = con.sql("SELECT table_name FROM information_schema.tables").fetchall()
    on_con = match_records(pa.Table.from_pylist(RECORDS), MatchSettings(), con)
    assert on_con.accepted.equals(result.accepted)
    assert con.sql("SELECT table_name FROM information_schema.tables").fetchall() == catalog
    assert con.sql("SELECT current_setting('enable_progress_bar')").fetchall() == [(True,)]


def test_splink_writes_nothing_to_logs_or_console(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="splink")
    match_records(RECORDS[:12] + RECORDS[30:34], MatchSettings())  # p01-p12, d01-d04
    assert [r.name for r in caplog.records if r.name.startswith("splink")] == []
    assert capsys.readouterr() == ("", "")
    assert logging.getLogger("splink").level == logging.DEBUG  # restored afterwards


def test_fewer_than_two_records_match_nothing() -> None:
    assert match_records(RECORDS[:1], MatchSettings()) == MatchResult.empty()
    assert match_records([], MatchSettings()).accepted.num_rows == 0


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"threshold": 1.5}, ("threshold",), "less than 1"),
        ({"comparisons": ("name", "age")}, ("comparisons", 1), "'name'"),
        ({"comparisons": ("email", "email")}, ("comparisons",), "more than once: email"),
        ({"blocking_rules": (("zip",),)}, ("blocking_rules", 0, 0), "'postcode'"),
        ({"blocking_rules": ((),)}, ("blocking_rules",), "rule 0 is empty"),
        ({"review_band": (0.5, 0.8)}, ("review_band",), "must equal threshold 0.9"),
        ({"review_band": (0.95, 0.9)}, ("review_band",), "at most threshold"),
        ({"em_rules": (("birth_date",),)}, ("em_rules",), "'birth_date'"),
        (
            {"comparisons": ("email",), "em_rules": (("email",),)},
            ("em_rules",),
            "blocks on every comparison",
        ),
        ({"phone_region": "XX"}, ("phone_region",), "'XX'"),
        ({"tresh": 0.8}, ("tresh",), "Extra inputs are not permitted"),
    ],
)
def test_settings_errors_name_the_field(kwargs: dict, field: tuple, words: str) -> None:
    errors = settings_errors(**kwargs)
    assert [e["loc"] for e in errors] == [field]
    assert words in errors[0]["msg"]


def settings_errors(**kwargs: object) -> list:
    """The errors, without their exceptions: a kept traceback is a reference cycle that
    outlives the test and makes DuckDB's bindings report leaks at interpreter exit."""
    try:
        MatchSettings(**kwargs)  # type: ignore[arg-type]
    except ValidationError as error:
        return error.errors(include_url=False, include_context=False)
    raise AssertionError(f"settings {kwargs} were accepted")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"record_id": "p01"}, "used more than once: 'p01'"),
        ({"record_id": None}, "1 record(s) have no record_id"),
        ({"birth_date": "14.03.1985"}, "not an ISO date (YYYY-MM-DD) in record_id 'd01'"),
    ],
)
def test_bad_records_are_refused_by_id_never_by_value(change: dict, words: str) -> None:
    records = [{**r, **change} if r["record_id"] == "d01" else r for r in RECORDS]
    with pytest.raises(ValueError) as caught:
        match_records(records, MatchSettings())
    assert words in str(caught.value)
    assert "14.03.1985" not in str(caught.value)


def test_a_training_rule_that_pairs_no_records_is_named() -> None:
    """p01-p12 share no e-mail, so the default EM rule on e-mail has nothing to learn from."""
    with pytest.raises(ValueError, match=r"em_rules\[0\] \['email'\]: no two records"):
        match_records(RECORDS[:12], MatchSettings())


def test_a_column_the_settings_use_must_be_present() -> None:
    records = [{k: v for k, v in r.items() if k != "phone"} for r in RECORDS]
    with pytest.raises(ValueError, match="no column 'phone'"):
        match_records(records, MatchSettings())
    settings = MatchSettings(
        comparisons=("name", "birth_date", "email", "postcode"),
        blocking_rules=(("first_name", "last_name"), ("email",)),
    )
    assert pairs(match_records(records, settings).accepted) >= {("d01", "p01"), ("d02", "p02")}


def test_a_comparison_on_a_field_no_record_has_is_refused_by_name() -> None:
    records = [{**r, "phone": None} for r in RECORDS]
    with pytest.raises(ValueError, match=r"comparisons\[3\] 'phone' reads phone, which no record"):
        match_records(records, MatchSettings())


def test_a_prior_outside_zero_and_one_is_refused() -> None:
    for prior in (0.0, 1.0, -0.1):
        errors = settings_errors(prior=prior)
        assert [e["loc"] for e in errors] == [("prior",)]
