"""Predictions: lifetime value from each person's purchases (BG/NBD for how often they
buy again and whether they are still a customer, Gamma-Gamma for how much), trained into
model cards and scored into each person's figures (see docs/predictions.md)."""

from touchpoints.predictions.queries import HoldoutQuery, LtvTraining
from touchpoints.predictions.service import LtvSettings, Predictions

__all__ = ["HoldoutQuery", "LtvSettings", "LtvTraining", "Predictions"]
