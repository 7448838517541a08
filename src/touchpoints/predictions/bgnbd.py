"""The BG/NBD model of repeat purchases (Fader, Hardie & Lee 2005), in numpy and scipy.

Each customer is summarised by three numbers, in one period unit (days or weeks):

- ``x``, the frequency: repeat purchases (distinct purchase periods after the first);
- ``t_x``, the recency: time from the first purchase to the last;
- ``T``, the age: time from the first purchase to the end of the observation.

While alive, a customer buys as a Poisson process whose rate is gamma(r, alpha) distributed
across customers; after each purchase they drop out with a probability that is
beta(a, b) distributed. The four parameters are fitted by maximum likelihood (the paper's
eq. 6 with its terms ``A_1`` to ``A_4``, summed in logs so no term overflows), on the logs of
the parameters, which keeps them positive without bounds.

Written here rather than taken from ``lifetimes`` (unmaintained: it needs ``pkg_resources``,
gone from setuptools 82, and parts break under pandas 3); the tests check these functions
against the paper's published fit on CDNOW and against ``lifetimes`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

# scipy is imported where it is used: scipy.special and scipy.optimize take most of a second
# to import, which every CLI command (they import the core) would pay.
if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

Array = npt.NDArray[np.float64]


class FitFailed(ValueError):
    """The likelihood could not be maximised on this data (it says why)."""


@dataclass(frozen=True)
class BgNbdParams:
    """The fitted BG/NBD parameters: purchase rates ~ gamma(r, alpha), dropout ~ beta(a, b).

    ``alpha`` is in the period unit of the data it was fitted on."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class BgNbdFit:
    params: BgNbdParams
    log_likelihood: float  # the sum over customers, at the fitted parameters
    customers: int
    iterations: int


def _arrays(*values: npt.ArrayLike) -> tuple[Array, ...]:
    return tuple(np.asarray(v, dtype=np.float64) for v in values)


