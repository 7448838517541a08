"""A deterministic simulator of a car maker's customers on every channel, with ground truth.

*Nordwind Motors* sells cars through an online configurator, dealers and a web shop for
accessories, runs a mobile app, connected cars, newsletters, SMS, social media, chat and a
hotline. Each simulated person has an age (and age group) that shapes which channels they
use (younger: app, chat, social; older: e-mail, phone, store), one to three devices, each with
its own anonymous id, and a journey through the six stages (awareness → consideration →
decision → purchase → retention → advocacy) that can stop at any stage; pain points (errors,
abandoned configurations, complaints) make stopping likelier. People browse anonymously and
become identified when they sign up or log in on a device.

Everything is derived from the seed (``random.Random`` per person, no clock, no uuid4), so the
same configuration gives the same events byte for byte. The ground truth records which
identifiers belong to which person and how far each got, for measuring identity resolution
and journey analytics later.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from touchpoints.demo.names import CITIES, FIRST_NAMES, LAST_NAMES, MAIL_DOMAINS

STAGES: tuple[str, ...] = (
    "awareness",
    "consideration",
    "decision",
    "purchase",
    "retention",
    "advocacy",
)
AGE_GROUPS: tuple[tuple[str, int, int], ...] = (
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55-64", 55, 64),
    ("65+", 65, 85),
)
# How likely each age group uses each contact channel (the seed articles: the young prefer
# chat, social media and apps; older customers e-mail, phone and the dealer).
CHANNEL_AFFINITY: dict[str, dict[str, float]] = {
    "18-24": {
        "app": 0.80,
        "chat": 0.65,
        "social": 0.85,
        "email": 0.25,
        "sms": 0.30,
        "phone": 0.08,
        "store": 0.30,
        "voice": 0.30,
        "blockchain": 0.10,
    },
    "25-34": {
        "app": 0.70,
        "chat": 0.55,
        "social": 0.65,
        "email": 0.40,
        "sms": 0.35,
        "phone": 0.15,
        "store": 0.40,
        "voice": 0.30,
        "blockchain": 0.06,
    },
    "35-44": {
        "app": 0.55,
        "chat": 0.40,
        "social": 0.45,
        "email": 0.60,
        "sms": 0.40,
        "phone": 0.30,
        "store": 0.50,
        "voice": 0.25,
        "blockchain": 0.03,
    },
    "45-54": {
        "app": 0.40,
        "chat": 0.25,
        "social": 0.30,
        "email": 0.75,
        "sms": 0.35,
        "phone": 0.45,
        "store": 0.60,
        "voice": 0.15,
        "blockchain": 0.01,
    },
    "55-64": {
        "app": 0.25,
        "chat": 0.15,
        "social": 0.18,
        "email": 0.80,
        "sms": 0.25,
        "phone": 0.60,
        "store": 0.70,
        "voice": 0.10,
        "blockchain": 0.0,
    },
    "65+": {
        "app": 0.10,
        "chat": 0.06,
        "social": 0.08,
        "email": 0.85,
        "sms": 0.15,
        "phone": 0.75,
        "store": 0.80,
        "voice": 0.05,
        "blockchain": 0.0,
    },
}
# Chance to move on to the next stage, without and with a pain point in the current one.
ADVANCE: dict[str, tuple[float, float]] = {
    "awareness": (0.62, 0.40),
    "consideration": (0.55, 0.30),
    "decision": (0.58, 0.28),
    "purchase": (0.70, 0.45),
    "retention": (0.42, 0.20),
}
MODELS = ("Nordwind E3", "Nordwind E5", "Nordwind Kombi", "Nordwind SUV X", "Nordwind GT")
PRICES = {
    "Nordwind E3": 34900,
    "Nordwind E5": 48900,
    "Nordwind Kombi": 41900,
    "Nordwind SUV X": 56900,
    "Nordwind GT": 69900,
}
ACCESSORIES = (
    ("Dachbox", 649),
    ("Wallbox 11 kW", 1190),
    ("Winterräder", 1490),
    ("Fahrradträger", 529),
    ("Ladekabel Typ 2", 279),
    ("Fußmatten", 119),
)
BROWSE_PAGES = [
    "/modelle",
    "/angebote",
    "/finanzierung",
    "/haendler",
    "/modelle/nordwind-e3",
    "/modelle/nordwind-e5",
    "/modelle/nordwind-kombi",
    "/modelle/nordwind-suv-x",
    "/modelle/nordwind-gt",
    "/service",
    "/zubehoer",
]
SOCIAL_NETWORKS = ("instagram", "tiktok", "facebook", "linkedin", "youtube")
SITE = "https://www.nordwind-motors.example"
UA_DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)
UA_PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
UA_TABLET = (
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.6 Safari/604.1"
)


@dataclass(frozen=True)
class DemoConfig:
    people: int = 10_000
    seed: int = 42
    start: datetime = datetime(2026, 3, 1, tzinfo=UTC)
    days: int = 240


@dataclass
class Device:
    kind: str  # desktop_web, phone_web, tablet_web, phone_app
    anonymous_id: str
    device_id: str | None = None
    advertising_id: str | None = None
    os: str | None = None
    identified: bool = False
    identified_at: str | None = None  # when this device first signed in (ISO time)


@dataclass
class Person:
    person_id: str
    age: int
    age_group: str
    birth_date: date
    first_name: str
    last_name: str
    email: str
    phone: str
    city: str
    postal_code: str
    user_id: str
    devices: list[Device]
    affinity: dict[str, bool]
    stage_times: dict[str, str] = field(default_factory=dict)
    churned: bool = False
    identified: bool = False
    purchased_model: str | None = None
    pain_points: int = 0
    wallet: str | None = None
    vehicle_id: str | None = None
    social_handle: str | None = None
    social_ids: list[str] = field(default_factory=list)
    customer_number: str | None = None
    identified_at: str | None = None  # when the person first signed up or logged in
    contact_ids: list[str] = field(default_factory=list)  # ids of contacts before sign-up


@dataclass
class GroundTruth:
    identifiers: list[tuple[str, str, str]] = field(default_factory=list)
    persons: list[dict[str, Any]] = field(default_factory=list)

    def add(self, id_type: str, value: str | None, person_id: str) -> None:
        if value:
            self.identifiers.append((id_type, value, person_id))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def _birth_date(today: date, age: int, rng: random.Random) -> date:
    """A birth date at which someone is exactly ``age`` years old on ``today``."""
    latest = _years_before(today, age)
    earliest = _years_before(today, age + 1) + timedelta(days=1)
    return earliest + timedelta(days=rng.randint(0, (latest - earliest).days))


def _hex(*parts: object, length: int = 32) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:length]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _uuid(*parts: object) -> str:
    h = _hex(*parts)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


class _Journey:
    """Builds one person's events in time order."""

    def __init__(self, sim: Simulator, person: Person, rng: random.Random, now: datetime):
        self.sim, self.p, self.rng, self.now = sim, person, rng, now
        self.events: list[dict[str, Any]] = []
        self.n = 0

    # -- helpers -----------------------------------------------------------------------------
    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes, seconds=self.rng.randint(0, 59))

    def wait_days(self, mean: float) -> None:
        self.now += timedelta(days=self.rng.expovariate(1 / mean), minutes=self.rng.randint(0, 600))

    def emit(self, message: dict[str, Any]) -> None:
        self.n += 1
        message["messageId"] = _uuid(self.sim.config.seed, self.p.person_id, self.n)
        message["timestamp"] = _iso(self.now)
        self.events.append(message)

    def ids(self, device: Device | None, known: bool) -> dict[str, str]:
        out: dict[str, str] = {}
        if device is not None:
            out["anonymousId"] = device.anonymous_id
        if known or self.signed_in(device):
            out["userId"] = self.p.user_id
        return out

    def signed_in(self, device: Device | None) -> bool:
        """Whether ``device`` had signed in by now (journeys add newsletters afterwards)."""
        return (
            device is not None
            and device.identified_at is not None
            and device.identified_at <= _iso(self.now)
        )

    def web_context(
        self, device: Device, path: str, campaign: dict | None, referrer: str
    ) -> dict[str, Any]:
        agent = {"desktop_web": UA_DESKTOP, "phone_web": UA_PHONE}.get(device.kind, UA_TABLET)
        context: dict[str, Any] = {
            "library": {"name": "analytics.js", "version": "next-1.74.0"},
            "page": {
                "path": path,
                "url": SITE + path,
                "referrer": referrer,
                "title": _title(path),
            },
            "userAgent": agent,
            "ip": f"198.51.100.{self.rng.randint(1, 254)}",
            "locale": "de-DE",
        }
        if campaign:
            context["campaign"] = campaign
        return context

    def app_context(self, device: Device) -> dict[str, Any]:
        ios = device.os == "iOS"
        return {
            "library": {
                "name": "analytics-ios" if ios else "analytics-android",
                "version": "4.1.8" if ios else "4.11.3",
            },
            "app": {"name": "Nordwind", "version": "3.12.0", "build": "3120"},
            "device": {
                "id": device.device_id,
                "advertisingId": device.advertising_id,
                "manufacturer": "Apple" if ios else "Samsung",
                "model": "iPhone15,2" if ios else "SM-S911B",
                "type": "ios" if ios else "android",
            },
            "os": {"name": device.os, "version": "18.1" if ios else "14"},
            "locale": "de-DE",
        }

    def session(
        self,
        device: Device,
        pages: list[str],
        tracks: list[tuple[str, dict]],
        campaign: dict | None = None,
        referrer: str = "",
    ) -> None:
        """A visit on one device: page (or screen) views with track calls in between."""
        known = self.signed_in(device)
        if device.kind == "phone_app":
            for name in pages:
                self.emit(
                    {
                        "type": "screen",
                        "name": name,
                        "properties": {},
                        "context": self.app_context(device),
                        **self.ids(device, known),
                    }
                )
                self.advance(self.rng.uniform(0.3, 3))
            for event, props in tracks:
                self.emit(
                    {
                        "type": "track",
                        "event": event,
                        "properties": props,
                        "context": self.app_context(device),
                        **self.ids(device, known),
                    }
                )
                self.advance(self.rng.uniform(0.3, 4))
            return
        for i, path in enumerate(pages):
            context = self.web_context(
                device,
                path,
                campaign if i == 0 else None,
                referrer if i == 0 else SITE + pages[i - 1],
            )
            self.emit(
                {
                    "type": "page",
                    "name": context["page"]["title"],
                    "properties": {"path": path, "url": SITE + path},
                    "context": context,
                    **self.ids(device, known),
                }
            )
            self.advance(self.rng.uniform(0.3, 4))
        for event, props in tracks:
            context = self.web_context(device, pages[-1], None, "")
            self.emit(
                {
                    "type": "track",
                    "event": event,
                    "properties": props,
                    "context": context,
                    **self.ids(device, known),
                }
            )
            self.advance(self.rng.uniform(0.3, 4))

    def service(
        self, channel: str, event: str, props: dict[str, Any], explicit: str | None = None
    ) -> None:
        """A server-side event from a contact channel (ESP, SMS gateway, chat, call centre)."""
        library = {
            "email": "touchpoints-esp",
            "sms": "touchpoints-sms-gateway",
            "chat": "touchpoints-chat",
            "phone": "touchpoints-callcenter",
            "store": "touchpoints-dealer-dms",
            "social": "touchpoints-social-listening",
            "blockchain": "touchpoints-web3",
        }[channel]
        context: dict[str, Any] = {
            "channel": explicit or channel,
            "library": {"name": library, "version": "1.0"},
        }
        p = self.p
        if p.identified_at is not None and p.identified_at <= _iso(self.now):
            who = {"userId": p.user_id}
        elif channel in ("chat", "email"):
            # The website's chat widget and newsletter form know the visitor's cookie.
            who = {"anonymousId": p.devices[0].anonymous_id}
        else:
            # A call centre, SMS gateway or dealer knows a phone number or a name, no user id.
            contact = f"{channel}-{_hex(p.person_id, channel, length=12)}"
            if contact not in p.contact_ids:
                p.contact_ids.append(contact)
            who = {"anonymousId": contact}
            context["traits"] = (
                {"phone": p.phone}
                if channel in ("phone", "sms")
                else {"first_name": p.first_name, "last_name": p.last_name, "email": p.email}
            )
        self.emit({"type": "track", "event": event, **who, "properties": props, "context": context})

    def device(self, *kinds: str) -> Device:
        for kind in kinds:
            for d in self.p.devices:
                if d.kind == kind:
                    return d
        return self.p.devices[0]

    def identify(self, device: Device, event: str) -> None:
        p = self.p
        device.identified = True
        p.identified = True
        device.identified_at = device.identified_at or _iso(self.now)
        p.identified_at = p.identified_at or _iso(self.now)
        traits = {
            "email": p.email,
            "first_name": p.first_name,
            "last_name": p.last_name,
            "phone": p.phone,
            "birthday": p.birth_date.isoformat(),
            "city": p.city,
            "postal_code": p.postal_code,
        }
        context = (
            self.app_context(device)
            if device.kind == "phone_app"
            else self.web_context(device, "/konto", None, "")
        )
        self.emit(
            {
                "type": "track",
                "event": event,
                "properties": {"method": "email"},
                "context": context,
                **self.ids(device, True),
            }
        )
        self.advance(0.2)
        self.emit(
            {"type": "identify", "traits": traits, "context": context, **self.ids(device, True)}
        )


