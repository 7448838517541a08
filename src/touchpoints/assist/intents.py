"""The intents file: what customers may want, with example phrases per language.

The shipped ``intents.yaml`` covers order status, delivery date, test drives, service
appointments, opening hours, the nearest dealer, complaints, cancelling or unsubscribing,
talking to a person, greetings and thanks, in German and English, and phrases that are out
of scope. An operator edits a copy (``assistant_intents``); it is validated at start.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from touchpoints.assist.files import load_file

Lang = Literal["de", "en"]
LANGUAGES: tuple[Lang, ...] = ("de", "en")
MIN_EXAMPLES = 5
# The intents whose answers the assistant knows how to give (docs/assistant.md); an intents
# file may add others: they are recognised, recorded and routed to a person.
BUILT_IN = (
    "order_status",
    "delivery_date",
    "test_drive",
    "service_appointment",
    "opening_hours",
    "nearest_dealer",
    "complaint",
    "cancel_unsubscribe",
    "human",
    "greeting",
    "thanks",
)
OUT_OF_SCOPE = "out_of_scope"

_Phrase = str


def _phrases(value: list[_Phrase], minimum: int) -> list[_Phrase]:
    cleaned = [phrase.strip() for phrase in value]
    empty = [i for i, phrase in enumerate(cleaned) if not phrase]
    if empty:
        raise ValueError(f"example {empty[0]} is empty")
    twice = sorted({p for p in cleaned if cleaned.count(p) > 1})
    if twice:
        raise ValueError(f"listed twice: {twice[0]!r}")
    if len(cleaned) < minimum:
        raise ValueError(f"give at least {minimum} examples (got {len(cleaned)})")
    return cleaned


class Examples(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    de: list[str]
    en: list[str]

    @field_validator("de", "en")
    @classmethod
    def _enough(cls, value: list[str]) -> list[str]:
        return _phrases(value, MIN_EXAMPLES)

    def of(self, language: Lang) -> list[str]:
        return self.de if language == "de" else self.en


class Intent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)
    description: str = Field(min_length=1, max_length=300)
    examples: Examples

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == OUT_OF_SCOPE:
            raise ValueError(f"{OUT_OF_SCOPE!r} is the name of what no intent covers")
        return value


class IntentFile(BaseModel):
    """The intents and the out-of-scope phrases, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intents: list[Intent]
    out_of_scope: Examples

    @model_validator(mode="after")
    def _distinct(self) -> IntentFile:
        if len(self.intents) < 2:
            raise ValueError("intents: give at least two intents")
        names = [intent.name for intent in self.intents]
        for i, name in enumerate(names):
            if names.index(name) != i:
                raise ValueError(f"intents[{i}].name: {name!r} is used twice")
        seen: dict[str, str] = {}
        for intent in self.intents:
            for phrase in (*intent.examples.de, *intent.examples.en):
                key = phrase.casefold()
                if key in seen and seen[key] != intent.name:
                    raise ValueError(
                        f"intents: {phrase!r} is an example of both {seen[key]!r} and "
                        f"{intent.name!r}; keep it in one"
                    )
                seen[key] = intent.name
        return self

    @property
    def names(self) -> list[str]:
        return [intent.name for intent in self.intents]

    def phrases(self) -> list[tuple[str, str, Lang]]:
        """Every example as (text, intent or ``out_of_scope``, language)."""
        out: list[tuple[str, str, Lang]] = []
        for intent in self.intents:
            for language in LANGUAGES:
                out.extend((text, intent.name, language) for text in intent.examples.of(language))
        for language in LANGUAGES:
            out.extend((text, OUT_OF_SCOPE, language) for text in self.out_of_scope.of(language))
        return out

    def fingerprint(self) -> str:
        """Names the phrases: a classifier trained on others is stale."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def load_intents(path: Path | None = None) -> IntentFile:
    """The intents file at ``path`` (or the shipped one), validated."""
    return load_file(IntentFile, path, "intents.yaml", "intents file")
