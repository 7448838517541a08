"""Redaction of stored text (``assistant_redact``): e-mail addresses, phone numbers and
card-like numbers (13 to 19 digits, spaces or dashes between, passing the Luhn check) are
replaced by a placeholder before a message is kept. What a customer typed is used as it
was for the moment it is needed (the e-mail a one-time code goes to) and never kept whole.
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}\.\d{1,2}\.\d{2,4}|\d{1,2}/\d{1,2}/\d{2,4}")
PHONE = re.compile(r"(?<![\w+-])(?:\+|00)?\d[\d /().-]{5,}\d(?!\w)")


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[card]" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    # A phone number has 7 to 15 digits (E.164); shorter runs are order numbers, dates, sums.
    if not 7 <= len(digits) <= 15 or _DATE.fullmatch(text.strip()):
        return text
    return "[phone]"


def redact(text: str) -> str:
    """``text`` with e-mail addresses, card-like numbers and phone numbers replaced."""
    text = EMAIL.sub("[email]", text)
    text = _CARD.sub(_card, text)
    return PHONE.sub(_phone, text)