class Simulator:
    def __init__(self, config: DemoConfig | None = None) -> None:
        self.config = config or DemoConfig()
        self.truth = GroundTruth()
        self._people: list[Person] = []
        self._emails: set[str] = set()
        self.crm: list[dict[str, str]] | None = None

    def events(self) -> Iterator[dict[str, Any]]:
        """Every person's events, person by person, each person's in time order."""
        self.truth = GroundTruth()
        self._people = []
        self._emails: set[str] = set()
        self.crm: list[dict[str, str]] | None = None  # the CRM export, made once (files.py)
        for index in range(self.config.people):
            rng = random.Random(f"{self.config.seed}-{index}")
            person = self._person(index, rng)
            journey = self._journey(person, rng)
            self._people.append(person)
            self._record_truth(person)
            yield from journey.events

    # -- people ------------------------------------------------------------------------------
    def _person(self, index: int, rng: random.Random) -> Person:
        seed = self.config.seed
        group, low, high = rng.choices(AGE_GROUPS, weights=(11, 19, 18, 18, 18, 16))[0]
        age = rng.randint(low, high)
        born = _birth_date(self.config.start.date(), age, rng)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = rng.choice(MAIL_DOMAINS)
        style = rng.random()
        local = (
            f"{first}.{last}"
            if style < 0.6
            else f"{first[0]}{last}"
            if style < 0.85
            else f"{first}{rng.randint(1, 99)}"
        )
        email = _ascii(f"{local}@{domain}".lower())
        if rng.random() < 0.15 or email in self._emails:  # namesakes: addresses must differ
            email = email.replace("@", f".{index}@")
        self._emails.add(email)
        phone = f"+49 1{rng.choice('567')}{rng.randint(0, 9)} {rng.randint(1000000, 9999999)}"
        city, postcode = rng.choice(CITIES)
        affinity = {ch: rng.random() < pr for ch, pr in CHANNEL_AFFINITY[group].items()}
        kinds = ["desktop_web"] if age > 40 or rng.random() < 0.5 else ["phone_web"]
        if affinity["app"]:
            kinds.append("phone_app")
        if rng.random() < 0.35:
            kinds.append(rng.choice(("phone_web", "tablet_web", "desktop_web")))
        devices = []
        for d, kind in enumerate(dict.fromkeys(kinds)):
            device = Device(kind, _uuid(seed, "anon", index, d))
            if kind == "phone_app":
                device.os = rng.choice(("iOS", "Android"))
                device.device_id = _hex(seed, "dev", index, d, length=16).upper()
                device.advertising_id = _uuid(seed, "ad", index, d).upper()
            devices.append(device)
        return Person(
            person_id=f"P{index:06d}",
            age=age,
            age_group=group,
            birth_date=born,
            first_name=first,
            last_name=last,
            email=email,
            phone=phone,
            city=city,
            postal_code=postcode,
            user_id=f"u_{_hex(seed, 'user', index, length=12)}",
            devices=devices,
            affinity=affinity,
        )

    # -- journeys ----------------------------------------------------------------------------
    def _journey(self, p: Person, rng: random.Random) -> _Journey:
        cfg = self.config
        start = cfg.start + timedelta(
            days=rng.uniform(0, cfg.days * 0.55), hours=rng.uniform(7, 22)
        )
        j = _Journey(self, p, rng, start)
        end = cfg.start + timedelta(days=cfg.days)
        model = rng.choice(MODELS)
        for stage in STAGES:
            if j.now >= end:
                break
            p.stage_times[stage] = _iso(j.now)
            pain = getattr(self, f"_{stage}")(j, model)
            p.pain_points += pain
            if stage == "advocacy":
                break
            base, hurt = ADVANCE[stage]
            if rng.random() >= (hurt if pain else base):
                p.churned = stage in ("purchase", "retention") or rng.random() < 0.5
                if not p.churned and p.identified and p.affinity["email"]:
                    j.wait_days(20)
                    if j.now < end:
                        j.service("email", "Email Opened", {"campaign_name": "Newsletter"})
                break
            j.wait_days(
                {
                    "awareness": 6,
                    "consideration": 10,
                    "decision": 14,
                    "purchase": 30,
                    "retention": 40,
                }[stage]
            )
        self._newsletters(j, end)
        j.events.sort(key=lambda e: e["timestamp"])  # newsletters interleave with the journey
        j.events = [e for e in j.events if e["timestamp"] < _iso(end)]
        return j

    def _newsletters(self, j: _Journey, end: datetime) -> None:
        """Subscribers get a newsletter every two weeks until they unsubscribe; some open it,
        a few click through to the website (an e-mail campaign visit)."""
        subscribed = next(
            (e["timestamp"] for e in j.events if e.get("event") == "Newsletter Subscribed"), None
        )
        if subscribed is None:
            return
        stop = next(
            (e["timestamp"] for e in j.events if e.get("event") == "Unsubscribed"), _iso(end)
        )
        p, rng = j.p, j.rng
        j.now = datetime.fromisoformat(subscribed) + timedelta(days=rng.uniform(3, 14))
        issue = 0
        opens = 0.65 if p.affinity["email"] else 0.25
        while _iso(j.now) < stop:
            issue += 1
            props = {"campaign_id": f"nl-{issue:03d}", "campaign_name": f"Newsletter {issue}"}
            j.service("email", "Email Delivered", props)
            if rng.random() < opens:
                j.advance(rng.uniform(20, 2000))
                j.service("email", "Email Opened", props)
                if rng.random() < 0.3:
                    j.advance(rng.uniform(0.2, 5))
                    j.service("email", "Email Clicked", props)
                    device = rng.choice(p.devices)
                    campaign = {
                        "source": "newsletter",
                        "medium": "email",
                        "name": props["campaign_id"],
                    }
                    j.session(
                        device,
                        rng.sample(BROWSE_PAGES, rng.randint(1, 4)),
                        [],
                        campaign,
                        "https://mail.google.com/",
                    )
            j.now = j.now.replace(hour=rng.randint(7, 11)) + timedelta(days=14)

    def _awareness(self, j: _Journey, model: str) -> int:
        p, rng = j.p, j.rng
        first = p.devices[0]
        if p.affinity["social"] and rng.random() < 0.7:
            network = rng.choice(SOCIAL_NETWORKS)
            p.social_handle = f"@{_ascii(p.first_name.lower())}_{_hex(p.person_id, length=5)}"
            p.social_ids.append(f"{network}:{p.social_handle}")
            j.emit(
                {
                    "type": "track",
                    "event": rng.choice(("Ad Clicked", "Post Liked")),
                    "anonymousId": p.social_ids[-1],
                    "properties": {"network": network, "post": f"{model} Launch"},
                    "context": {
                        "channel": "social",
                        "traits": {"social_handle": p.social_handle},
                        "library": {"name": "touchpoints-social-listening", "version": "1.0"},
                    },
                }
            )
            j.advance(rng.uniform(1, 30))
            campaign = {"source": network, "medium": "social", "name": "launch"}
            j.session(
                first, ["/", f"/modelle/{_slug(model)}"], [], campaign, f"https://{network}.com/"
            )
        elif rng.random() < 0.5:
            j.session(first, ["/", "/modelle"], [], None, "https://www.google.com/")
        else:
            j.session(
                first,
                ["/"],
                [],
                {"source": "google", "medium": "cpc", "name": "brand"},
                "https://www.google.com/",
            )
        for _ in range(rng.randint(0, 3)):  # looking around again, days later
            j.wait_days(2)
            pages = rng.sample(BROWSE_PAGES, rng.randint(2, 5))
            j.session(rng.choice(p.devices), pages, [], None, "https://www.google.com/")
        return 0

    def _consideration(self, j: _Journey, model: str) -> int:
        p, rng = j.p, j.rng
        pain = 0
        for visit in range(rng.randint(1, 4)):
            device = rng.choice(p.devices)
            slug = _slug(model)
            tracks = [
                (
                    "Product Viewed",
                    {"product_id": slug, "name": model, "price": PRICES[model], "currency": "EUR"},
                )
            ]
            if rng.random() < 0.6:
                tracks.append(("Configurator Started", {"model": model}))
            if rng.random() < 0.3:
                tracks.append(("Brochure Downloaded", {"model": model}))
            if rng.random() < 0.25:
                tracks.append(("Comparison Viewed", {"models": [model, rng.choice(MODELS)]}))
            if rng.random() < 0.08:
                tracks.append(("Configurator Error", {"model": model, "code": "E-CFG-503"}))
                pain = 1
            extra = rng.sample(BROWSE_PAGES, rng.randint(0, 3))
            j.session(device, [f"/modelle/{slug}", *extra, f"/konfigurator/{slug}"], tracks)
            if visit == 0 and not p.identified and rng.random() < 0.75:
                j.identify(device, "Signed Up")
                if p.affinity["email"] or rng.random() < 0.3:
                    j.service(
                        "email",
                        "Newsletter Subscribed",
                        {"list": "news"},
                        explicit=rng.choice(("email", "E-Mail", "email")),
                    )
            j.wait_days(3)
        if p.affinity["chat"] and rng.random() < 0.6:
            j.service("chat", "Chat Started", {"topic": "Lieferzeit", "bot": True})
            j.advance(rng.uniform(1, 6))
            if rng.random() < 0.3:
                j.service("chat", "Chatbot Handover", {"team": "sales"})
            j.service("chat", "Chat Ended", {"rating": rng.choice((2, 4, 5, 5))})
        if p.identified and p.affinity["email"]:
            j.service("email", "Email Delivered", {"campaign_name": "Probefahrt-Wochen"})
            j.advance(rng.uniform(30, 600))
            j.service("email", "Email Opened", {"campaign_name": "Probefahrt-Wochen"})
        return pain

    def _decision(self, j: _Journey, model: str) -> int:
        p, rng = j.p, j.rng
        pain = 0
        device = j.device("phone_app", "desktop_web") if p.affinity["app"] else p.devices[-1]
        if not device.identified and p.identified:
            j.session(device, ["/login"], [])
            j.identify(device, "Logged In")
        campaign = (
            {"source": "newsletter", "medium": "email", "name": "probefahrt"}
            if p.affinity["email"] and p.identified
            else None
        )
        if p.affinity["sms"] and p.identified and rng.random() < 0.5:
            j.service("sms", "SMS Delivered", {"campaign_name": "Probefahrt"})
            j.advance(rng.uniform(5, 90))
            campaign = {"source": "sms", "medium": "sms", "name": "probefahrt"}
        tracks: list[tuple[str, dict]] = [
            ("Configuration Saved", {"model": model, "trim": rng.choice(("Basis", "Plus", "GT"))})
        ]
        roll = rng.random()
        if roll < 0.12:
            tracks.append(("Configuration Abandoned", {"model": model, "step": "Finanzierung"}))
            pain = 1
        elif roll < 0.6:
            tracks.append(("Test Drive Requested", {"model": model, "dealer": p.city}))
        else:
            tracks.append(("Quote Requested", {"model": model}))
        accessory, price = rng.choice(ACCESSORIES)
        if rng.random() < 0.35:
            tracks += [
                ("Product Added", {"name": accessory, "price": price}),
                ("Cart Viewed", {}),
                ("Checkout Started", {"value": price}),
            ]
            if rng.random() < 0.15:
                tracks.append(("Checkout Error", {"code": "PAYMENT_TIMEOUT"}))
                pain = 1
        j.session(
            device,
            [f"/konfigurator/{_slug(model)}", "/probefahrt"],
            tracks,
            campaign,
            "https://mail.google.com/" if campaign and campaign["medium"] == "email" else "",
        )
        if p.affinity["phone"] and p.identified:
            j.service(
                "phone",
                "Call Completed",
                {"reason": "Probefahrt", "duration_s": rng.randint(60, 900), "team": "sales"},
            )
            if rng.random() < 0.15:
                j.service(
                    "phone",
                    "Call Completed",
                    {
                        "reason": "Rückruf fehlt",
                        "duration_s": rng.randint(60, 600),
                        "team": "support",
                    },
                )
                pain = 1
        if p.affinity["store"]:
            j.wait_days(4)
            j.service("store", "Test Drive Completed", {"model": model, "dealer": p.city})
        return pain

    def _purchase(self, j: _Journey, model: str) -> int:
        p, rng = j.p, j.rng
        if not p.identified:
            j.identify(p.devices[0], "Signed Up")
        p.purchased_model = model
        p.customer_number = f"K-{1_000_000 + int(p.person_id[1:])}"
        order = {
            "order_id": f"NW-{_hex(p.person_id, 'order', length=8).upper()}",
            "revenue": PRICES[model],
            "currency": "EUR",
            "products": [
                {"product_id": _slug(model), "name": model, "price": PRICES[model], "quantity": 1}
            ],
        }
        if p.affinity["store"] or rng.random() < 0.4:
            j.service("store", "Order Completed", {**order, "dealer": p.city})
        else:
            device = j.device("desktop_web", "phone_web", "tablet_web", "phone_app")
            j.session(device, ["/kasse", "/bestellung/danke"], [("Order Completed", order)])
        p.vehicle_id = f"WNW{_hex(p.person_id, 'vin', length=14).upper()}"
        return 0

    def _retention(self, j: _Journey, model: str) -> int:
        p, rng = j.p, j.rng
        pain = 0
        car = {
            "type": "track",
            "userId": p.user_id,
            "context": {
                "device": {
                    "id": p.vehicle_id,
                    "type": "car",
                    "manufacturer": "Nordwind",
                    "model": model,
                },
                "library": {"name": "nordwind-connected-car", "version": "2.3"},
            },
        }
        j.emit({**car, "event": "Vehicle Connected", "properties": {"vin": p.vehicle_id}})
        for _ in range(rng.randint(4, 20)):
            j.wait_days(4)
            j.emit(
                {
                    **car,
                    "event": "Trip Completed",
                    "properties": {"km": round(rng.uniform(3, 180), 1), "vin": p.vehicle_id},
                }
            )
        if p.affinity["app"]:
            app = j.device("phone_app")
            if app.kind == "phone_app":
                if not app.identified:
                    j.identify(app, "Logged In")
                j.session(
                    app, ["Fahrzeug", "Klima"], [("Remote Climate Started", {"vin": p.vehicle_id})]
                )
        if p.affinity["voice"]:
            j.emit(
                {
                    "type": "track",
                    "userId": p.user_id,
                    "event": "Voice Command",
                    "properties": {"intent": "battery_status"},
                    "context": {
                        "device": {"type": "smart_speaker", "id": _hex(p.person_id, "spk")},
                        "library": {"name": "nordwind-alexa-skill", "version": "1.2"},
                    },
                }
            )
        if p.affinity["blockchain"]:
            p.wallet = "0x" + _hex(p.person_id, "wallet", length=40)
            j.service("blockchain", "Wallet Connected", {"wallet": p.wallet})
            j.service(
                "blockchain", "Digital Twin NFT Claimed", {"wallet": p.wallet, "vin": p.vehicle_id}
            )
        j.wait_days(10)
        j.emit({**car, "event": "Service Alert Raised", "properties": {"code": "TYRE_PRESSURE"}})
        channel = "phone" if p.affinity["phone"] else "web"
        if channel == "phone":
            j.service("phone", "Service Booked", {"workshop": p.city, "team": "service"})
        else:
            j.session(
                j.device("desktop_web", "phone_web", "tablet_web", "phone_app"),
                ["/service/termin"],
                [("Service Booked", {"workshop": p.city})],
            )
        if rng.random() < 0.35:
            accessory, price = rng.choice(ACCESSORIES)
            order = {
                "order_id": f"NW-{_hex(p.person_id, 'acc', length=8).upper()}",
                "revenue": price,
                "currency": "EUR",
                "products": [{"name": accessory, "price": price, "quantity": 1}],
            }
            j.session(
                j.device("desktop_web", "phone_web", "tablet_web", "phone_app"),
                ["/zubehoer", "/kasse"],
                [("Order Completed", order)],
            )
        if rng.random() < 0.12:
            j.service(
                rng.choice(("phone", "chat")) if p.affinity["chat"] else "phone",
                "Complaint Filed",
                {"topic": "Werkstatttermin", "team": "complaints"},
            )
            pain = 1
            if p.identified and p.affinity["email"] and rng.random() < 0.5:
                j.service("email", "Unsubscribed", {"list": "news"})
        return pain

    def _advocacy(self, j: _Journey, model: str) -> int:
        p, rng = j.p, j.rng
        j.session(
            j.device("desktop_web", "phone_web", "phone_app"),
            ["/bewertung"],
            [("Review Submitted", {"rating": rng.choice((4, 5, 5)), "model": model})],
        )
        if rng.random() < 0.5:
            j.session(p.devices[0], ["/empfehlen"], [("Referral Sent", {"method": "link"})])
        if p.affinity["social"]:
            j.service(
                "social",
                "Content Shared",
                {"network": rng.choice(SOCIAL_NETWORKS), "post": f"Mein {model}"},
            )
        return 0

    # -- ground truth ------------------------------------------------------------------------
    def _record_truth(self, p: Person) -> None:
        t = self.truth
        for d in p.devices:
            t.add("anonymous_id", d.anonymous_id, p.person_id)
            t.add("device_id", d.device_id, p.person_id)
            t.add("advertising_id", d.advertising_id, p.person_id)
        for social_id in p.social_ids:
            t.add("anonymous_id", social_id, p.person_id)
        for contact in p.contact_ids:
            t.add("anonymous_id", contact, p.person_id)
        t.add("user_id", p.user_id, p.person_id)
        t.add("email", p.email, p.person_id)
        t.add("phone", p.phone, p.person_id)
        t.add("wallet", p.wallet, p.person_id)
        t.add("vehicle_id", p.vehicle_id, p.person_id)
        t.add("device_id", p.vehicle_id, p.person_id)  # the connected car reports its VIN
        if p.social_handle:
            t.add("social_handle", p.social_handle.lower(), p.person_id)
        t.add("customer_number", p.customer_number, p.person_id)
        reached = [s for s in STAGES if s in p.stage_times]
        t.persons.append(
            {
                "person_id": p.person_id,
                "age": p.age,
                "age_group": p.age_group,
                "birth_date": p.birth_date.isoformat(),
                "city": p.city,
                "highest_stage": reached[-1] if reached else "",
                **{f"{s}_at": p.stage_times.get(s, "") for s in STAGES},
                "churned": p.churned,
                "identified": p.identified,
                "devices": len(p.devices),
                "pain_points": p.pain_points,
                "preferred_channels": " ".join(ch for ch, on in p.affinity.items() if on),
            }
        )

    def people(self) -> list[Person]:
        return self._people


_TITLES = {
    "": "Startseite",
    "modelle": "Modelle",
    "konfigurator": "Konfigurator",
    "probefahrt": "Probefahrt",
    "login": "Anmelden",
    "konto": "Mein Konto",
    "kasse": "Kasse",
    "bestellung": "Bestellung",
    "service": "Service",
    "zubehoer": "Zubehör",
    "bewertung": "Bewertung",
    "empfehlen": "Empfehlen",
    "angebote": "Angebote",
    "finanzierung": "Finanzierung",
    "haendler": "Händlersuche",
}


def _title(path: str) -> str:
    parts = path.strip("/").split("/")
    title = _TITLES.get(parts[0], parts[0].title())
    return f"{title}: {parts[1].replace('-', ' ').title()}" if len(parts) > 1 else title


def _slug(text: str) -> str:
    return text.lower().replace(" ", "-")


def _ascii(text: str) -> str:
    return (
        text.replace("ä", "ae")
        .replace("ö", "oe")
        .replace("ü", "ue")
        .replace("ß", "ss")
        .replace("é", "e")
    )
