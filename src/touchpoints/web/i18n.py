"""The dashboard's languages: message catalogs, the choice of language, and numbers and dates
written the way the reader's language writes them.

Texts are gettext messages with English as the source language. The catalogs are the
``.po`` files under ``web/locale/<language>/LC_MESSAGES/messages.po`` (docs/translating.md says
how to extract and update them); they are read and compiled in memory when the dashboard
starts, so there is no build step and no ``.mo`` file in the repository.

A request's language is the ``tp_lang`` cookie (set by the switch on every page), else the
best match for the browser's ``Accept-Language`` (Babel's ``negotiate_locale``), else English.

Messages are formatted as Jinja's new-style gettext formats them, in the templates and in
Python alike: placeholders are named (``%(count)s``), a message is always %-formatted, so a
literal percent sign is written ``%%`` (``_("%% of step 1")``), and one message works in both.

Numbers and dates go through :class:`Language` (Babel): ``1,234.5`` in English and
``1.234,5`` in German. English writes days and moments as ISO 8601 (``2026-07-01 14:03``):
read the same way in the US and in the UK, and the form the API and the CSV downloads use.
Other languages write them as their CLDR locale does (German: ``01.07.2026, 14:03``).
Times are UTC, as stored.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Self

from babel import Locale, negotiate_locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
LANGUAGES = ("en", "de")  # English first: the source language and the default
DEFAULT = "en"
COOKIE = "tp_lang"
COOKIE_SECONDS = 365 * 86400


def N_(message: str) -> str:
    """Mark ``message`` for the catalogs without translating it here (a module constant is
    made before any request has a language: translate it where it is shown)."""
    return message


def NP_(context: str, message: str) -> str:
    """Like :func:`N_`, for a message with a context (``pgettext``): the same English word can
    need two translations (the channel "other", an "other" step)."""
    return message


# -- the catalogs -----------------------------------------------------------------------------
def catalog_path(code: str) -> Path:
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_translations(code: str) -> Translations:
    """The translations of ``code`` from its ``.po`` file, compiled in memory (fuzzy entries
    are left out, as ``msgfmt`` leaves them out)."""
    with catalog_path(code).open("rb") as po:
        catalog = read_po(po, locale=code, domain=DOMAIN)
    mo = io.BytesIO()
    write_mo(mo, catalog)
    mo.seek(0)
    return Translations(fp=mo, domain=DOMAIN)


def load() -> dict[str, Language]:
    """Every language the dashboard speaks, by its code, English first."""
    return {code: Language(code, read_translations(code)) for code in LANGUAGES}


# -- the choice of language -------------------------------------------------------------------
def accepted(header: str | None) -> list[str]:
    """The language tags of an ``Accept-Language`` header, most wanted first (by ``q``, then
    in the order given); ``*`` and tags with ``q=0`` are left out."""
    found: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")):
        tag, _sep, params = part.strip().partition(";")
        tag = tag.strip()
        weight = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag and tag != "*" and weight > 0:
            found.append((-weight, index, tag))
    return [tag for _weight, _index, tag in sorted(found)]


def negotiate(header: str | None, available: tuple[str, ...] = LANGUAGES) -> str | None:
    """The language of ``available`` that best fits an ``Accept-Language`` header (``de-CH``
    finds ``de``), or None when none does."""
    found = negotiate_locale(accepted(header), available, sep="-")
    if found is None:
        return None
    code = found.split("-")[0].lower()
    return code if code in available else None


def choose(cookie: str | None, header: str | None, available: tuple[str, ...] = LANGUAGES) -> str:
    """A request's language: the one its cookie names, else its browser's, else English."""
    if cookie in available:
        return str(cookie)
    return negotiate(header, available) or DEFAULT


# -- messages that are translated late ---------------------------------------------------------
class Explained(Exception):
    """An error whose message is a catalog message with parameters: ``str(exc)`` is the
    English text (for logs, the API and tests); :meth:`Language.explain` says it in the
    reader's language. Mark the message with :func:`N_` so that it is extracted."""

    def __init__(self, msgid: str, **params: Any) -> None:
        self.msgid = msgid
        self.params = params
        super().__init__(msgid % params)

    @classmethod
    def as_given(cls, text: str) -> Self:
        """An error with a message that is in no catalog (a service's reason, in English as
        the API gives it), shown as it is in every language."""
        return cls(text.replace("%", "%%"))


