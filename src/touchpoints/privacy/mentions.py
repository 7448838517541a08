"""Whether a document mentions a person: what was sent as it was sent (a quarantined event or
body, a rejected import line) names identifiers in the sender's spelling, not in their
normal form (``Anna@Example.COM``, ``0171 2345678`` for ``+491712345678``).

A value counts as mentioned when a string of the document (every string in a JSON document,
else every field of a CSV line or word of the text) equals it letter case aside; a phone
number when a string's digits end with the number's national digits (at least six), which
finds the international, national and spaced spellings of one number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import phonenumbers

_FIELDS = re.compile(r'[;,\t|"\'\s]+')


class Mentions:
    """The spellings of one person's identifiers to look for."""

    def __init__(self, values: Iterable[tuple[str, str]]) -> None:
        self.words: set[str] = set()
        self.phones: set[str] = set()
        for id_type, value in values:
            self.words.add(value.strip().lower())
            if id_type == "phone":
                national = _national(value)
                if national is not None:
                    self.phones.add(national)

    def in_text(self, text: str | None) -> bool:
        """Whether ``text`` (JSON, a CSV line, anything) mentions one of the identifiers."""
        if not text:
            return False
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            return self._any(_FIELDS.split(text)) or self._phone_in(text)
        return self._any(_strings(document))

    def _any(self, strings: Iterable[str]) -> bool:
        for item in strings:
            word = item.strip().lower()
            if word in self.words or (self.phones and self._phone_in(word)):
                return True
        return False

    def _phone_in(self, text: str) -> bool:
        digits = re.sub(r"\D", "", text)
        return len(digits) >= 6 and any(digits.endswith(n) for n in self.phones)


def _national(value: str) -> str | None:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    national = str(number.national_number)
    return national if len(national) >= 6 else None


def _strings(document: Any) -> Iterator[str]:
    """Every string and number in a JSON document, keys too (a trait may be keyed by one);
    walked without recursion, as deep as JSON goes. A string that holds a document (a reject
    file keeps the line as it was sent, a JSON or CSV line, in ``raw``) is read as one: its
    JSON walked, else its fields."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                yield str(key)
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            yield item
            if item[:1] in ("{", "["):
                try:
                    stack.append(orjson.loads(item))
                    continue
                except orjson.JSONDecodeError:
                    pass
            fields = _FIELDS.split(item)
            if len(fields) > 1:
                yield from fields
        elif isinstance(item, int) and not isinstance(item, bool):
            yield str(item)
