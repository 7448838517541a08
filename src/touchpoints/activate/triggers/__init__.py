"""Triggers: when an event matches, a person enters or exits an audience, or enters a
journey stage, send to a destination, set a trait, wait and check again; with a frequency
cap per person. Dispatched as events are committed, beside the collector."""

from touchpoints.activate.triggers.dispatch import Dispatch, Dispatched
from touchpoints.activate.triggers.live import LiveTriggers
from touchpoints.activate.triggers.service import Triggers

__all__ = ["Dispatch", "Dispatched", "LiveTriggers", "Triggers"]
