"""Who the assistant is talking to: persons found through the identity map, the few facts of
their profile the dialogue uses (first name, the e-mail address on file, city), their consent
to keeping transcripts, and one-time codes sent through a destination.

A person's facts and consent are read once a minute at most: each of their messages adds
events, which would otherwise make the profile be assembled again on every message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from touchpoints.activate import Destinations
from touchpoints.assist import replies
from touchpoints.assist.directory import Directory
from touchpoints.assist.engine import Person
from touchpoints.assist.live import Conversation
from touchpoints.assist.verification import Codes
from touchpoints.errors import InvalidRequest, NotFound
from touchpoints.profiles import Profiles

log = logging.getLogger("touchpoints.assist")
REMEMBERED_SECONDS = 60.0
_MOST = 10_000


class People:
    def __init__(
        self,
        profiles: Profiles,
        destinations: Destinations,
        codes: Codes,
        directory: Directory,
        code_destination: str | None,
    ) -> None:
        self.profiles = profiles
        self.destinations = destinations
        self.codes = codes
        self.directory = directory
        self.code_destination = code_destination
        self._consent: dict[int, tuple[float, Any]] = {}
        self._facts: dict[int, tuple[float, Any]] = {}

    def find(self, key: str) -> int | None:
        """The person behind ``key`` (TYPE:VALUE), or None."""
        try:
            return self.profiles.resolve(key)
        except (NotFound, InvalidRequest):
            return None

    def person(self, person: int) -> Person | None:
        found: Person | None = _recent(self._facts, person, lambda: self._read(person))
        return found

    def _read(self, person: int) -> Person | None:
        try:
            profile = self.profiles.get(person)
        except NotFound:
            return None
        traits = profile.traits

        def trait(name: str) -> str | None:
            found = traits.get(name)
            return str(found.value) if found is not None else None

        emails = profile.identifiers.get("email", [])
        return Person(
            first_name=trait("first_name"),
            email=emails[-1].value if emails else None,
            city=trait("city"),
            postcode=trait("postal_code") or trait("postcode"),
        )

    def consents(self, conv: Conversation) -> bool:
        """Whether the conversation's person consented to keeping transcripts (the purpose
        ``transcripts``); an unknown visitor has not."""
        person = conv.subject
        if person is None:
            return False
        return bool(
            _recent(
                self._consent,
                person,
                lambda: self.profiles.allows(f"person:{person}", "transcripts"),
            )
        )

    # -- one-time codes ----------------------------------------------------------------------
    def destination(self) -> int | None:
        """The enabled destination codes go out through (by name or id), or None."""
        wanted = self.code_destination
        if not wanted:
            return None
        for found in self.destinations.listing().destinations:
            if (str(found.id) == wanted or found.name == wanted) and found.state == "enabled":
                return found.id
        return None

    def send_code(self, conv: Conversation, address: str, person: int | None) -> bool:
        """A one-time code for ``conv``, sent to ``address`` when it is ``person``'s (for an
        address nobody has, nothing is sent and no code will be right: the customer is told
        the same either way, so the chat reveals nobody's address)."""
        code = self.codes.issue(conv.id, person)
        destination = self.destination()
        if person is None or destination is None:
            return False
        language = conv.language
        payload = {
            "to": address,
            "subject": replies.say("code_mail_subject", language, brand=self.directory.brand),
            "text": replies.say("code_mail_text", language, code=code, minutes=self.codes.minutes),
        }
        sent = self.destinations.enqueue(
            destination, payload, person=person, ordering_key=f"code:{conv.id}"
        )
        if sent.message_id is None:
            log.warning(
                "a one-time code was not sent: destination %s: %s", destination, sent.skipped
            )
            return False
        conv.email = address.strip().lower()
        return True


def _recent(cache: dict[int, tuple[float, Any]], person: int, read: Callable[[], Any]) -> Any:
    """``read()`` for ``person``, remembered for ``REMEMBERED_SECONDS``."""
    now = time.monotonic()
    hit = cache.get(person)
    if hit is not None and now - hit[0] < REMEMBERED_SECONDS:
        return hit[1]
    found = read()
    if len(cache) > _MOST:
        cache.clear()
    cache[person] = (now, found)
    return found
