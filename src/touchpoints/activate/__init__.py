"""Activation: destinations that take messages about persons (webhooks, other collectors,
e-mail, files), through a durable outbox with retries, a delivery log and dead letters."""

from touchpoints.activate.senders import KINDS, Outcome, Senders, sign
from touchpoints.activate.service import Destinations
from touchpoints.activate.worker import DeliveryWorker

__all__ = ["KINDS", "DeliveryWorker", "Destinations", "Outcome", "Senders", "sign"]
