"""Who the assistant is talking to: persons found through the identity map, the few facts of
their profile the dialogue uses (first name, the e-mail address and phone on file, city),
their consent to keeping transcripts, and one-time codes sent through a destination: an
e-mail destination for addresses, a webhook destination (an SMS gateway's) for phones.

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
from touchpoints.assist.engine import Person, Via
from touchpoints.assist.live import Conversation
from touchpoints.assist.verification import Codes
from touchpoints.errors import InvalidRequest, NotFound
from touchpoints.identity.identifiers import Identifier
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
        code_sms_destination: str | None = None,
    ) -> None:
        self.profiles = profiles
        self.destinations = destinations
        self.codes = codes
        self.directory = directory
        self.code_destination = code_destination
        self.code_sms_destination = code_sms_destination
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
        phones = profile.identifiers.get("phone", [])
        return Person(
            first_name=trait("first_name"),
            email=emails[-1].value if emails else None,
            city=trait("city"),
            postcode=trait("postal_code") or trait("postcode"),
            phone=phones[-1].value if phones else None,
        )

    def phone(self, text: str) -> str | None:
        """``text`` as the identity map keeps phone numbers (E.164), or None."""
        return self.profiles.identity.normalised(Identifier("phone", text)).value or None

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
    def destination(self, via: Via = "email") -> int | None:
        """The enabled destination codes go out through ``via`` (named by name or id in the
        settings), or None."""
        wanted = self.code_destination if via == "email" else self.code_sms_destination
        if not wanted:
            return None
        for found in self.destinations.listing().destinations:
            if (str(found.id) == wanted or found.name == wanted) and found.state == "enabled":
                return found.id
        return None

    def ways(self) -> frozenset[Via]:
        """How codes can go out now: by e-mail, by SMS, both or neither."""
        return frozenset(via for via in ("email", "sms") if self.destination(via) is not None)

    def send_code(
        self, conv: Conversation, address: str, person: int | None, via: Via = "email"
    ) -> bool:
        """A one-time code for ``conv``, sent to ``address`` (an e-mail address, or a phone
        number in E.164 for ``sms``) when it is ``person``'s (for an address nobody has,
        nothing is sent and no code will be right: the customer is told the same either way,
        so the chat reveals nobody's address or number)."""
        code = self.codes.issue(conv.id, person, via)
        destination = self.destination(via)
        if person is None or destination is None:
            return False
        language = conv.language
        minutes = self.codes.minutes
        brand = self.directory.brand
        payload = (
            {
                "to": address,
                "subject": replies.say("code_mail_subject", language, brand=brand),
                "text": replies.say("code_mail_text", language, code=code, minutes=minutes),
            }
            if via == "email"
            else {
                "to": address,
                "channel": "sms",
                "text": replies.say(
                    "code_sms_text", language, code=code, minutes=minutes, brand=brand
                ),
            }
        )
        sent = self.destinations.enqueue(
            destination, payload, person=person, ordering_key=f"code:{conv.id}"
        )
        if sent.message_id is None:
            log.warning(
                "a one-time code was not sent: destination %s: %s", destination, sent.skipped
            )
            return False
        if via == "email":
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
