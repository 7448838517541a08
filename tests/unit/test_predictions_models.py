"""The lifetime-value models against their published fits on CDNOW, against lifetimes (a
test reference only), and against cases worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import gammaln

import cdnow
from touchpoints.predictions import bgnbd, gamma_gamma
from touchpoints.predictions.bgnbd import BgNbdParams, FitFailed
from touchpoints.predictions.gamma_gamma import GammaGammaParams

# Fader, Hardie & Lee (2005), "Counting your customers the easy way", table 1 (CDNOW, weeks).
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BGNBD_LL = -9582.4
# Fader & Hardie (2013), "The Gamma-Gamma model of monetary value": the 946 repeat buyers.
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
PUBLISHED_GG_LL = -4055.9
FITTED = BgNbdParams(r=0.242593, alpha=4.413532, a=0.792886, b=2.425752)


@pytest.fixture(scope="module")
def data() -> cdnow.Summary:
    return cdnow.summary()


def test_bgnbd_fit_on_cdnow_gives_the_published_parameters(data: cdnow.Summary) -> None:
    found = bgnbd.fit(data.x, data.t_x, data.T)
    for name, published in PUBLISHED_BGNBD.items():
        assert getattr(found.params, name) == pytest.approx(published, rel=0.01), name
    assert found.log_likelihood == pytest.approx(PUBLISHED_BGNBD_LL, abs=0.1)
    assert found.customers == 2357


def test_conditional_expectation_of_the_papers_customer_is_1_226() -> None:
    # FHL 2005, section 5: a customer with x = 2, t_x = 30.43, T = 38.86, over 39 weeks.
    expected = bgnbd.conditional_expected_purchases(FITTED, 39, 2, 30.43, 38.86)
    assert float(expected) == pytest.approx(1.226, abs=0.0005)


def test_gamma_gamma_fit_on_cdnow_repeat_buyers_gives_the_published_parameters(
    data: cdnow.Summary,
) -> None:
    repeat = data.x > 0
    assert int(repeat.sum()) == 946
    found = gamma_gamma.fit(data.x[repeat], data.zbar[repeat])
    for name, published in PUBLISHED_GG.items():
        assert getattr(found.params, name) == pytest.approx(published, rel=0.01), name
    assert found.log_likelihood == pytest.approx(PUBLISHED_GG_LL, abs=0.1)


def test_the_fit_does_not_depend_on_the_time_unit(data: cdnow.Summary) -> None:
    weeks = bgnbd.fit(data.x, data.t_x, data.T).params
    days = bgnbd.fit(data.x, data.t_x * 7, data.T * 7).params
    assert days.r == pytest.approx(weeks.r, rel=1e-4)
    assert days.alpha == pytest.approx(weeks.alpha * 7, rel=1e-4)
    assert (days.a, days.b) == pytest.approx((weeks.a, weeks.b), rel=1e-4)


# -- worked by hand --------------------------------------------------------------------------
def test_likelihood_of_a_customer_without_repeat_purchases_by_hand() -> None:
    # x = 0: A_1 = r log(alpha), A_2 = 0, only A_3: L = (alpha / (alpha + T))^r.
    params = BgNbdParams(r=2.0, alpha=3.0, a=0.5, b=1.5)
    assert bgnbd.log_likelihood(params, [0], [0], [1]) == pytest.approx(2 * math.log(3 / 4))


def test_likelihood_of_a_repeat_buyer_by_hand() -> None:
    r, alpha, a, b, x, t_x, T = 2.0, 3.0, 0.5, 1.5, 1, 2.0, 5.0
    # FHL eq. 3: B(a, b+x)/B(a, b) Gamma(r+x)/Gamma(r) alpha^r / (alpha+T)^(r+x)
    #          + B(a+1, b+x-1)/B(a, b) Gamma(r+x)/Gamma(r) alpha^r / (alpha+t_x)^(r+x)
    beta = lambda p, q: math.exp(gammaln(p) + gammaln(q) - gammaln(p + q))  # noqa: E731
    common = math.gamma(r + x) / math.gamma(r) * alpha**r / beta(a, b)
    by_hand = common * (
        beta(a, b + x) / (alpha + T) ** (r + x) + beta(a + 1, b + x - 1) / (alpha + t_x) ** (r + x)
    )
    got = bgnbd.log_likelihood(BgNbdParams(r, alpha, a, b), [x], [t_x], [T])
    assert got == pytest.approx(math.log(by_hand))


def test_a_customer_without_repeat_purchases_is_alive() -> None:
    assert bgnbd.probability_alive(FITTED, [0, 0], [0, 0], [1, 500]).tolist() == [1.0, 1.0]


def test_probability_alive_falls_with_silence_and_rises_with_recency() -> None:
    ages = np.linspace(20, 80, 7)
    alive = bgnbd.probability_alive(FITTED, np.full(7, 3), np.full(7, 20.0), ages)
    assert np.all(np.diff(alive) < 0)
    recencies = np.linspace(1, 39, 7)
    alive = bgnbd.probability_alive(FITTED, np.full(7, 3), recencies, np.full(7, 39.0))
    assert np.all(np.diff(alive) > 0)
    assert np.all((alive > 0) & (alive <= 1))


def test_expected_purchases_grow_with_time_and_start_at_the_mean_rate() -> None:
    times = np.array([1e-4, 1, 10, 39, 78, 500])
    new = bgnbd.expected_purchases(FITTED, times)
    assert np.all(np.diff(new) > 0)
    assert new[0] / times[0] == pytest.approx(FITTED.r / FITTED.alpha, rel=1e-3)
    held = bgnbd.conditional_expected_purchases(FITTED, times, 5, 30, 38.86)
    assert np.all(np.diff(held) > 0) and held[0] > 0


def _hyp2f1_by_integral(a: float, b: float, c: float, z: float) -> float:
    """Euler's integral (c > b > 0), by quadrature: an independent reference."""

    def integrand(s: float) -> float:
        return s ** (b - 1) * (1 - s) ** (c - b - 1) * (1 - z * s) ** (-a)

    value, _ = quad(integrand, 0, 1, limit=200, epsabs=0, epsrel=1e-12)
    return float(value * math.exp(gammaln(c) - gammaln(b) - gammaln(c - b)))


