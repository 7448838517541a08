"""Predictions: lifetime value from each person's purchases (BG/NBD for how often they
buy again and whether they are still a customer, Gamma-Gamma for how much), trained into
model cards and scored into each person's figures; and churn risk from the journeys, with
each person's reasons (see docs/predictions.md)."""

from touchpoints.predictions.churn_service import ChurnRisk, ChurnSettings
from touchpoints.predictions.queries import ChurnTraining, HoldoutQuery, LtvTraining
from touchpoints.predictions.service import LtvSettings, Predictions

__all__ = [
    "ChurnRisk",
    "ChurnSettings",
    "ChurnTraining",
    "HoldoutQuery",
    "LtvSettings",
    "LtvTraining",
    "Predictions",
]
