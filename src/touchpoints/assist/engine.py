"""The assistant's dialogue: what it answers to a message it has understood.

Public answers (opening hours, dealers, booking, the FAQ) go to anyone. Answers about the
person (the latest order and its state, the delivery date, the next appointment) only to a
verified person: signed in on the site (its ``user_hash`` checked) or proven by a one-time
code sent to the e-mail address or the phone on file (through the destinations the settings
name). A recognised customer gets the code to what is on file at once (an SMS or a call: to
their phone first); an unknown one is asked to sign in or to give the address or number of
their account. The question waits and is answered once the code is right.

A message the assistant cannot place (out of scope and no FAQ entry, or in another
language) is said so; the second in a row brings the offer of a person. Asking for a person,
a complaint, or a yes to an offer hands the conversation over (the service routes it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from touchpoints.assist import replies
from touchpoints.assist.customer import Customer
from touchpoints.assist.directory import Directory
from touchpoints.assist.intents import BUILT_IN, OUT_OF_SCOPE
from touchpoints.assist.live import Conversation
from touchpoints.assist.redact import EMAIL, PHONE
from touchpoints.assist.replies import say
from touchpoints.assist.results import Source
from touchpoints.assist.understanding import FAQ, Reading
from touchpoints.assist.verification import Codes

PERSONAL = ("order_status", "delivery_date")
_CODE = re.compile(r"^\D{0,20}(\d{6})\D{0,20}$")
_YES = re.compile(r"^\s*(ja|jawohl|gerne?|bitte|ok(ay)?|yes|yeah|yep|sure|please)\b", re.I)
_NO = re.compile(r"^\s*(nein|nee|no|nope|lieber nicht|no thanks)\b", re.I)
_MINE = re.compile(r"\b(mein\w*|my|habe ich|hab ich|do i have|when is|wann ist)\b", re.I)
_MARKETING = re.compile(r"newsletter|werbung|e-?mails?|mails|sms|marketing|advert|verteiler", re.I)


@dataclass(frozen=True)
class Said:
    text: str
    source: Source | None = None


@dataclass
class Decision:
    replies: list[Said] = field(default_factory=list)
    outcome: str = "answered"
    handover: str | None = None  # why: asked, complaint, offer, intent
    complaint: bool = False
    unsubscribe: bool = False
    end: bool = False  # the customer is done (a voice session may end)
    verified_now: bool = False


@dataclass(frozen=True)
class Person:
    """What the dialogue needs of a person's profile."""

    first_name: str | None
    email: str | None
    city: str | None
    postcode: str | None
    phone: str | None = None  # E.164, as the identity map keeps it


Via = Literal["email", "sms"]


