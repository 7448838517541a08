"""What the assistant may tell a verified customer about themselves, read from their
events: the latest order and its state, the next appointment, and whether a complaint is
open.

Orders follow Segment's e-commerce spec: the order is the latest ``Order Completed`` (the
``predictions_conversion_event``), its ``order_id`` ties later events to it (``Order
Shipped``, ``Order Delivered``, ``Order Cancelled``, ``Order Refunded``, ``Order Updated``
with a ``status``), and a delivery date is read from ``delivery_date``,
``expected_delivery`` or ``estimated_delivery`` on any of them. An appointment is a booking
event (``Service Booked``, ``Test Drive Booked``, …) whose ``appointment_at`` (or ``start``,
``scheduled_at``, ``date``) is still ahead. A complaint is open when a ``Complaint Filed``
of the last 30 days has no ``Complaint Resolved`` after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from touchpoints.assist.store import AssistantStore, PersonEvent

ORDER_STATES = {
    "Order Shipped": "shipped",
    "Order Delivered": "delivered",
    "Order Cancelled": "cancelled",
    "Order Refunded": "refunded",
    "Order Updated": "updated",
}
BOOKINGS = {
    "Service Booked": "service",
    "Service Appointment Booked": "service",
    "Appointment Booked": "appointment",
    "Test Drive Booked": "test_drive",
}
_WHEN = ("appointment_at", "start", "scheduled_at", "starts_at", "date")
_DELIVERY = ("delivery_date", "expected_delivery", "estimated_delivery")
COMPLAINT_DAYS = 30


def _props(event: PersonEvent) -> dict[str, Any]:
    if not event.properties:
        return {}
    try:
        found = orjson.loads(event.properties)
    except orjson.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Order:
    order_id: str | None
    placed_at: datetime
    items: tuple[str, ...]
    total: float | None
    currency: str | None
    state: str  # placed, shipped, delivered, cancelled, refunded, updated
    state_at: datetime
    status: str | None  # an Order Updated's own status text
    carrier: str | None
    delivery: datetime | None


@dataclass(frozen=True)
class Appointment:
    kind: str  # service, test_drive, appointment
    at: datetime
    place: str | None


class Customer:
    """A verified person's orders, appointments and complaints, from their events."""

    def __init__(self, store: AssistantStore, order_event: str) -> None:
        self.store = store
        self.order_event = order_event

    def latest_order(self, person: int) -> Order | None:
        events = self.store.person_events(person, [self.order_event, *ORDER_STATES])
        placed = next((e for e in events if e.event == self.order_event), None)
        if placed is None:
            return None
        props = _props(placed)
        order_id = props.get("order_id") if isinstance(props.get("order_id"), str) else None
        at = placed.timestamp.replace(tzinfo=UTC)
        state, state_at, status, carrier = "placed", at, None, None
        delivery = next((d for d in (_moment(props.get(k)) for k in _DELIVERY) if d), None)
        later = [
            e
            for e in reversed(events)  # oldest first
            if e.event in ORDER_STATES
            and e.timestamp >= placed.timestamp
            and (order_id is None or _props(e).get("order_id") == order_id)
        ]
        for event in later:
            found = _props(event)
            state, state_at = ORDER_STATES[event.event], event.timestamp.replace(tzinfo=UTC)
            status = str(found["status"]) if found.get("status") is not None else status
            if isinstance(found.get("carrier"), str):
                carrier = found["carrier"]
            delivery = next((d for d in (_moment(found.get(k)) for k in _DELIVERY) if d), delivery)
        return Order(
            order_id=order_id,
            placed_at=at,
            items=_items(props),
            total=_number(props.get("revenue", props.get("total"))),
            currency=props.get("currency") if isinstance(props.get("currency"), str) else None,
            state=state,
            state_at=state_at,
            status=status,
            carrier=carrier,
            delivery=delivery,
        )

    def next_appointment(self, person: int, now: datetime | None = None) -> Appointment | None:
        now = now or datetime.now(UTC)
        ahead: list[Appointment] = []
        for event in self.store.person_events(person, list(BOOKINGS)):
            props = _props(event)
            when = next((m for m in (_moment(props.get(k)) for k in _WHEN) if m), None)
            if when is not None and when > now:
                place = next(
                    (
                        props[k]
                        for k in ("workshop", "dealer", "place")
                        if isinstance(props.get(k), str)
                    ),
                    None,
                )
                ahead.append(Appointment(BOOKINGS[event.event], when, place))
        return min(ahead, key=lambda found: found.at) if ahead else None

    def open_complaint(self, person: int, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        events = self.store.person_events(person, ["Complaint Filed", "Complaint Resolved"], 20)
        if not events or events[0].event != "Complaint Filed":
            return False
        return events[0].timestamp.replace(tzinfo=UTC) >= now - timedelta(days=COMPLAINT_DAYS)


def _items(props: dict[str, Any]) -> tuple[str, ...]:
    products = props.get("products")
    if not isinstance(products, list):
        return ()
    names = [p.get("name") for p in products if isinstance(p, dict)]
    return tuple(name for name in names if isinstance(name, str))[:3]


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