@pytest.mark.parametrize(
    ("x", "t_x", "T", "t"),
    [
        (2, 30.43, 38.86, 39),
        (0, 0, 38.86, 52),
        (40, 38, 38.86, 52),
        (150, 38.5, 38.86, 365),
        (400, 300, 300, 1000),
        (2000, 500, 520, 5200),
    ],
)
def test_conditional_expectation_stays_accurate_for_frequent_buyers(
    x: int, t_x: float, T: float, t: float
) -> None:
    """Against Euler's integral of the hypergeometric function, by quadrature: scipy's
    hyp2f1 on the paper's form (or on FHL's z/(z-1) form) answers NaN for frequent buyers."""
    r, alpha, a, b = FITTED.r, FITTED.alpha, FITTED.a, FITTED.b
    c = a + b + x - 1
    # 2F1(r+x, a-1; c; w) = 2F1(a-1, r+x; c; w), integral over b' = r+x, c - b' = a+b-1-r > 0.
    reference = _hyp2f1_by_integral(a - 1, r + x, c, -t / (alpha + T))
    got = float(bgnbd.conditional_expected_purchases(FITTED, t, x, t_x, T))
    alive = float(bgnbd.probability_alive(FITTED, x, t_x, T))
    assert got == pytest.approx(c / (a - 1) * (1 - reference) * alive, rel=1e-8)
    # An alive customer buys at most around their own observed rate for the time ahead.
    assert 0 < got < 2 * (x + FITTED.r) / (T + FITTED.alpha) * t


