"""The dashboard's languages: the choice of language (cookie, then Accept-Language, then
English) and numbers, days, moments and durations written per language."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from touchpoints.journeys.funnels import BUCKETS
from touchpoints.web import labels
from touchpoints.web.app import Shown, Table
from touchpoints.web.i18n import N_, Explained, accepted, choose, load, negotiate
from touchpoints.web.pages.funnels import duration

LANGUAGES = load()
EN, DE = LANGUAGES["en"], LANGUAGES["de"]


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ("de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7", ["de-DE", "de", "en-US", "en"]),
        ("en;q=0.5, de", ["de", "en"]),  # by weight, not by place
        ("fr-CH, fr;q=0.9, *;q=0.5", ["fr-CH", "fr"]),  # the wildcard chooses nothing
        ("de;q=0, en", ["en"]),  # q=0: not acceptable
        ("de;q=high, en", ["en"]),  # a weight that cannot be read counts as 0
        ("", []),
        (None, []),
    ],
)
def test_accept_language_is_read_most_wanted_first(header: str | None, tags: list[str]) -> None:
    assert accepted(header) == tags


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("de-CH", "de"),  # a region finds its language
        ("DE-at", "de"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR, de;q=0.5", "de"),  # the first language we speak
        ("fr-FR, es", None),
        ("", None),
    ],
)
def test_the_browser_language_is_negotiated_with_babel(header: str, language: str | None) -> None:
    assert negotiate(header) == language


def test_the_cookie_wins_over_the_browser_and_english_is_the_default() -> None:
    assert choose("en", "de-DE") == "en"
    assert choose("de", "en-US") == "de"
    assert choose("xx", "de-DE") == "de"  # a cookie naming no language of ours is ignored
    assert choose(None, "fr-FR") == "en"
    assert choose(None, None) == "en"


def test_languages_name_themselves() -> None:
    assert (EN.name, DE.name) == ("English", "Deutsch")


def test_numbers_are_written_per_language() -> None:
    assert (EN.number(1234567), DE.number(1234567)) == ("1,234,567", "1.234.567")
    assert (EN.number(1234.56), DE.number(1234.56)) == ("1,234.6", "1.234,6")
    assert (EN.number(0), DE.number(-3)) == ("0", "-3")
    assert EN.number(None) == "" and EN.number("web") == "web" and EN.number(True) == "True"
    assert (EN.decimal(0.5, 3), DE.decimal(0.5, 3)) == ("0.500", "0,500")
    assert (EN.percent(12.5), DE.percent(12.5), EN.percent(None)) == ("12.5 %", "12,5 %", "")


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), st.integers(0, 3))
def test_decimals_round_as_python_rounds_a_float(value: float, digits: int) -> None:
    """A page and a test that writes the API's number with f"{x:.1f}" agree, also at .x5."""
    assert EN.decimal(value, digits).replace(",", "") == f"{value:.{digits}f}"
    assert DE.decimal(value, digits).replace(".", "").replace(",", ".") == f"{value:.{digits}f}"


def test_days_and_moments_are_iso_in_english_and_german_in_german() -> None:
    moment = datetime(2026, 7, 1, 14, 3, 27, 123000)
    assert (EN.date(date(2026, 7, 1)), DE.date(date(2026, 7, 1))) == ("2026-07-01", "01.07.2026")
    assert (EN.moment(moment), DE.moment(moment)) == ("2026-07-01 14:03", "01.07.2026, 14:03")
    assert DE.moment(moment, seconds=True) == "01.07.2026, 14:03:27"
    # ISO texts as the API writes them, and moments with a zone: shown in UTC.
    assert DE.moment("2026-07-01T14:03:27.123Z") == "01.07.2026, 14:03"
    berlin = timezone(timedelta(hours=2))
    assert EN.moment(datetime(2026, 7, 1, 16, 3, tzinfo=berlin)) == "2026-07-01 14:03"
    assert EN.moment(datetime(2026, 7, 1, 14, 3, tzinfo=UTC)) == "2026-07-01 14:03"
    assert DE.date("2026-07-01T23:59:00Z") == "01.07.2026"
    assert EN.date(None) == EN.moment("") == ""