def log_likelihood_terms(
    params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> Array:
    """Each customer's log-likelihood (FHL 2005, eq. 6):
    ``A_1 + A_2 + log(exp(A_3) + [x > 0] exp(A_4))``."""
    from scipy.special import gammaln

    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1: Array = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2: Array = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    # log(a / (b + x - 1)): only customers with a repeat purchase have this term.
    b_x = np.where(repeat, b + x - 1, 1.0)
    a4 = np.log(a) - np.log(b_x) - (r + x) * np.log(alpha + t_x)
    return a1 + a2 + np.where(repeat, np.logaddexp(a3, a4), a3)


def log_likelihood(
    params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> float:
    """The sample's log-likelihood: the sum of :func:`log_likelihood_terms`."""
    return float(np.sum(log_likelihood_terms(params, x, t_x, T)))


def fit(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> BgNbdFit:
    """The maximum-likelihood parameters for the customers ``(x, t_x, T)``.

    Times are scaled so the oldest customer's age is 10 before fitting (only ``alpha``
    depends on the time unit, and the optimiser behaves the same whether the data are in
    days or weeks); ``alpha`` is scaled back afterwards."""
    x, t_x, T = _arrays(x, t_x, T)
    _check_summary(x, t_x, T)
    scale = 10.0 / float(np.max(T))
    summary = _Summary.of(x, t_x * scale, T * scale)

    def negative(log_params: Array) -> tuple[float, Array]:
        value, gradient = summary.log_likelihood(np.exp(log_params))
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return np.inf, np.zeros_like(log_params)
        return -value, -gradient

    found = _maximise(negative, 4)
    r, alpha, a, b = (float(v) for v in np.exp(found.x))
    params = BgNbdParams(r, alpha / scale, a, b)
    return BgNbdFit(
        params, log_likelihood(params, x, t_x, T), customers=int(x.size), iterations=found.nit
    )


@dataclass(frozen=True)
class _Summary:
    """The customers as the fit sees them: each distinct ``(x, t_x, T)`` once with how
    many customers have it (purchases counted in days make most one-time buyers alike), and
    the few distinct frequencies, on which the gamma functions are computed."""

    x: Array
    t_x: Array
    T: Array
    count: Array
    repeat: npt.NDArray[np.bool_]
    frequencies: Array  # the distinct x
    which: npt.NDArray[np.intp]  # each row's index into frequencies

    @classmethod
    def of(cls, x: Array, t_x: Array, T: Array) -> _Summary:
        rows, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
        frequencies, which = np.unique(rows[:, 0], return_inverse=True)
        return cls(
            rows[:, 0],
            rows[:, 1],
            rows[:, 2],
            counts.astype(np.float64),
            rows[:, 0] > 0,
            frequencies,
            which.ravel(),
        )

    def log_likelihood(self, params: Array) -> tuple[float, Array]:
        """The sample's log-likelihood (eq. 6, as :func:`log_likelihood_terms`) and its
        gradient in the log-parameters, from the digamma function:

        with ``w4`` the share of ``exp(A_4)`` in ``exp(A_3) + exp(A_4)`` (0 without a repeat
        purchase), ``dL/dr = ψ(r+x) − ψ(r) + ln α − (1−w4) ln(α+T) − w4 ln(α+t_x)``,
        ``dL/dα = r/α − (r+x) ((1−w4)/(α+T) + w4/(α+t_x))``, ``dL/da = ψ(a+b) − ψ(a+b+x) +
        w4/a``, ``dL/db = ψ(a+b) + ψ(b+x) − ψ(b) − ψ(a+b+x) − w4/(b+x−1)``."""
        from scipy.special import digamma, gammaln

        r, alpha, a, b = params
        f, k = self.frequencies, self.which
        x, repeat = self.x, self.repeat
        log_alpha_T = np.log(alpha + self.T)
        log_alpha_tx = np.log(alpha + self.t_x)
        b_x = np.where(repeat, b + x - 1, 1.0)
        a1 = (gammaln(r + f) - gammaln(r))[k] + r * np.log(alpha)
        a2 = (gammaln(a + b) + gammaln(b + f) - gammaln(b) - gammaln(a + b + f))[k]
        a3 = -(r + x) * log_alpha_T
        a4 = np.log(a) - np.log(b_x) - (r + x) * log_alpha_tx
        both = np.logaddexp(a3, a4)
        terms = a1 + a2 + np.where(repeat, both, a3)
        w4 = np.where(repeat, np.exp(np.minimum(a4 - both, 0.0)), 0.0)
        w3 = 1.0 - w4
        d_r = (digamma(r + f) - digamma(r))[k] + np.log(alpha) - w3 * log_alpha_T
        d_r -= w4 * log_alpha_tx
        d_alpha = r / alpha - (r + x) * (w3 / (alpha + self.T) + w4 / (alpha + self.t_x))
        d_a = (digamma(a + b) - digamma(a + b + f))[k] + w4 / a
        d_b = (digamma(a + b) + digamma(b + f) - digamma(b) - digamma(a + b + f))[k]
        d_b -= w4 / b_x
        c = self.count
        gradient = np.array([c @ d_r, c @ d_alpha, c @ d_a, c @ d_b]) * params
        return float(c @ terms), gradient


def _check_summary(x: Array, t_x: Array, T: Array) -> None:
    if not (x.shape == t_x.shape == T.shape) or x.ndim != 1:
        raise FitFailed("x, t_x and T must be one-dimensional arrays of one length")
    if x.size == 0:
        raise FitFailed("no customers to fit")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(T))):
        raise FitFailed("x, t_x and T must be finite numbers")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T) or np.any(T <= 0):
        raise FitFailed("each customer needs x >= 0, 0 <= t_x <= T and T > 0")


def _maximise(negative: Callable[[Array], tuple[float, Array]], size: int) -> OptimizeResult:
    """Minimise ``negative`` (its value and gradient) over ``size`` log-parameters from 0
    (every parameter 1): quasi-Newton with the gradient first, then Nelder-Mead from where
    it stopped (robust where the quasi-Newton steps stall on a flat ridge)."""
    from scipy.optimize import minimize

    start = np.zeros(size)
    found = minimize(
        negative, start, jac=True, method="BFGS", options={"gtol": 1e-8, "maxiter": 2000}
    )
    best = found
    # Polished only where the quasi-Newton steps stopped short of a flat gradient: on the
    # demo and CDNOW they end with it below 1e-6 of the likelihood (100,000 customers: 18
    # evaluations), and Nelder-Mead's 250 more change the likelihood by 1e-10.
    if not np.all(np.abs(found.jac) <= 1e-6 * max(1.0, abs(found.fun))):
        polished = minimize(
            lambda log_params: negative(log_params)[0],
            found.x,
            method="Nelder-Mead",
            options=polish_options(found.fun),
        )
        best = polished if polished.fun <= found.fun else found
    if not np.isfinite(best.fun) or not np.all(np.isfinite(best.x)):
        raise FitFailed("the likelihood has no finite maximum on this data")
    if np.any(np.abs(best.x) > 30):
        raise FitFailed(
            "the fit ran off to a parameter of 0 or infinity: the data do not identify the "
            "model (too few repeat purchases, or every customer alike)"
        )
    return best