def test_a_fit_where_everyone_drops_out_alike_gives_finite_expectations() -> None:
    """a and b in the millions (one drop-out probability for all, as a fit of such data
    finds): the series overflows, and its limit takes over, close to the series where both
    are finite."""
    x, t_x, T = np.array([0.0, 3.0, 12.0]), np.array([0.0, 20.0, 50.0]), np.array([30.0] * 3)
    huge = BgNbdParams(r=0.0857, alpha=2.1386, a=1.17e6, b=4.44e6)
    got = bgnbd.conditional_expected_purchases(huge, 52.0, x, t_x, T)
    assert np.all(np.isfinite(got)) and np.all(got > 0)
    assert np.all(np.isfinite(bgnbd.expected_purchases(huge, np.array([4.0, 52.0]))))
    p = huge.a / (huge.a + huge.b)
    limit = (1 - ((huge.alpha + T) / (huge.alpha + T + p * 52.0)) ** (huge.r + x)) / p
    alive = bgnbd.probability_alive(huge, x, t_x, T)
    np.testing.assert_allclose(got, limit * alive, rtol=1e-4)
    moderate = BgNbdParams(r=0.0857, alpha=2.1386, a=400.0, b=400.0 * huge.b / huge.a)
    near = bgnbd.conditional_expected_purchases(moderate, 52.0, x, t_x, T)
    np.testing.assert_allclose(near, got, rtol=0.02)


def test_spend_without_repeat_purchases_is_the_population_mean() -> None:
    params = GammaGammaParams(p=6.25, q=3.74, v=15.44)
    mean = params.p * params.v / (params.q - 1)
    spend = gamma_gamma.conditional_expected_spend(params, [0, 1, 100], [0.0, 50.0, 50.0])
    assert spend[0] == pytest.approx(mean)
    assert mean < spend[1] < spend[2] < 50.0  # shrunk towards the mean, less with more data


def test_fits_refuse_data_they_cannot_fit() -> None:
    with pytest.raises(FitFailed, match="no customers"):
        bgnbd.fit([], [], [])
    with pytest.raises(FitFailed, match="t_x <= T"):
        bgnbd.fit([1], [5], [2])
    with pytest.raises(FitFailed, match="repeat buyers"):
        gamma_gamma.fit([0, 1], [10.0, 12.0])


# -- lifetimes as a reference ----------------------------------------------------------------
@pytest.mark.slow
def test_predictions_agree_with_lifetimes(data: cdnow.Summary) -> None:
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    repeat = data.x > 0
    reference = BetaGeoFitter().fit(data.x, data.t_x, data.T)
    spend_reference = GammaGammaFitter().fit(data.x[repeat], data.zbar[repeat])
    ours = bgnbd.fit(data.x, data.t_x, data.T).params
    spend_ours = gamma_gamma.fit(data.x[repeat], data.zbar[repeat]).params

    alive = bgnbd.probability_alive(ours, data.x, data.t_x, data.T)
    theirs = reference.conditional_probability_alive(data.x, data.t_x, data.T)
    np.testing.assert_allclose(alive, theirs, rtol=1e-5)
    for t in (4.3, 13, 52):
        np.testing.assert_allclose(
            bgnbd.conditional_expected_purchases(ours, t, data.x, data.t_x, data.T),
            reference.conditional_expected_number_of_purchases_up_to_time(
                t, data.x, data.t_x, data.T
            ),
            rtol=1e-5,
        )
    spend = gamma_gamma.conditional_expected_spend(spend_ours, data.x, data.zbar)
    np.testing.assert_allclose(
        spend,
        spend_reference.conditional_expected_average_profit(
            pd.Series(data.x), pd.Series(data.zbar)
        ),
        rtol=1e-5,
    )
    clv = gamma_gamma.customer_lifetime_value(
        ours, spend, data.x, data.t_x, data.T, months=12, monthly_discount_rate=0.01
    )
    clv_reference = spend_reference.customer_lifetime_value(
        reference,
        pd.Series(data.x),
        pd.Series(data.t_x),
        pd.Series(data.T),
        pd.Series(data.zbar),
        time=12,
        discount_rate=0.01,
        freq="W",
    )
    np.testing.assert_allclose(clv, clv_reference, rtol=1e-4)
