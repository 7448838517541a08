"""What the assistant says, in German and English: every text it answers with, by key.

Texts are ``str.format`` templates; :func:`say` fills one in the conversation's language.
German addresses the customer formally (Sie), as a car maker's service does. Dates and
times are written in the language's way (``02.12.2026``, ``2 Dec 2026``). For the voice
channel :func:`speakable` takes out what cannot be spoken (addresses of web pages).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from touchpoints.assist.directory import DAYS, Dealer, Hours

TEXTS: dict[str, dict[str, str]] = {
    "greeting": {
        "de": "Hallo{name}! Ich bin der digitale Assistent von {brand}. Ich helfe bei "
        "Bestellungen und Lieferterminen, Probefahrten, Werkstattterminen, Öffnungszeiten "
        "und Händlern – oder verbinde Sie mit einem Menschen.",
        "en": "Hello{name}! I'm {brand}'s digital assistant. I can help with orders and "
        "deliveries, test drives, workshop appointments, opening hours and dealers – or put "
        "you through to a person.",
    },
    "thanks": {
        "de": "Gern geschehen! Wenn noch etwas ist, schreiben Sie einfach.",
        "en": "You're welcome! If there's anything else, just write.",
    },
    "service_hours": {
        "de": "Unser Kundenservice ist erreichbar: {lines}. {now}",
        "en": "Our customer service is available: {lines}. {now}",
    },
    "open_now": {"de": "Gerade sind wir für Sie da.", "en": "We're available right now."},
    "closed_now": {
        "de": "Gerade ist niemand da; ich helfe Ihnen aber gern weiter.",
        "en": "Nobody is in right now, but I'm happy to help.",
    },
    "dealer_hours": {
        "de": "{dealer} ({address}, {postcode} {city}): {lines}.",
        "en": "{dealer} ({address}, {postcode} {city}): {lines}.",
    },
    "ask_city_hours": {
        "de": "Die Öffnungszeiten unserer Händler finden Sie, wenn Sie mir Ihre Stadt oder "
        "Postleitzahl nennen.",
        "en": "For a dealer's opening hours, tell me your city or postcode.",
    },
    "dealers_near": {"de": "Ihr nächster Händler: {list}", "en": "Your nearest dealer: {list}"},
    "dealers_all": {
        "de": "Unsere Händler sind in {cities}. Nennen Sie mir Ihre Postleitzahl, dann suche "
        "ich den nächsten.",
        "en": "Our dealers are in {cities}. Tell me your postcode and I'll find the nearest.",
    },
    "dealer_line": {
        "de": "{dealer}, {address}, {postcode} {city}{phone}",
        "en": "{dealer}, {address}, {postcode} {city}{phone}",
    },
    "verify": {
        "de": "Um Ihnen Auskunft über {what} zu geben, muss ich sicher sein, dass Sie es sind. "
        "Bitte melden Sie sich auf unserer Website an{or_code}.",
        "en": "To tell you about {what} I need to be sure it's you. Please sign in on our "
        "website{or_code}.",
    },
    "verify_or_code": {
        "de": " oder nennen Sie mir die E-Mail-Adresse Ihres Kundenkontos: ich schicke Ihnen "
        "einen Code",
        "en": " or give me the e-mail address of your customer account: I'll send you a code",
    },
    "verify_or_code_phone": {
        "de": " oder nennen Sie mir die Mobilnummer Ihres Kundenkontos: ich schicke Ihnen "
        "einen Code per SMS",
        "en": " or give me the mobile number of your customer account: I'll text you a code",
    },
    "verify_or_code_both": {
        "de": " oder nennen Sie mir die E-Mail-Adresse oder Mobilnummer Ihres Kundenkontos: "
        "ich schicke Ihnen einen Code",
        "en": " or give me the e-mail address or mobile number of your customer account: I'll "
        "send you a code",
    },
    "what_order": {"de": "Ihre Bestellungen", "en": "your orders"},
    "what_appointment": {"de": "Ihre Termine", "en": "your appointments"},
    # Every answer about a code names the way it went (e-mail or SMS), also on a call.
    "code_sent_email": {
        "de": "Zu Ihrem Schutz habe ich Ihnen per E-Mail einen Code an {address} geschickt. "
        "Bitte geben Sie ihn hier ein (gültig {minutes} Minuten).",
        "en": "To protect your data I've sent a code by e-mail to {address}. Please type it "
        "here (valid for {minutes} minutes).",
    },
    "code_sent_sms": {
        "de": "Zu Ihrem Schutz habe ich Ihnen per SMS einen Code an {address} geschickt. Bitte "
        "geben Sie ihn hier ein (gültig {minutes} Minuten).",
        "en": "To protect your data I've sent a code by SMS to {address}. Please type it here "
        "(valid for {minutes} minutes).",
    },
    "code_maybe_sent_email": {
        "de": "Wenn diese Adresse zu einem Kundenkonto gehört, ist ein Code per E-Mail "
        "unterwegs. Bitte geben Sie ihn hier ein (gültig {minutes} Minuten).",
        "en": "If this address belongs to a customer account, a code is on its way by e-mail. "
        "Please type it here (valid for {minutes} minutes).",
    },
    "code_maybe_sent_sms": {
        "de": "Wenn diese Nummer zu einem Kundenkonto gehört, ist ein Code per SMS unterwegs. "
        "Bitte geben Sie ihn hier ein (gültig {minutes} Minuten).",
        "en": "If this number belongs to a customer account, a code is on its way by SMS. "
        "Please type it here (valid for {minutes} minutes).",
    },
    "code_wrong_email": {
        "de": "Der Code stimmt nicht; der richtige steht in meiner E-Mail. Sie haben noch "
        "{tries} Versuch(e).",
        "en": "That code isn't right; the right one is in my e-mail. You have {tries} more tries.",
    },
    "code_wrong_sms": {
        "de": "Der Code stimmt nicht; der richtige steht in meiner SMS. Sie haben noch {tries} "
        "Versuch(e).",
        "en": "That code isn't right; the right one is in my SMS. You have {tries} more tries.",
    },
    "code_used_up_email": {
        "de": "Das waren zu viele falsche Codes. Nennen Sie mir Ihre E-Mail-Adresse noch "
        "einmal für einen neuen Code per E-Mail, oder melden Sie sich an.",
        "en": "That was too many wrong codes. Give me your e-mail address again for a new "
        "code by e-mail, or sign in.",
    },
    "code_used_up_sms": {
        "de": "Das waren zu viele falsche Codes. Nennen Sie mir Ihre Mobilnummer noch einmal "
        "für einen neuen Code per SMS, oder melden Sie sich an.",
        "en": "That was too many wrong codes. Give me your mobile number again for a new code "
        "by SMS, or sign in.",
    },
    "code_expired_email": {
        "de": "Der Code aus meiner E-Mail ist abgelaufen. Nennen Sie mir Ihre E-Mail-Adresse "
        "noch einmal für einen neuen Code per E-Mail.",
        "en": "The code in my e-mail has expired. Give me your e-mail address again for a new "
        "code by e-mail.",
    },
    "code_expired_sms": {
        "de": "Der Code aus meiner SMS ist abgelaufen. Nennen Sie mir Ihre Mobilnummer noch "
        "einmal für einen neuen Code per SMS.",
        "en": "The code in my SMS has expired. Give me your mobile number again for a new code "
        "by SMS.",
    },
    # No code is waiting (a restart forgets them): the ways a new one can go.
    "code_none_email": {
        "de": "Ich habe Ihnen keinen Code geschickt. Nennen Sie mir die E-Mail-Adresse Ihres "
        "Kundenkontos, dann schicke ich einen per E-Mail.",
        "en": "I haven't sent you a code. Give me your customer account's e-mail address and "
        "I'll send one by e-mail.",
    },
    "code_none_sms": {
        "de": "Ich habe Ihnen keinen Code geschickt. Nennen Sie mir die Mobilnummer Ihres "
        "Kundenkontos, dann schicke ich einen per SMS.",
        "en": "I haven't sent you a code. Give me your customer account's mobile number and "
        "I'll send one by SMS.",
    },
    "code_none_both": {
        "de": "Ich habe Ihnen keinen Code geschickt. Nennen Sie mir die E-Mail-Adresse oder "
        "Mobilnummer Ihres Kundenkontos, dann schicke ich einen per E-Mail oder SMS.",
        "en": "I haven't sent you a code. Give me your customer account's e-mail address or "
        "mobile number and I'll send one by e-mail or SMS.",
    },
    "code_none_sign_in": {
        "de": "Ich habe Ihnen keinen Code geschickt. Bitte melden Sie sich auf unserer Website an.",
        "en": "I haven't sent you a code. Please sign in on our website.",
    },
    "code_right": {
        "de": "Danke{name}, Sie sind bestätigt.",
        "en": "Thank you{name}, you're verified.",
    },
    "code_mail_subject": {
        "de": "Ihr Code für den {brand}-Assistenten",
        "en": "Your code for the {brand} assistant",
    },
    "code_mail_text": {
        "de": "Ihr Code: {code}\n\nEr gilt {minutes} Minuten. Wenn Sie ihn nicht angefordert "
        "haben, ignorieren Sie diese Nachricht.",
        "en": "Your code: {code}\n\nIt is valid for {minutes} minutes. If you did not ask for "
        "it, ignore this message.",
    },
    "code_sms_text": {
        "de": "Ihr Code für den {brand}-Assistenten: {code} (gültig {minutes} Minuten). Nicht "
        "angefordert? Dann ignorieren Sie diese SMS.",
        "en": "Your code for the {brand} assistant: {code} (valid for {minutes} minutes). "
        "Didn't ask for it? Ignore this text.",
    },
    "order_none": {
        "de": "Zu Ihrem Kundenkonto finde ich keine Bestellung.",
        "en": "I can't find an order for your customer account.",
    },
    "order": {
        "de": "Ihre letzte Bestellung {order} vom {date}{items} {state}.",
        "en": "Your latest order {order} of {date}{items} {state}.",
    },
    "state_placed": {
        "de": "ist eingegangen und in Bearbeitung",
        "en": "has been received and is being processed",
    },
    "state_shipped": {
        "de": "ist am {date}{carrier} verschickt worden",
        "en": "was shipped on {date}{carrier}",
    },
    "state_delivered": {"de": "wurde am {date} zugestellt", "en": "was delivered on {date}"},
    "state_cancelled": {"de": "wurde am {date} storniert", "en": "was cancelled on {date}"},
    "state_refunded": {"de": "wurde am {date} erstattet", "en": "was refunded on {date}"},
    "state_other": {
        "de": "hat den Status „{status}“ (seit {date})",
        "en": "has the status “{status}” (since {date})",
    },
    "carrier": {"de": " mit {carrier}", "en": " with {carrier}"},
    "delivery_expected": {
        "de": "Voraussichtliche Lieferung: {date}.",
        "en": "Expected delivery: {date}.",
    },
    "delivery_unknown": {
        "de": "Einen Liefertermin kenne ich noch nicht; sobald die Bestellung verschickt ist, "
        "bekommen Sie eine Nachricht.",
        "en": "I don't know a delivery date yet; you'll get a message as soon as the order ships.",
    },
    "appointment": {
        "de": "Ihr nächster Termin: {what} am {date} um {time} Uhr{where}.",
        "en": "Your next appointment: {what} on {date} at {time}{where}.",
    },
    "appointment_none": {
        "de": "Ich sehe keinen anstehenden Termin.",
        "en": "I can't see an upcoming appointment.",
    },
    "at_place": {"de": " bei {place}", "en": " at {place}"},
    "book_test_drive": {
        "de": "Probefahrten buchen Sie unter {url} oder direkt bei einem Händler{dealer}. Soll "
        "ich Sie mit unserem Verkauf verbinden?",
        "en": "You can book a test drive at {url} or directly with a dealer{dealer}. Shall I "
        "put you through to our sales team?",
    },
    "book_service": {
        "de": "Werkstatttermine buchen Sie unter {url}{dealer}. Für Ihren bestehenden Termin "
        "melden Sie sich an, dann nenne ich ihn Ihnen.",
        "en": "You can book a workshop appointment at {url}{dealer}. To hear about an "
        "appointment you have, sign in and I'll tell you.",
    },
    "book_service_verified": {
        "de": "Einen neuen Werkstatttermin buchen Sie unter {url}{dealer}.",
        "en": "You can book a new workshop appointment at {url}{dealer}.",
    },
    "or_dealer": {"de": " (z. B. {dealer})", "en": " (e.g. {dealer})"},
    "complaint": {
        "de": "Das tut mir leid. Ich gebe Ihr Anliegen an unser Team „{team}“ weiter. {when}",
        "en": "I'm sorry to hear that. I'm passing this on to our {team} team. {when}",
    },
    "handover": {
        "de": "Ich verbinde Sie mit unserem Team „{team}“. {when}",
        "en": "I'm putting you through to our {team} team. {when}",
    },
    "handover_now": {
        "de": "Gleich ist jemand für Sie da; schreiben Sie gern schon, worum es geht.",
        "en": "Someone will be with you shortly; feel free to write what it's about.",
    },
    "handover_later": {
        "de": "Unser Team ist {when} wieder da; Ihre Nachricht wartet hier und wir antworten "
        "Ihnen dann.",
        "en": "Our team is back {when}; your message waits here and we'll answer you then.",
    },
    "unsubscribed": {
        "de": "Erledigt: Sie bekommen von uns keine Werbung mehr.",
        "en": "Done: you won't get any more marketing from us.",
    },
    "cancel_info": {
        "de": "Vom Newsletter melden Sie sich über den Link am Ende jeder E-Mail ab (oder "
        "melden Sie sich an, dann erledige ich das). Bestellungen, Verträge und Termine "
        "storniert unser Team: soll ich Sie verbinden?",
        "en": "You can unsubscribe from the newsletter with the link at the end of every "
        "e-mail (or sign in and I'll do it). Our team cancels orders, contracts and "
        "appointments: shall I put you through?",
    },
    "faq": {"de": "{answer}\nQuelle: {source}", "en": "{answer}\nSource: {source}"},
    "not_understood": {
        "de": "Das habe ich leider nicht verstanden. Ich helfe z. B. bei: „Wo ist meine "
        "Bestellung?“, „Wann habt ihr geöffnet?“, „Probefahrt buchen“. Oder schreiben Sie "
        "„Mitarbeiter“.",
        "en": "Sorry, I didn't understand that. I can help with, for example: “Where is my "
        "order?”, “When are you open?”, “Book a test drive”. Or write “agent”.",
    },
    "offer_person": {
        "de": "Das verstehe ich leider wieder nicht. Soll ich Sie mit einem Menschen "
        "verbinden? (ja/nein)",
        "en": "Sorry, I still don't understand. Shall I put you through to a person? (yes/no)",
    },
    "declined": {
        "de": "Gut, dann versuchen Sie es gern mit anderen Worten.",
        "en": "All right, feel free to try other words.",
    },
    "other_language": {
        "de": "Entschuldigung, ich spreche nur Deutsch und Englisch. / Sorry, I can only help "
        "in German or English.",
        "en": "Sorry, I can only help in German or English. / Entschuldigung, ich spreche nur "
        "Deutsch und Englisch.",
    },
    "too_long": {
        "de": "Ihre Nachricht ist zu lang ({length} Zeichen); ich lese höchstens {limit}. "
        "Bitte fassen Sie sich kürzer.",
        "en": "Your message is too long ({length} characters); I read at most {limit}. Please "
        "keep it shorter.",
    },
    "empty": {
        "de": "Ihre Nachricht ist leer. Was kann ich für Sie tun?",
        "en": "Your message is empty. What can I do for you?",
    },
    "closed": {
        "de": "Dieses Gespräch ist beendet. Schreiben Sie gern, um ein neues zu beginnen.",
        "en": "This conversation has ended. Write to start a new one.",
    },
}

_MONTHS_EN = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_DAY_NAMES = {
    "de": dict(zip(DAYS, "Mo Di Mi Do Fr Sa So".split(), strict=True)),
    "en": dict(zip(DAYS, "Mon Tue Wed Thu Fri Sat Sun".split(), strict=True)),
}


def lang(language: str | None) -> str:
    return "en" if language == "en" else "de"


def say(key: str, language: str | None, **values: object) -> str:
    return TEXTS[key][lang(language)].format(**values)


def day(moment: date | datetime, language: str | None) -> str:
    if lang(language) == "en":
        return f"{moment.day} {_MONTHS_EN[moment.month - 1]} {moment.year}"
    return f"{moment.day:02d}.{moment.month:02d}.{moment.year}"


def moment(when: datetime, language: str | None, now: datetime) -> str:
    """A moment soon: "heute um 08:00", "tomorrow at 08:00", "Mo 08:00"."""
    local_now = now.astimezone(when.tzinfo) if when.tzinfo else now
    days = (when.date() - local_now.date()).days
    clock = f"{when:%H:%M}"
    if lang(language) == "de":
        if days == 0:
            return f"heute um {clock} Uhr"
        if days == 1:
            return f"morgen um {clock} Uhr"
        return f"am {_DAY_NAMES['de'][DAYS[when.weekday()]]} um {clock} Uhr"
    if days == 0:
        return f"today at {clock}"
    if days == 1:
        return f"tomorrow at {clock}"
    return f"on {_DAY_NAMES['en'][DAYS[when.weekday()]]} at {clock}"


def hours(hours_: Hours, language: str | None) -> str:
    names = _DAY_NAMES[lang(language)]
    parts = []
    for days, text in hours_.lines():
        label = names[days[0]] if len(days) == 1 else f"{names[days[0]]}–{names[days[-1]]}"
        parts.append(f"{label} {text}")
    closed = "geschlossen" if lang(language) == "de" else "closed"
    return "; ".join(parts) if parts else closed


def dealer_line(dealer: Dealer, language: str | None) -> str:
    phone = f", {dealer.phone}" if dealer.phone else ""
    return say(
        "dealer_line",
        language,
        dealer=dealer.name,
        address=dealer.address,
        postcode=dealer.postcode,
        city=dealer.city,
        phone=phone,
    )


def money(amount: float, currency: str | None, language: str | None) -> str:
    symbol = {"EUR": "€", "USD": "$", "GBP": "£"}.get((currency or "EUR").upper(), currency or "")
    if lang(language) == "de":
        text = f"{amount:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
        return f"{text} {symbol}"
    return f"{symbol}{amount:,.2f}"


_URL = re.compile(r"\s*\(?https?://\S+\)?")


def speakable(text: str) -> str:
    """``text`` fit to be spoken: no web addresses, no line breaks, no slashes between the
    languages' versions (only the first)."""
    text = text.split(" / ")[0]
    text = _URL.sub("", text)
    return re.sub(r"\s+", " ", text.replace("\n", ". ")).strip()