def polish_options(value: float) -> dict[str, float]:
    """Nelder-Mead's stopping rule for a log-likelihood of about ``value``: the parameters
    (on the log scale) within 1e-8 and the likelihood within 1e-10 of itself. An absolute
    1e-10 (as before) is below the rounding of a sum over 100,000 customers: the simplex never
    met it and ran its 40,000 evaluations (26 s for 4,700 customers; measured in
    benchmarks/RESULTS.md), for digits the data do not hold."""
    scale = abs(value) if np.isfinite(value) else 1.0
    return {"xatol": 1e-8, "fatol": 1e-10 * max(1.0, scale), "maxiter": 20000, "maxfev": 40000}


# -- what the fitted model says about a customer ---------------------------------------------
def probability_alive(
    params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> Array:
    """P(alive | x, t_x, T) (FHL 2005, eq. 13). A customer without a repeat purchase is
    alive by the model's definition (dropping out happens only after a purchase): 1."""
    from scipy.special import expit

    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    b_x = np.where(repeat, b + x - 1, 1.0)
    log_odds_dead = np.log(a) - np.log(b_x) + (r + x) * np.log((alpha + T) / (alpha + t_x))
    return np.where(repeat, expit(-log_odds_dead), 1.0)


def _unchanged(params: BgNbdParams, x: Array, age: Array, t: Array) -> Array:
    """The paper's ``((alpha+age)/(alpha+age+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)`` with
    ``z = t/(alpha+age+t)``: in E[X(t)] (x = 0, age 0) and E[Y(t) | x, t_x, T] (age T).

    Computed by Euler's transformation ``2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)``
    as ``(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``. Written directly, a frequent buyer's
    ``2F1(r+x, b+x; ...)`` grows without bound as z nears 1 (C - A - B = a-1-r-x < 0) while
    the power vanishes: with the CDNOW fit scipy's value is inf (the product NaN) for
    x = 800 over ten years. Transformed, x appears only in C, the series converges at z = 1
    (C - A - B = x+r+1-a > 0) and every term is small. (Pfaff's transformation to z/(z-1)
    keeps r+x as a parameter, and scipy answers NaN already for x = 150 over a year.)"""
    from scipy.special import hyp2f1

    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    remaining = (alpha + age) / (alpha + age + t)  # 1 - z
    with np.errstate(invalid="ignore", over="ignore"):
        series: Array = hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, 1 - remaining)
        exact: Array = remaining ** (a - 1) * series
    if np.all(np.isfinite(exact)):
        return exact
    # A fit where every customer drops out with the same probability p = a/(a+b) runs a and
    # b off to the millions, and the series overflows (NaN). Its limit as a, b grow with p
    # fixed: 2F1(A, B; C; z) → (1 - (B/C) z)^-A, so ((alpha+age)/(alpha+age+p t))^(r+x)
    # (within 1e-5 of the series where both are finite, a in the thousands).
    p = a / (a + b)
    limit = ((alpha + age) / (alpha + age + p * t)) ** (r + x)
    return np.asarray(np.where(np.isfinite(exact), exact, limit), dtype=np.float64)


def expected_purchases(params: BgNbdParams, t: npt.ArrayLike) -> Array:
    """E[X(t)]: purchases a new customer makes in a period of length ``t`` (eq. 9)."""
    (t,) = _arrays(t)
    a, b = params.a, params.b
    zero = np.zeros_like(t)
    return (a + b - 1) / (a - 1) * (1 - _unchanged(params, zero, zero, t))


def conditional_expected_purchases(
    params: BgNbdParams,
    t: npt.ArrayLike,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
) -> Array:
    """E[Y(t) | x, t_x, T]: purchases a customer with this history makes in the next ``t``
    (FHL 2005, eq. 10)."""
    t, x, t_x, T = _arrays(t, x, t_x, T)
    a, b = params.a, params.b
    c = a + b + x - 1
    # The paper's denominator 1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x) is
    # 1 / P(alive).
    alive = probability_alive(params, x, t_x, T)
    return c / (a - 1) * (1 - _unchanged(params, x, T, t)) * alive