@given(st.floats(min_value=0, max_value=400 * 86400, allow_nan=False))
def test_an_english_duration_is_the_csv_form(seconds: float) -> None:
    assert EN.duration(seconds) == duration(seconds)


def test_durations_and_their_ranges_in_german() -> None:
    assert [DE.duration(s) for s in (45, 750, 11520, 14 * 86400, None)] == [
        "45 Sek.",
        "12,5 Min.",
        "3,2 Std.",
        "14 Tg.",
        "",
    ]
    # The time-to-convert buckets: English as the service labels them; German in its units.
    bounds = [(lower, BUCKETS[i + 1][1] if i + 1 < len(BUCKETS) else None)
              for i, (_label, lower) in enumerate(BUCKETS)]  # fmt: skip
    assert [EN.span(lo, hi) for lo, hi in bounds] == [label for label, _lower in BUCKETS]
    assert [DE.span(lo, hi) for lo, hi in bounds[:4]] == ["< 1 Min.", "1–10 Min.", "10–60 Min.",
                                                          "1–6 Std."]  # fmt: skip
    assert DE.span(*bounds[-1]) == "30+ Tg."


def test_an_explained_error_is_english_in_str_and_translated_on_the_page() -> None:
    error = Explained(N_("%(name)s: give a whole number, not %(text)s"), name="depth", text="'x'")
    assert str(error) == "depth: give a whole number, not 'x'"
    assert DE.explain(error) == "depth: Geben Sie eine ganze Zahl an, nicht 'x'"
    assert DE.explain(ValueError("a service's reason")) == "a service's reason"
    assert str(Explained.as_given("100% sure")) == DE.explain(Explained.as_given("100% sure"))


def test_new_style_messages_format_always_and_know_plurals() -> None:
    assert EN.gettext("%% of step 1") == "% of step 1"
    assert DE.gettext("%% of step 1") == "% von Schritt 1"
    assert DE.gettext("week %(n)s", n=3) == "Woche 3"
    singular, plural = "seen together in %(num)s event", "seen together in %(num)s events"
    assert DE.ngettext(singular, plural, 1) == "zusammen gesehen in 1 Ereignis"
    assert DE.ngettext(singular, plural, 2) == "zusammen gesehen in 2 Ereignissen"
    assert DE.gettext("a message in no catalog") == "a message in no catalog"


def test_labels_of_our_names_and_data_as_it_is() -> None:
    assert labels.channel(EN, "mobile_app") == "mobile_app"  # English: the name itself
    assert labels.channel(DE, "mobile_app") == "Mobile App"
    assert labels.stage(DE, "awareness") == "Aufmerksamkeit"
    assert labels.stage(DE, "Beratung") == "Beratung"  # a stage model's own name
    assert labels.channel(DE, None) == ""
    assert labels.placeholder(DE, "(other)") == "(Sonstige)"
    assert labels.label(DE, "age group", "unknown") == "unbekannt"
    assert labels.label(DE, "age group", "18-24") == "18-24"
    # Every name has a German label that differs from the others of its kind.
    for known in (labels.CHANNELS, labels.STAGES, labels.MODELS, labels.MERGE_KINDS):
        kind = next(k for k, v in labels._KINDS.items() if v is known)
        shown = [labels.label(DE, kind, name) for name in known]
        assert len(set(shown)) == len(shown), kind


def test_a_table_shows_labels_and_local_numbers_and_its_csv_stays_machine_readable() -> None:
    table = Table(
        "t",
        "A table",
        ["channel", "events", "share %", "day", "at"],
        [
            [
                Shown("mobile_app", "Mobile App"),
                1234,
                12.5,
                date(2026, 7, 1),
                datetime(2026, 7, 1, 14, 3),
            ]
        ],
    )
    assert table.csv().splitlines()[1] == "mobile_app,1234,12.5,2026-07-01,2026-07-01T14:03:00.000Z"
    assert [DE.cell(value) for value in table.rows[0]] == [
        "Mobile App",
        "1.234",
        "12,5",
        "01.07.2026",
        "01.07.2026, 14:03",
    ]