# -- one language -----------------------------------------------------------------------------
# Units of a duration, largest first: (seconds, English symbol). The symbol is a catalog
# message (context "unit"), so German can write "Std." for "h".
_UNITS = (
    # Translators: the symbols of day, hour, minute and second after a number ("3.2 h").
    (86400, NP_("unit", "d")),
    (3600, NP_("unit", "h")),
    (60, NP_("unit", "min")),
    (1, NP_("unit", "s")),
)


@dataclass(frozen=True)
class Language:
    """Texts and number and date formats of one language (``en``, ``de``)."""

    code: str
    translations: Translations
    locale: Locale = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "locale", Locale.parse(self.code))

    @property
    def name(self) -> str:
        """The language's own name for itself: "English", "Deutsch"."""
        name = self.locale.get_display_name(self.locale) or self.code
        return name[:1].upper() + name[1:]

    # -- texts ---------------------------------------------------------------------------------
    def gettext(self, message: str, **variables: Any) -> str:
        """``message`` in this language, formatted with ``variables`` (always: ``%%`` is a
        percent sign), as ``_()`` in the templates."""
        return str(self.translations.gettext(message)) % variables

    def ngettext(self, singular: str, plural: str, n: int, **variables: Any) -> str:
        """The form of ``singular``/``plural`` for ``n`` (``%(num)s`` is ``n`` unless given)."""
        variables.setdefault("num", n)
        return str(self.translations.ngettext(singular, plural, n)) % variables

    def pgettext(self, context: str, message: str, **variables: Any) -> str:
        """``message`` in ``context`` (the channel "other" is not the step "(other)")."""
        return str(self.translations.pgettext(context, message)) % variables

    def translate(self, message: str, context: str | None = None, **variables: Any) -> str:
        """A message marked where it was made (:func:`N_`, :func:`NP_`) and translated where
        it is shown: a navigation label, a label of :mod:`~touchpoints.web.labels`, an
        :class:`Explained` error. (``gettext`` with a literal is what the extraction reads;
        this says that the message is a variable on purpose.)"""
        if context is not None:
            return self.pgettext(context, message, **variables)
        return self.gettext(message, **variables)

    def explain(self, exc: BaseException) -> str:
        """An error's message in this language when it is :class:`Explained`; any other
        error's as it is (the services' reasons are English, as the API gives them)."""
        if isinstance(exc, Explained):
            return self.translate(exc.msgid, **exc.params)
        return str(exc)

    # -- numbers -------------------------------------------------------------------------------
    def number(self, value: Any) -> str:
        """A count with thousands separators (``1,234`` / ``1.234``); a fraction with one
        decimal (``12.5`` / ``12,5``); None as nothing; anything else as it is."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int):
            return format_decimal(value, "#,##0", locale=self.locale)
        if isinstance(value, float | Decimal):
            return self.decimal(value, 1)
        return str(value)

    def decimal(self, value: float | Decimal, digits: int = 1, grouping: bool = True) -> str:
        """``value`` with ``digits`` after the decimal sign. Rounded as Python rounds a float
        (``f"{value:.1f}"``), so a page and a test that formats the API's number agree."""
        rounded = Decimal(format(value, f".{digits}f"))
        pattern = ("#,##0" if grouping else "0") + ("." + "0" * digits if digits else "")
        return format_decimal(rounded, pattern, locale=self.locale)

    def percent(self, value: float | None, digits: int = 1) -> str:
        """A percentage (already times 100) as ``12.5 %`` / ``12,5 %``; None as nothing."""
        return "" if value is None else f"{self.decimal(value, digits)} %"

    # -- days and moments ----------------------------------------------------------------------
    def _patterns(self) -> tuple[str, str, str]:
        """(day, moment to the minute, moment to the second) as CLDR patterns."""
        if self.code == "en":
            return "yyyy-MM-dd", "yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss"
        day = self.locale.date_formats["medium"].pattern
        both = str(self.locale.datetime_formats["medium"])
        minute = self.locale.time_formats["short"].pattern
        second = self.locale.time_formats["medium"].pattern
        return (
            day,
            both.replace("{1}", day).replace("{0}", minute),
            both.replace("{1}", day).replace("{0}", second),
        )

    def date(self, value: date | datetime | str | None) -> str:
        """A day: ``2026-07-01`` / ``01.07.2026`` (an ISO text is read first)."""
        if value is None or value == "":
            return ""
        day = _moment(value) if isinstance(value, str) else value
        if isinstance(day, datetime):
            day = day.date()
        return format_date(day, self._patterns()[0], locale=self.locale)

    def moment(self, value: datetime | str | None, seconds: bool = False) -> str:
        """A moment in UTC: ``2026-07-01 14:03`` / ``01.07.2026, 14:03`` (with ``seconds``,
        ``14:03:27``). An ISO text (``2026-07-01T14:03:27.123Z``) is read first."""
        if value is None or value == "":
            return ""
        moment = _moment(value) if isinstance(value, str) else value
        pattern = self._patterns()[2 if seconds else 1]
        return format_datetime(moment, pattern, tzinfo=UTC, locale=self.locale)

    # -- durations -----------------------------------------------------------------------------
    def unit(self, symbol: str) -> str:
        """A unit's symbol (``d``, ``h``, ``min``, ``s``) in this language."""
        return self.translate(symbol, "unit")

    def duration(self, seconds: float | None) -> str:
        """A time in the unit that reads best: ``45 s``, ``12.5 min``, ``3.2 h``, ``14 d``
        (German: ``12,5 Min.``, ``3,2 Std.``, ``14 Tg.``); None as nothing."""
        if seconds is None:
            return ""
        for size, symbol in _UNITS[:-1]:
            if seconds >= size:
                amount = format(seconds / size, ".1f")
                digits = 0 if amount.endswith(".0") else 1
                return (
                    f"{self.decimal(Decimal(amount), digits, grouping=False)} {self.unit(symbol)}"
                )
        return f"{self.decimal(seconds, 0, grouping=False)} {self.unit('s')}"

    def span(self, lower: float, upper: float | None) -> str:
        """A range of durations, as the time-to-convert histogram labels its buckets:
        ``< 1 min``, ``1-10 min``, ``30+ d`` (in the unit of the lower bound)."""
        if not lower:
            size, symbol = _unit_of(upper or 1)
            return self.gettext(
                "< %(upper)s %(unit)s",
                upper=self.number(int((upper or 1) // size)),
                unit=self.unit(symbol),
            )
        size, symbol = _unit_of(lower)
        first, unit = self.number(int(lower // size)), self.unit(symbol)
        if upper is None:
            return self.gettext("%(lower)s+ %(unit)s", lower=first, unit=unit)
        last = self.number(int(upper // size))
        return self.gettext("%(lower)s-%(upper)s %(unit)s", lower=first, upper=last, unit=unit)

    # -- a table cell --------------------------------------------------------------------------
    def cell(self, value: Any) -> str:
        """A table cell as the page shows it: a count or fraction as :meth:`number`, a day or
        moment as :meth:`date` / :meth:`moment`, a cell with a text of its own as that."""
        text = getattr(value, "text", None)
        if isinstance(text, str):
            return text
        if isinstance(value, datetime):
            return self.moment(value)
        if isinstance(value, date):
            return self.date(value)
        return self.number(value)


def _unit_of(seconds: float) -> tuple[int, str]:
    """The largest unit that divides ``seconds`` (60 → minutes, 3600 → hours)."""
    for size, symbol in _UNITS:
        if seconds >= size and seconds % size == 0:
            return size, symbol
    return 1, "s"


def _moment(text: str) -> datetime:
    """An ISO 8601 text as a naive UTC datetime (``Z`` and offsets understood)."""
    found = datetime.fromisoformat(text)
    if found.tzinfo is not None:
        found = found.astimezone(UTC).replace(tzinfo=None)
    return found