class Dialogue:
    def __init__(
        self,
        directory: Directory,
        customer: Customer,
        codes: Codes,
        person: Callable[[int], Person | None],
        find: Callable[[str], int | None],
        send_code: Callable[[Conversation, str, int | None, Via], bool],
        code_ways: Callable[[], frozenset[Via]],
        phone: Callable[[str], str | None],
    ) -> None:
        self.directory = directory
        self.customer = customer
        self.codes = codes
        self.person = person
        self.find = find
        self.send_code = send_code
        self.code_ways = code_ways
        self.phone = phone

    # -- the turn ----------------------------------------------------------------------------
    def respond(self, conv: Conversation, text: str, reading: Reading | None) -> Decision:
        """The answer to ``text`` (``reading``: what it was understood as; None for a
        one-time code, which is not read)."""
        if conv.state in ("queued", "agent"):
            return Decision(outcome="to_agent")  # a person has it: the assistant is quiet
        code = _CODE.match(text)
        if conv.awaiting == "code" and code:
            return self._code(conv, code.group(1))
        assert reading is not None
        language = conv.language
        if conv.awaiting in ("email", "code") and conv.verified_person is None:
            given = self._given(conv, text)  # an address or a number is in no language
            if given is not None:
                return given
        if reading.language == "other":
            return self._misunderstood(conv, say("other_language", language), "other_language")
        if conv.offered_person and (_YES.match(text) or _NO.match(text)):
            return self._offer_answered(conv, bool(_YES.match(text)))
        conv.offered_person = None
        return self._intent(conv, text, reading)

    def _intent(self, conv: Conversation, text: str, reading: Reading) -> Decision:
        intent = reading.intent
        if intent in (OUT_OF_SCOPE, FAQ):
            return self._out_of_scope(conv, reading)
        conv.misunderstood = 0
        handler = getattr(self, f"_{intent}", None) if intent in BUILT_IN else None
        if handler is None:  # an operator's own intent: a person answers it
            return Decision(handover="intent", outcome="handed_over")
        decision: Decision = handler(conv, text)
        return decision

    # -- public answers ----------------------------------------------------------------------
    def _greeting(self, conv: Conversation, text: str) -> Decision:
        return Decision(
            [
                Said(
                    say(
                        "greeting", conv.language, name=self._name(conv), brand=self.directory.brand
                    )
                )
            ]
        )

    def _thanks(self, conv: Conversation, text: str) -> Decision:
        return Decision([Said(say("thanks", conv.language))], outcome="resolved", end=True)

    def _opening_hours(self, conv: Conversation, text: str) -> Decision:
        language = conv.language
        dealers = self.directory.named(text)
        if dealers:
            return Decision([Said(" ".join(self._dealer_hours(d, language) for d in dealers))])
        now = datetime.now(UTC)
        state = "open_now" if self.directory.business_hours(now) else "closed_now"
        lines = replies.hours(self.directory.service_hours, language)
        said = say("service_hours", language, lines=lines, now=say(state, language))
        mine = self._home_dealers(conv)
        if mine:
            said += " " + " ".join(self._dealer_hours(d, language) for d in mine)
        elif self.directory.dealers:
            said += " " + say("ask_city_hours", language)
        return Decision([Said(said)])

    def _dealer_hours(self, dealer: object, language: str | None) -> str:
        from touchpoints.assist.directory import Dealer

        assert isinstance(dealer, Dealer)
        return say(
            "dealer_hours",
            language,
            dealer=dealer.name,
            address=dealer.address,
            postcode=dealer.postcode,
            city=dealer.city,
            lines=replies.hours(dealer.hours, language),
        )

    def _nearest_dealer(self, conv: Conversation, text: str) -> Decision:
        language = conv.language
        known = self._known(conv)
        found = self.directory.nearest(
            text, known.city if known else None, known.postcode if known else None
        )
        if found:
            lines = "; ".join(replies.dealer_line(d, language) for d in found)
            return Decision([Said(say("dealers_near", language, list=lines))])
        cities = ", ".join(sorted({d.city for d in self.directory.dealers}))
        return Decision([Said(say("dealers_all", language, cities=cities))])

    def _test_drive(self, conv: Conversation, text: str) -> Decision:
        conv.offered_person = "test_drive"
        return Decision(
            [
                Said(
                    say(
                        "book_test_drive",
                        conv.language,
                        url=self._booking(),
                        dealer=self._dealer_hint(conv, text),
                    )
                )
            ]
        )

    def _service_appointment(self, conv: Conversation, text: str) -> Decision:
        language = conv.language
        if conv.verified_person is None:
            if _MINE.search(text):
                return self._verify(conv, "service_appointment")
            return Decision(
                [
                    Said(
                        say(
                            "book_service",
                            language,
                            url=self._booking(),
                            dealer=self._dealer_hint(conv, text),
                        )
                    )
                ]
            )
        found = self.customer.next_appointment(conv.verified_person)
        booking = say(
            "book_service_verified",
            language,
            url=self._booking(),
            dealer=self._dealer_hint(conv, text),
        )
        if found is None:
            return Decision([Said(say("appointment_none", language) + " " + booking)])
        what = {
            "service": {"de": "Werkstatt", "en": "workshop"},
            "test_drive": {"de": "Probefahrt", "en": "test drive"},
        }.get(found.kind, {"de": "Termin", "en": "appointment"})[replies.lang(language)]
        local = self.directory.local(found.at)
        where = say("at_place", language, place=found.place) if found.place else ""
        said = say(
            "appointment",
            language,
            what=what,
            date=replies.day(local, language),
            time=f"{local:%H:%M}",
            where=where,
        )
        return Decision([Said(said)])

    def _complaint(self, conv: Conversation, text: str) -> Decision:
        return Decision(handover="complaint", complaint=True, outcome="handed_over")

    def _human(self, conv: Conversation, text: str) -> Decision:
        return Decision(handover="asked", outcome="handed_over")

    def _cancel_unsubscribe(self, conv: Conversation, text: str) -> Decision:
        if conv.verified_person is not None and _MARKETING.search(text):
            return Decision(
                [Said(say("unsubscribed", conv.language))], outcome="unsubscribed", unsubscribe=True
            )
        conv.offered_person = "cancel_unsubscribe"
        return Decision([Said(say("cancel_info", conv.language))])

    # -- personal answers --------------------------------------------------------------------
    def _order_status(self, conv: Conversation, text: str) -> Decision:
        if conv.verified_person is None:
            return self._verify(conv, "order_status")
        return Decision([Said(self._order_text(conv, delivery=False))])

    def _delivery_date(self, conv: Conversation, text: str) -> Decision:
        if conv.verified_person is None:
            return self._verify(conv, "delivery_date")
        return Decision([Said(self._order_text(conv, delivery=True))])

    def _order_text(self, conv: Conversation, delivery: bool) -> str:
        assert conv.verified_person is not None
        language = conv.language
        order = self.customer.latest_order(conv.verified_person)
        if order is None:
            return say("order_none", language)
        items = f" ({', '.join(order.items)})" if order.items else ""
        state_date = replies.day(self.directory.local(order.state_at), language)
        if order.state == "updated":
            state = say("state_other", language, status=order.status or "?", date=state_date)
        else:
            carrier = say("carrier", language, carrier=order.carrier) if order.carrier else ""
            state = say(f"state_{order.state}", language, date=state_date, carrier=carrier)
        said = say(
            "order",
            language,
            order=order.order_id or "",
            date=replies.day(self.directory.local(order.placed_at), language),
            items=items,
            state=state,
        )
        said = said.replace("  ", " ")
        if delivery or order.delivery is not None:
            if order.state == "delivered":
                return said
            if order.delivery is not None:
                expected = replies.day(self.directory.local(order.delivery), language)
                return said + " " + say("delivery_expected", language, date=expected)
            if delivery:
                return said + " " + say("delivery_unknown", language)
        return said

    def _verify(self, conv: Conversation, intent: str) -> Decision:
        """Ask for proof before a personal answer: a code to what is on file when the visitor
        is recognised (an SMS or a call: the phone first), else sign-in or the address or
        number of their account."""
        conv.pending_intent = intent
        language = conv.language
        ways = self.code_ways()
        known = self._known(conv) if conv.person is not None else None
        if known is not None:
            on_file: list[tuple[str | None, Via]] = [(known.email, "email"), (known.phone, "sms")]
            if conv.channel in ("sms", "voice"):
                on_file.reverse()
            for address, via in on_file:
                if address and via in ways:
                    return self._issue(conv, address, via, masked=True)
        what = say(
            "what_appointment" if intent == "service_appointment" else "what_order", language
        )
        conv.awaiting = "email" if ways else None
        or_code = say(_OR_CODE[ways], language) if ways else ""
        return Decision(
            [Said(say("verify", language, what=what, or_code=or_code))], outcome="verify"
        )

    def _given(self, conv: Conversation, text: str) -> Decision | None:
        """A code for the e-mail address or phone number the customer gave, when a way to send
        it is set; None: the message gives neither (it is read as any other)."""
        ways = self.code_ways()
        address = EMAIL.search(text)
        if address and "email" in ways:
            return self._issue(conv, address.group(0), "email")
        number = PHONE.search(text) if "sms" in ways else None
        phone = self.phone(number.group(0)) if number else None
        if phone is not None:
            return self._issue(conv, phone, "sms")
        return None

    def _issue(
        self,
        conv: Conversation,
        address: str,
        via: Via = "email",
        masked: bool = False,
    ) -> Decision:
        """Send a code to ``address`` (an e-mail address, or an E.164 number for ``sms``)
        when it is someone's; the answer is the same either way unless it was on file."""
        person = self.find(f"{'email' if via == 'email' else 'phone'}:{address}")
        sent = self.send_code(conv, address, person, via)
        language = conv.language
        minutes = self.codes.minutes
        conv.awaiting = "code"
        if masked and sent:
            shown = _mask(address) if via == "email" else _mask_phone(address)
            said = say(f"code_sent_{via}", language, address=shown, minutes=minutes)
        else:
            said = say(f"code_maybe_sent_{via}", language, minutes=minutes)
        return Decision([Said(said)], outcome="code_sent")

    def _code(self, conv: Conversation, code: str) -> Decision:
        checked = self.codes.check(conv.id, code)
        language = conv.language
        if checked.person is None:
            if checked.reason != "wrong":
                conv.awaiting = "email"
            if checked.via is None:  # no code is waiting: the ways a new one can go
                key = "code_none_" + _WAYS_KEY.get(self.code_ways(), "sign_in")
            else:
                key = f"code_{checked.reason}_{checked.via}"
            said = say(key, language, tries=checked.tries_left)
            return Decision([Said(said)], outcome=f"code_{checked.reason}")
        conv.verified, conv.verified_person, conv.awaiting = "code", checked.person, None
        decision = Decision(
            [Said(say("code_right", language, name=self._name(conv)))],
            outcome="verified",
            verified_now=True,
        )
        pending, conv.pending_intent = conv.pending_intent, None
        if pending is not None:
            follow = getattr(self, f"_{pending}")(conv, "mein")
            decision.replies.extend(follow.replies)
        return decision

    # -- not understood, and offers ----------------------------------------------------------
    def _out_of_scope(self, conv: Conversation, reading: Reading) -> Decision:
        if reading.faq is not None:
            conv.misunderstood = 0
            entry = reading.faq.entry
            source = Source(title=entry.source.title, url=entry.source.url)
            cited = (
                f"{entry.source.title} ({entry.source.url})"
                if entry.source.url
                else entry.source.title
            )
            said = say(
                "faq",
                conv.language,
                answer=entry.answer.of(replies.lang(conv.language)),
                source=cited,
            )
            return Decision([Said(said, source)], outcome="faq")
        return self._misunderstood(conv, say("not_understood", conv.language), "not_understood")

    def _misunderstood(self, conv: Conversation, said: str, outcome: str) -> Decision:
        conv.misunderstood += 1
        if conv.misunderstood >= 2:
            conv.offered_person = OUT_OF_SCOPE
            said = say("offer_person", conv.language) if outcome != "other_language" else said
        return Decision([Said(said)], outcome=outcome)

    def _offer_answered(self, conv: Conversation, yes: bool) -> Decision:
        offered, conv.offered_person = conv.offered_person, None
        if yes:
            conv.intent = offered if offered != OUT_OF_SCOPE else conv.intent
            return Decision(handover="offer", outcome="handed_over")
        return Decision([Said(say("declined", conv.language))], outcome="declined")

    # -- helpers -----------------------------------------------------------------------------
    def _known(self, conv: Conversation) -> Person | None:
        subject = conv.subject
        return self.person(subject) if subject is not None else None

    def _name(self, conv: Conversation) -> str:
        if conv.verified_person is None:
            return ""
        found = self.person(conv.verified_person)
        return f" {found.first_name}" if found and found.first_name else ""

    def _home_dealers(self, conv: Conversation) -> list:
        if conv.verified_person is None:
            return []
        known = self.person(conv.verified_person)
        if known is None or not (known.city or known.postcode):
            return []
        return self.directory.nearest("", known.city, known.postcode)[:1]

    def _dealer_hint(self, conv: Conversation, text: str) -> str:
        found = self.directory.named(text) or self._home_dealers(conv)
        return say("or_dealer", conv.language, dealer=found[0].name) if found else ""

    def _booking(self) -> str:
        return self.directory.booking_url or "—"


def _mask_phone(number: str) -> str:
    """•••• 678: the last three digits, enough to recognise one's own number."""
    return "•••• " + number[-3:]


# What an unknown customer may give for a code, by the ways codes can go.
_OR_CODE: dict[frozenset[Via], str] = {
    frozenset({"email"}): "verify_or_code",
    frozenset({"sms"}): "verify_or_code_phone",
    frozenset({"email", "sms"}): "verify_or_code_both",
}
_WAYS_KEY: dict[frozenset[Via], str] = {
    frozenset({"email"}): "email",
    frozenset({"sms"}): "sms",
    frozenset({"email", "sms"}): "both",
}


def _mask(address: str) -> str:
    """a•••@example.com: enough to recognise one's own address, not to learn it."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}"
