"""The stage steps of a journey: what a person does in awareness, consideration, decision,
purchase, retention and advocacy, and the newsletters they get. Each step returns 1 if the
person met a pain point in it (which makes stopping likelier), else 0."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from touchpoints.demo.catalogue import (
    ACCESSORIES,
    BROWSE_PAGES,
    MODELS,
    PRICES,
    SITE,
    SOCIAL_NETWORKS,
    _ascii,
    _slug,
    item_id,
)
from touchpoints.demo.conversations import converse
from touchpoints.demo.journey import Journey
from touchpoints.demo.model import _hex, _iso


def newsletters(j: Journey, end: datetime) -> None:
    """Subscribers get a newsletter every two weeks until they unsubscribe (or lapse, as a
    customer: life.py); some open it,
    a few click through to the website (an e-mail campaign visit)."""
    subscribed = next(
        (e["timestamp"] for e in j.events if e.get("event") == "Newsletter Subscribed"), None
    )
    if subscribed is None:
        return
    p = j.p
    stop = next((e["timestamp"] for e in j.events if e.get("event") == "Unsubscribed"), _iso(end))
    if p.lapsed_at is not None:  # a lapsed customer's account and mailing list end (life.py)
        stop = min(stop, p.lapsed_at)
    rng = j.rng
    j.now = datetime.fromisoformat(subscribed) + timedelta(days=rng.uniform(3, 14))
    issue = 0
    opens = 0.65 if p.affinity["email"] else 0.25
    while _iso(j.now) < stop:
        issue += 1
        props = {"campaign_id": f"nl-{issue:03d}", "campaign_name": f"Newsletter {issue}"}
        j.service("email", "Email Delivered", props)
        if rng.random() < opens:
            j.advance(rng.uniform(20, 2000))
            if p.lapsed_at is not None and _iso(j.now) >= p.lapsed_at:
                break  # the last issue reached a customer who had left
            j.service("email", "Email Opened", props)
            if rng.random() < 0.3:
                j.advance(rng.uniform(0.2, 5))
                if p.lapsed_at is not None and _iso(j.now) >= p.lapsed_at:
                    break
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


def awareness(j: Journey, model: str) -> int:
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
        j.session(first, ["/", f"/modelle/{_slug(model)}"], [], campaign, f"https://{network}.com/")
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


def consideration(j: Journey, model: str) -> int:
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
        # A question to the service assistant in the website's chat (delivery times, a test
        # drive); three in ten want the sales team. The draws are the journey's as before.
        start = j.now
        j.advance(rng.uniform(1, 6))
        handed = rng.random() < 0.3
        rating = rng.choice((2, 4, 5, 5))
        intents = ["delivery_date", "test_drive"] if handed else ["delivery_date", "thanks"]
        converse(j, "chat", intents, start, j.now, team="sales" if handed else None, rating=rating)
    if p.affinity["voice"] or p.affinity["phone"]:
        _voice_call(
            j, "consideration", 0.35, ("opening_hours", "test_drive", "nearest_dealer"), "sales"
        )
    if p.identified and p.affinity["email"]:
        j.service("email", "Email Delivered", {"campaign_name": "Probefahrt-Wochen"})
        j.advance(rng.uniform(30, 600))
        j.service("email", "Email Opened", {"campaign_name": "Probefahrt-Wochen"})
    return pain


def decision(j: Journey, model: str) -> int:
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
            (
                "Product Added",
                {"product_id": item_id(accessory), "name": accessory, "price": price},
            ),
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


def purchase(j: Journey, model: str) -> int:
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


def retention(j: Journey, model: str) -> int:
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
        _voice_call(j, "retention", 0.5)
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
            "products": [
                {"product_id": item_id(accessory), "name": accessory, "price": price, "quantity": 1}
            ],
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
        _low_review(j, model)
    return pain


def _voice_call(
    j: Journey,
    salt: str,
    chance: float,
    intents: tuple[str, ...] = ("service_appointment", "nearest_dealer", "opening_hours"),
    team: str = "service",
) -> None:
    """A question to the service assistant by voice (a smart speaker, the car, or the
    hotline, where the assistant answers first), with ``chance``; a generator of its own
    (``salt``): nobody else's journey changes, and this one's only moves on by the call's
    minutes. One in six wants a person after the answer."""
    p = j.p
    own = random.Random(f"{j.sim.config.seed}-voice-{salt}-{p.person_id}")
    if own.random() >= chance:
        return
    start = j.now + timedelta(minutes=own.uniform(1, 30))
    end = start + timedelta(minutes=2)
    asked = [own.choice(intents)]
    if own.random() < 0.15:
        converse(j, "voice", [*asked, "human"], start, end, team=team, until=end)
    else:
        converse(j, "voice", [*asked, "thanks"], start, end)


def _low_review(j: Journey, model: str) -> None:
    """Some who complained also leave a bad review (one or two stars) on the website. Drawn
    from a generator of its own, so everyone else's journey stays as it was."""
    p = j.p
    own = random.Random(f"{j.sim.config.seed}-review-{p.person_id}")
    if own.random() >= 0.4:
        return
    j.now += timedelta(hours=own.uniform(2, 48))
    j.emit(
        {
            "type": "track",
            "event": "Review Submitted",
            "userId": p.user_id,
            "properties": {"rating": own.choice((1, 2)), "model": model},
            "context": {
                "library": {"name": "analytics.js", "version": "next-1.74.0"},
                "page": {"path": "/bewertung", "url": SITE + "/bewertung"},
                "locale": "de-DE",
            },
        }
    )


def advocacy(j: Journey, model: str) -> int:
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


STEPS: dict[str, Callable[[Journey, str], int]] = {
    "awareness": awareness,
    "consideration": consideration,
    "decision": decision,
    "purchase": purchase,
    "retention": retention,
    "advocacy": advocacy,
}
