"""Synthetic shops for the predictions' tests: customers who buy, then drive (a trip a week)
until they stop, a complaint or two support calls within days (the stage model's pain
points) making them stop sooner; and (:func:`shop`) some of them buying again now and then
until they drop out, and one who denies analytics. Every customer but two grants analytics
with their first purchase (the consent banner of the checkout): ``DENIED`` denies it and
``NEVER_CHOSE`` never chooses."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

DENIED = "c00001"  # in shop(): denies analytics (the category predictions need by default)
NEVER_CHOSE = "c00002"  # makes no choice: only the defaults hold (necessary)
GRANTED = {"consent": {"categoryPreferences": {"analytics": True}}}
START = datetime(2025, 1, 1)
END = START + timedelta(days=420)  # the data's last moment; "now" in the churn tests


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def customers(count: int, seed: int = 1, start: datetime = START) -> list[dict[str, Any]]:
    """Segment messages: each customer buys once, then drives until they stop; 420 days
    from ``start``."""
    rng = random.Random(seed)
    end = start + (END - START)
    messages: list[dict[str, Any]] = []
    for n in range(count):
        user = f"c{n:05d}"

        def track(
            event: str, at: datetime, user: str = user, context: Any = None, **props: Any
        ) -> None:
            if at < end:
                messages.append(
                    {
                        "type": "track",
                        "event": event,
                        "userId": user,
                        "timestamp": iso(at),
                        "messageId": f"{user}-{len(messages)}",
                        "properties": props,
                        **({"context": context} if context else {}),
                    }
                )

        bought = start + timedelta(days=rng.uniform(0, 250))
        consent = None if user in (DENIED, NEVER_CHOSE) else GRANTED
        track("Order Completed", bought, context=consent, revenue=float(rng.randint(100, 900)))
        unhappy = rng.random() < 0.4
        if unhappy:
            trouble = bought + timedelta(days=rng.uniform(5, 40))
            if rng.random() < 0.5:
                track("Complaint Filed", trouble)
            else:
                track("Call Completed", trouble)
                track("Call Completed", trouble + timedelta(days=rng.uniform(0.5, 5)))
        stops = bought + timedelta(days=rng.expovariate(1 / (60 if unhappy else 400)))
        at = bought + timedelta(days=rng.uniform(1, 7))
        while at < stops:
            track("Trip Completed", at, km=round(rng.uniform(3, 90), 1))
            at += timedelta(days=rng.uniform(3, 11))
    return messages


def shop(start: datetime) -> list[dict[str, Any]]:
    """Churn's customers (each buys once, then drives until they stop), 200 of them buying
    again now and then until they drop out, and one who denies analytics."""
    messages = customers(900, start=start)
    rng = random.Random(7)
    end = start + (END - START)
    for n in range(200):
        at = start + timedelta(days=rng.uniform(0, 100))
        while at < end:
            messages.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"c{n:05d}",
                    "timestamp": iso(at),
                    "properties": {"revenue": float(rng.randint(20, 400))},
                }
            )
            if rng.random() < 0.25:  # drops out after this purchase (BG/NBD's story)
                break
            at += timedelta(days=rng.expovariate(1 / 40))
    messages.append(
        {
            "type": "track",
            "event": "Segment Consent Preference Updated",
            "userId": DENIED,
            "timestamp": iso(start + timedelta(days=1)),
            "context": {"consent": {"categoryPreferences": {"analytics": False}}},
        }
    )
    return messages
