"""The dashboard's message catalogs are complete: extracting the messages from the templates
and page modules now (with the project's own Babel configuration) finds exactly the messages
of the catalogs, and every one of them has a German translation that is not fuzzy and keeps
its placeholders. A text added to a page without its German fails here; so does a catalog not
updated after a text changed (docs/translating.md says how)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from touchpoints.web.i18n import LANGUAGES, LOCALE_DIR, catalog_path

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The messages the code uses today, extracted as `pybabel extract -F pyproject.toml`
    does (docs/translating.md)."""
    out = tmp_path_factory.mktemp("catalogs") / "messages.pot"
    CommandLineInterface().run(
        ["pybabel", "--quiet", "extract", "-F", str(ROOT / "pyproject.toml"), "-o", str(out),
         str(ROOT / "src" / "touchpoints" / "web")]
    )  # fmt: skip
    with out.open("rb") as pot:
        return read_po(pot)


def _read(code: str) -> Catalog:
    with catalog_path(code).open("rb") as po:
        return read_po(po, locale=code)


def _keys(catalog: Catalog) -> set[tuple[str | None, str]]:
    return {(m.context, _first(m)) for m in catalog if m.id}


def _first(message: Message) -> str:
    return _texts(message.id)[0]


def _texts(value: object) -> list[str]:
    """A message's id or string as a list: one text, or the forms of a plural."""
    return [str(v or "") for v in value] if isinstance(value, tuple | list) else [str(value or "")]


def test_extraction_finds_the_messages_of_every_catalog_and_no_other(extracted: Catalog) -> None:
    used = _keys(extracted)
    assert len(used) > 300
    for code in LANGUAGES:
        catalog = _keys(_read(code))
        assert not used - catalog, f"{code}: not in the catalog yet (update it): {used - catalog}"
        assert not catalog - used, f"{code}: no longer used (update the catalog): {catalog - used}"
    with (LOCALE_DIR / "messages.pot").open("rb") as pot:
        assert _keys(read_po(pot)) == used, "messages.pot is out of date: extract again"


def test_every_message_has_its_german_translation_with_its_placeholders() -> None:
    catalog = _read("de")
    assert catalog.num_plurals == 2
    problems = []
    for message in catalog:
        if not message.id:
            continue
        ids, strings = _texts(message.id), _texts(message.string)
        forms = catalog.num_plurals if message.pluralizable else 1
        if message.fuzzy or not all(strings) or len(strings) != forms:
            problems.append(f"untranslated or fuzzy: {message.id!r}")
            continue
        expected = set(PLACEHOLDER.findall(ids[-1])) | set(PLACEHOLDER.findall(ids[0]))
        for string in strings:
            found = set(PLACEHOLDER.findall(string))
            # A singular may leave out %(num)s ("ein Ereignis"); nothing else may go.
            if found - expected or expected - found - {"num"}:
                problems.append(f"placeholders of {message.id!r}: {sorted(found)}")
            if string.count("%") != string.count("%(") + 2 * string.count("%%"):
                problems.append(f"a lone % in {string!r}: write %% for a percent sign")
            if string.count("<") != ids[0].count("<"):
                problems.append(f"markup of {message.id!r} changed in {string!r}")
    assert not problems, "\n".join(problems)


TEMPLATES = ROOT / "src" / "touchpoints" / "web" / "templates"
_NOT_TEXT = re.compile(
    r"<(style|script|pre)\b.*?</\1>"  # styles, scripts, code
    r"|{%-?\s*trans\b.*?endtrans\s*-?%}"  # a message with markup
    r"|{#.*?#}|{{.*?}}|{%.*?%}",  # comments, expressions, statements
    re.S,
)
_TEXT_ATTRIBUTE = re.compile(r'\b(placeholder|title|aria-label|alt|data-confirm)="([^"]*)"')


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_every_text_of_a_template_goes_through_the_catalog(template: str) -> None:
    """No text written straight into a template (a page added later is bilingual from the
    start): what is left after its expressions, messages, markup and code is no word but the
    product's name (a unit or symbol, "14d", "p=", may stay)."""
    source = (TEMPLATES / template).read_text()
    for attribute, value in _TEXT_ATTRIBUTE.findall(source):
        assert not re.search(r"[A-Za-z]{2}", _NOT_TEXT.sub("", value)), f"{attribute}={value!r}"
    text = re.sub(r"<[^>]+>", " ", _NOT_TEXT.sub(" ", source))
    words = set(re.findall(r"[A-Za-z][A-Za-z'’-]+", text)) - {"touchpoints"}
    assert not words, f"{template}: text outside _() or {{% trans %}}: {sorted(words)}"


def test_the_english_catalog_is_the_source_language() -> None:
    """English is the source language: its catalog is the identity (an empty msgstr shows
    the msgid), so the English texts are where they are used."""
    for message in _read("en"):
        assert not message.id or not any(_texts(message.string)), message.id
