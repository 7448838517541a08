"""A customer's repeat purchases in the web shop, from the car's delivery on: the
buy-till-you-die story the lifetime-value models (BG/NBD, Gamma-Gamma) are made for.

While they buy, each customer orders at their own steady rate, a Poisson process of
``rate`` orders a month, the rates varying across customers as a gamma distribution (shape
``RATE_SHAPE``, mean ``RATE_MEAN``). After each order they may stop buying in the shop for
good (they buy elsewhere, and go on driving), with a chance of their own drawn from a beta
distribution (``DROPOUT``: a third on average, some loyal, many gone after an order or two).
Lapsing ends it too (life.py: at once for a customer who stopped in the purchase stage,
after the retention stage, or with the monthly hazard afterwards): a lapsed customer orders
nothing more.

An order is a basket of one item or more from ``SHOP_ITEMS``, each drawn by the customer's
own taste (a weight per item, drawn once around the item's popularity), so each customer's
order values vary around an average of their own. Orders are web-shop sessions on a device
the customer has signed in on (a checkout needs the account): the first item's page with its
``Product Viewed``, then ``Order Completed`` with each item's ``product_id``. Everything is
drawn from a generator of the person's own (``{seed}-shop-{person}``), after the rest of the
journey: every other event stays as it was.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from touchpoints.demo.catalogue import SHOP_ITEMS, item_id
from touchpoints.demo.journey import Journey
from touchpoints.demo.model import _hex, _iso

RATE_MEAN = 0.8  # orders a month, on average over the customers
RATE_SHAPE = 0.9  # of the rates' gamma distribution: lower, more unequal
DROPOUT = (0.4, 0.8)  # the beta distribution of the chance to stop buying after an order
MONTH_DAYS = 30.0
BASKET_MORE = 0.5  # the chance of one more item in an order (then again)
DELIVERY_DAYS = (7.0, 28.0)  # the first order comes after the car is delivered
ORDER_MINUTES = 30  # an order's session must end before the customer lapses


def shop_orders(j: Journey, end: datetime) -> None:
    """The customer's repeat orders from the car's delivery until they lapse or ``end``."""
    p = j.p
    bought = p.stage_times.get("purchase")
    if p.purchased_model is None or bought is None:
        return
    stop = min(_iso(end), p.lapsed_at) if p.lapsed_at is not None else _iso(end)
    own = random.Random(f"{j.sim.config.seed}-shop-{p.person_id}")
    journey_rng, j.rng = j.rng, own  # visits draw from it too: the journey's stays as it was
    try:
        rate = own.gammavariate(RATE_SHAPE, RATE_MEAN / RATE_SHAPE)
        dropout = own.betavariate(*DROPOUT)
        taste = [own.gammavariate(popularity, 1.0) for _, _, popularity in SHOP_ITEMS]
        moment = datetime.fromisoformat(bought) + timedelta(days=own.uniform(*DELIVERY_DAYS))
        order = 0
        while rate > 0:
            moment += timedelta(days=own.expovariate(rate) * MONTH_DAYS)
            if _iso(moment + timedelta(minutes=ORDER_MINUTES)) >= stop:
                break
            order += 1
            j.now = moment
            _order(j, own, taste, order)
            if own.random() < dropout:
                break  # they buy elsewhere from now on (still a customer, still driving)
    finally:
        j.rng = journey_rng


def _order(j: Journey, own: random.Random, taste: list[float], order: int) -> None:
    """One order: a basket of one item or more, each drawn by the customer's taste."""
    p = j.p
    basket: dict[tuple[str, int], int] = {}  # (name, price) → quantity, in order drawn
    for _ in range(1 + _extra_items(own)):
        name, price, _ = own.choices(SHOP_ITEMS, weights=taste)[0]
        basket[(name, price)] = basket.get((name, price), 0) + 1
    products: list[dict[str, Any]] = [
        {"product_id": item_id(name), "name": name, "price": price, "quantity": quantity}
        for (name, price), quantity in basket.items()
    ]
    devices = [d for d in p.devices if j.signed_in(d)] or [p.devices[0]]
    device = own.choice(devices)
    details = {
        "order_id": f"NW-{_hex(p.person_id, 'shop', order, length=8).upper()}",
        "revenue": sum(line["price"] * line["quantity"] for line in products),
        "currency": "EUR",
        "products": products,
    }
    first = products[0]
    viewed = {k: first[k] for k in ("product_id", "name", "price")} | {"currency": "EUR"}
    j.session(
        device,
        [f"/zubehoer/{first['product_id']}", "/kasse", "/bestellung/danke"],
        [("Product Viewed", viewed), ("Order Completed", details)],
    )


def _extra_items(own: random.Random) -> int:
    """More items in a basket: none in about half the orders, rarely more than three."""
    extra = 0
    while own.random() < BASKET_MORE and extra < 5:
        extra += 1
    return extra
