"""What churn means and which features churn risk learns from: light (no query engine), so
the core and the service load without Ibis; the features themselves are
:mod:`touchpoints.predictions.churn_features`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from touchpoints.channels import CHANNELS
from touchpoints.journeys.model import StageModel

Population = Literal["purchasers", "everyone"]

# Identifier types that show a person is known by name, not only by a cookie or device.
KNOWN_TYPES = ("user_id", "email", "phone", "customer_number")


@dataclass(frozen=True)
class ChurnSpec:
    """What churn means and whom it is asked about (the settings, or a card's features)."""

    events: tuple[str, ...]  # activity events; empty: any event
    window_days: int
    population: Population
    conversion_event: str
    revenue_property: str


def feature_names(model: StageModel) -> list[str]:
    """The columns the models learn from, in order: :data:`FEATURES`, then one share per
    channel, then one count per pain point of the stage model (``pain_0``, …)."""
    return [
        *FEATURES,
        *(f"channel_{channel}" for channel in CHANNELS),
        *(f"pain_{i}" for i in range(len(model.pain_points))),
    ]


# What each plain feature is (the channel shares and pain counts are named by the stage
# model and the channels): the face turns a name, a value and points into words.
FEATURES: dict[str, str] = {
    "recency_days": "days since the last event",
    "tenure_days": "days since the first event",
    "events_window": "events in the window before",
    "active_days_window": "days with an event in the window before",
    "events_total": "events ever",
    "trend": "share of the window's events in its second half (0.5: steady)",
    "purchases": "conversion events ever",
    "revenue": "revenue of the conversion events ever",
    "stage": "furthest journey stage entered (0: the first)",
    "pain_total": "pain point signals in the window before",
    "consent_granted": "consent categories granted",
    "consent_denied": "consent categories denied",
    "identified": "known by a user id, e-mail, phone or customer number (1) or not (0)",
}
