"""The lifetime-value models applied to a table of customers: fit both, compute each
customer's figures, lay them out for storage, and compare a holdout period by frequency.
Pure functions of arrays; the service (:mod:`touchpoints.predictions.service`) reads the
data and keeps the cards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from touchpoints.predictions import bgnbd, gamma_gamma
from touchpoints.predictions.bgnbd import Array, BgNbdParams, FitFailed
from touchpoints.predictions.gamma_gamma import PERIODS_PER_MONTH, GammaGammaParams
from touchpoints.predictions.results import HoldoutRow

DAYS_PER_PERIOD = {"days": 1.0, "weeks": 7.0}
HORIZONS_DAYS = (30, 90, 365)


@dataclass(frozen=True)
class Customers:
    """The RFM summary of everyone with a purchase in a window, times in the period unit;
    ``value``: the average of the repeat purchase days with a value (NaN: none)."""

    person: npt.NDArray[np.int64]
    x: Array
    t_x: Array
    T: Array
    value: Array

    @property
    def spenders(self) -> Array:
        """Repeat buyers with a positive average value: what Gamma-Gamma learns from."""
        return np.asarray((self.x > 0) & np.isfinite(self.value) & (self.value > 0))


def fit(customers: Customers) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both models fitted: BG/NBD on everyone, Gamma-Gamma on the repeat buyers with a
    value; the card's parameters and metrics. Raises FitFailed when either cannot be."""
    fitted = bgnbd.fit(customers.x, customers.t_x, customers.T)
    spenders = customers.spenders
    x, m = customers.x[spenders], customers.value[spenders]
    spend = gamma_gamma.fit(x, m)
    if spend.params.q <= 1:
        raise FitFailed(
            f"the spend model's q is {spend.params.q:.3g} (at most 1): the order values have "
            "no finite average; the lifetime value cannot be computed"
        )
    correlation = float(np.corrcoef(x, m)[0, 1]) if np.std(x) > 0 and np.std(m) > 0 else None
    parameters = {
        "bgnbd": bgnbd_parameters(fitted.params),
        "gamma_gamma": {"p": spend.params.p, "q": spend.params.q, "v": spend.params.v},
    }
    metrics = {
        **bgnbd_metrics(customers, fitted),
        "spend_customers": spend.customers,
        "gamma_gamma_log_likelihood": spend.log_likelihood,
        # Gamma-Gamma assumes order value and frequency independent: near 0 is good.
        "spend_frequency_correlation": correlation,
    }
    return parameters, metrics


def bgnbd_parameters(params: BgNbdParams) -> dict[str, float]:
    return {"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b}


def bgnbd_metrics(customers: Customers, fitted: bgnbd.BgNbdFit) -> dict[str, Any]:
    return {
        "customers": fitted.customers,
        "repeat_buyers": int(np.sum(customers.x > 0)),
        "repeat_purchases": int(np.sum(customers.x)),
        "bgnbd_log_likelihood": fitted.log_likelihood,
    }


def figures(
    parameters: dict[str, dict[str, float]],
    period: str,
    customers: Customers,
    discount_rate: float,
) -> dict[str, Array]:
    """Every customer's figures under a trained model's ``parameters``."""
    bg = BgNbdParams(**parameters["bgnbd"])
    gg = GammaGammaParams(**parameters["gamma_gamma"])
    x, t_x, T = customers.x, customers.t_x, customers.T
    days = DAYS_PER_PERIOD[period]
    spenders = customers.spenders
    # Without a repeat purchase of known value, the expected spend is the population's.
    spend = gamma_gamma.conditional_expected_spend(
        gg, np.where(spenders, x, 0.0), np.where(spenders, customers.value, 0.0)
    )
    figures = {
        "p_alive": bgnbd.probability_alive(bg, x, t_x, T),
        "expected_order_value": spend,
        "predicted_clv_12m": gamma_gamma.customer_lifetime_value(
            bg,
            spend,
            x,
            t_x,
            T,
            months=12,
            monthly_discount_rate=discount_rate,
            periods_per_month=PERIODS_PER_MONTH[period],
        ),
    }
    for horizon in HORIZONS_DAYS:
        figures[f"expected_purchases_{horizon}d"] = bgnbd.conditional_expected_purchases(
            bg, horizon / days, x, t_x, T
        )
    return figures


def score_rows(
    model_id: int, scored_at: datetime, customers: Customers, figures: dict[str, Array]
) -> pa.Table:
    count = customers.person.size
    value = customers.value
    return pa.table(
        {
            "person": pa.array(customers.person, pa.int64()),
            "model_id": pa.array(np.full(count, model_id), pa.int64()),
            "scored_at": pa.array([scored_at] * count, pa.timestamp("us")),
            "frequency": pa.array(customers.x.astype(np.int64), pa.int64()),
            "recency": pa.array(customers.t_x, pa.float64()),
            "age": pa.array(customers.T, pa.float64()),
            "average_order_value": pa.array(value, pa.float64(), mask=~np.isfinite(value)),
            **{
                name: pa.array(figures[name], pa.float64(), mask=~np.isfinite(figures[name]))
                for name in (
                    "p_alive",
                    "expected_purchases_30d",
                    "expected_purchases_90d",
                    "expected_purchases_365d",
                    "expected_order_value",
                    "predicted_clv_12m",
                )
            },
        }
    )


def by_frequency(x: Array, actual: Array, predicted: Array) -> list[HoldoutRow]:
    """Mean actual and predicted holdout purchases per calibration frequency 0 to 6, and 7+."""
    rows = []
    for label, chosen in [(str(n), x == n) for n in range(7)] + [("7+", x >= 7)]:
        if not np.any(chosen):
            continue
        rows.append(
            HoldoutRow(
                frequency=label,
                customers=int(np.sum(chosen)),
                actual=float(np.mean(actual[chosen])),
                predicted=float(np.mean(predicted[chosen])),
            )
        )
    return rows
