"""How people mistype: the slips a salesperson, a call-centre agent or a CRM clerk makes when
typing a customer's name, e-mail address or phone number. Shared by the CRM export (files.py)
and the dealers' DMS records (dealers.py); each takes the caller's seeded ``random.Random``."""

from __future__ import annotations

import random


def _typo(text: str, rng: random.Random) -> str:
    """One realistic slip: two letters swapped, one doubled or one dropped."""
    if len(text) < 4:
        return text
    i = rng.randint(1, len(text) - 3)
    kind = rng.random()
    if kind < 0.4:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind < 0.7:
        return text[:i] + text[i] + text[i:]
    return text[:i] + text[i + 1 :]


def _email_typo(email: str, rng: random.Random) -> str:
    local, _, domain = email.partition("@")
    if rng.random() < 0.5:
        wrong = {
            "gmail.com": "gmial.com",
            "gmx.de": "gmx.com",
            "web.de": "web.com",
            "t-online.de": "tonline.de",
            "outlook.de": "outlok.de",
        }
        return f"{local}@{wrong.get(domain, domain.replace('.', '', 1) + '.de')}"
    return f"{_typo(local, rng)}@{domain}"


def _phone_style(phone: str, rng: random.Random) -> str:
    """``phone`` (``+49 151 1234567``) as people write it: international or national, with a
    space, a slash or ``0049``."""
    digits = phone.replace(" ", "").removeprefix("+49")
    style = rng.random()
    if style < 0.4:
        return phone
    if style < 0.7:
        return f"0{digits[:3]} {digits[3:]}"
    if style < 0.85:
        return f"0{digits[:3]}/{digits[3:]}"
    return f"0049{digits}"


def _digit_slip(phone: str, rng: random.Random) -> str:
    """Two neighbouring digits of the subscriber number swapped (the last seven digits), or
    the number unchanged when they are equal."""
    positions = [i for i, ch in enumerate(phone) if ch.isdigit()][-7:]
    i = rng.randrange(len(positions) - 1)
    a, b = positions[i], positions[i + 1]
    chars = list(phone)
    chars[a], chars[b] = chars[b], chars[a]
    return "".join(chars)
