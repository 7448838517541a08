"""The Gamma-Gamma model of spend per transaction (Fader & Hardie 2013, "The Gamma-Gamma
Model of Monetary Value"), and the discounted lifetime value it gives with BG/NBD.

A customer's transactions are gamma(p, nu) distributed around their own mean, and nu is
gamma(q, v) distributed across customers. It is fitted on repeat buyers only: ``x`` repeat
transactions (x > 0) with an average value ``m`` of those transactions (the first purchase
left out, as the note does). The model assumes spend is independent of frequency; the
service reports their correlation on the training data so a user can see when it is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from touchpoints.predictions.bgnbd import (
    Array,
    BgNbdParams,
    FitFailed,
    conditional_expected_purchases,
    polish_options,
)


@dataclass(frozen=True)
class GammaGammaParams:
    """Spend per transaction ~ gamma(p, nu), nu ~ gamma(q, v); ``v`` is in money."""

    p: float
    q: float
    v: float


@dataclass(frozen=True)
class GammaGammaFit:
    params: GammaGammaParams
    log_likelihood: float
    customers: int  # the repeat buyers it was fitted on
    iterations: int


def log_likelihood_terms(params: GammaGammaParams, x: npt.ArrayLike, m: npt.ArrayLike) -> Array:
    """Each repeat buyer's log-likelihood of their average spend ``m`` over ``x``
    transactions (the note's eq. 4, in logs)."""
    from scipy.special import gammaln  # not at import: see touchpoints.predictions.bgnbd

    n = np.asarray(x, dtype=np.float64)
    mean = np.asarray(m, dtype=np.float64)
    p, q, v = params.p, params.q, params.v
    gammas: Array = gammaln(p * n + q) - gammaln(p * n) - gammaln(q)
    terms: Array = (
        gammas
        + q * np.log(v)
        + (p * n - 1) * np.log(mean)
        + p * n * np.log(n)
        - (p * n + q) * np.log(n * mean + v)
    )
    return terms


def log_likelihood(params: GammaGammaParams, x: npt.ArrayLike, m: npt.ArrayLike) -> float:
    return float(np.sum(log_likelihood_terms(params, x, m)))


def fit(x: npt.ArrayLike, m: npt.ArrayLike) -> GammaGammaFit:
    """The maximum-likelihood parameters for the repeat buyers ``(x, m)`` (x > 0, m > 0).

    Money is scaled to a mean spend of 1 before fitting (only ``v`` depends on the
    currency), and ``v`` scaled back."""
    from scipy.optimize import minimize  # not at import: see touchpoints.predictions.bgnbd

    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    if x.shape != m.shape or x.ndim != 1 or x.size == 0:
        raise FitFailed("x and m must be one-dimensional arrays of one length, not empty")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(m))):
        raise FitFailed("x and m must be finite numbers")
    if np.any(x <= 0) or np.any(m <= 0):
        raise FitFailed("the spend model is fitted on repeat buyers with a positive spend")
    scale = 1.0 / float(np.mean(m))
    ms = m * scale

    def negative(log_params: Array) -> float:
        p, q, v = np.exp(log_params)
        value = -log_likelihood(GammaGammaParams(p, q, v), x, ms)
        return value if np.isfinite(value) else np.inf

    found = minimize(negative, np.zeros(3), method="BFGS", options={"gtol": 1e-8})
    polished = minimize(negative, found.x, method="Nelder-Mead", options=polish_options(found.fun))
    best = polished if polished.fun <= found.fun else found
    if not np.isfinite(best.fun) or np.any(np.abs(best.x) > 30):
        raise FitFailed(
            "the spend model has no finite maximum on this data (too few repeat buyers, or "
            "every one spending the same)"
        )
    p, q, v = (float(value) for value in np.exp(best.x))
    params = GammaGammaParams(p, q, v / scale)
    return GammaGammaFit(params, log_likelihood(params, x, m), int(x.size), found.nit)


def conditional_expected_spend(
    params: GammaGammaParams, x: npt.ArrayLike, m: npt.ArrayLike
) -> Array:
    """E[M | x, m]: a customer's expected spend per transaction, a weighted mean of the
    population's ``p v / (q - 1)`` and their own average ``m`` (the note's eq. 5). With no
    repeat purchase (x = 0) it is the population's mean. Needs q > 1 (else the population
    mean is infinite): NaN otherwise."""
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    p, q, v = params.p, params.q, params.v
    if q <= 1:
        return np.full(np.broadcast(x, m).shape, np.nan)
    weight = p * x / (p * x + q - 1)
    return (1 - weight) * (p * v / (q - 1)) + weight * np.where(x > 0, m, 0.0)


# Periods per month, by period unit: lifetimes' factors (30 days; 4.345 weeks).
PERIODS_PER_MONTH = {"days": 30.0, "weeks": 4.345}


def customer_lifetime_value(
    bgnbd: BgNbdParams,
    spend: Array,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
    periods_per_month: float = PERIODS_PER_MONTH["weeks"],
) -> Array:
    """Discounted value of the next ``months``: for each month, the purchases expected in
    it (BG/NBD's conditional expectation, cumulative, differenced) times the expected spend
    per purchase, divided by (1 + rate)^month. As ``lifetimes``' ``customer_lifetime_value``
    computes it, so the two can be compared."""
    if months < 1:
        raise ValueError("months must be at least 1")
    total = np.zeros(np.broadcast(np.asarray(x), np.asarray(t_x), np.asarray(T)).shape)
    before = np.zeros_like(total)
    for month in range(1, months + 1):
        cumulative = conditional_expected_purchases(bgnbd, month * periods_per_month, x, t_x, T)
        total = total + spend * (cumulative - before) / (1 + monthly_discount_rate) ** month
        before = cumulative
    return total
