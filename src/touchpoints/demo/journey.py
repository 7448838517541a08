"""One person's journey under construction: the clock, the events in time order, and the
calls every stage step uses (a visit on a device, a contact on a service channel, a sign-in)."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from touchpoints.demo.catalogue import SITE, UA_DESKTOP, UA_PHONE, UA_TABLET, _title
from touchpoints.demo.model import Device, Person, _hex, _iso, _uuid

if TYPE_CHECKING:
    from touchpoints.demo.simulator import Simulator


def consent_choices(person_id: str) -> dict[str, bool]:
    """A person's choices in the consent tool: marketing granted by six in ten, and
    personalisation (which the decide API needs) by seven in ten of those and four in ten of
    the others, about 58 % in all: who likes offers tends to like them tailored too."""
    marketing = int(hashlib.sha256(person_id.encode()).hexdigest(), 16) % 10 < 6
    draw = int(hashlib.sha256(f"{person_id}|personalisation".encode()).hexdigest(), 16) % 100
    return {"marketing": marketing, "personalisation": draw < (70 if marketing else 40)}


class Journey:
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
        if channel == "store":
            # A dealer's DMS never sees the web shop's user id or cookies: the dealer knows the
            # customer by its own number and what a salesperson typed in (dealers.py).
            record = self.sim.dealers.record(p, props.get("dealer") or p.city)
            who = {"anonymousId": record.number}
            context["traits"] = dict(record.traits)
        elif p.identified_at is not None and p.identified_at <= _iso(self.now):
            who = {"userId": p.user_id}
        elif channel in ("chat", "email"):
            # The website's chat widget and newsletter form know the visitor's cookie.
            who = {"anonymousId": p.devices[0].anonymous_id}
        else:
            # A call centre or SMS gateway knows a phone number, no user id.
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
        # The account's privacy settings, stamped by the consent tool on signing in: analytics
        # (which the analyses and the predictions need) granted, marketing and
        # personalisation by the person's own choice (from their id, so no draw of the
        # simulation's random stream changes).
        preferences = {"necessary": True, "analytics": True, **consent_choices(p.person_id)}
        context = {**context, "consent": {"categoryPreferences": preferences}}
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
