"""Predicted lifetime value: BG/NBD for how many orders a customer will place, Gamma-Gamma for what each is worth.

The standard method of Fader, Hardie and Lee ("Counting your customers the easy way", 2005; "RFM and CLV", 2005),
fitted by maximum likelihood with scipy. Per customer, from their completed orders before the cutoff (one order
per day; the first order starts them):

- ``x``: repeat order days; ``t_x``: weeks from the first to the last order; ``T``: weeks from the first order
  to the cutoff;
- ``m``: the mean value of their repeat orders (Gamma-Gamma uses customers with x > 0).

BG/NBD: while alive, a customer orders at a Poisson rate (Gamma(r, alpha) across customers) and after each order
drops out with probability p (Beta(a, b)). Gamma-Gamma: order values vary around a customer's own mean, which is
Gamma-distributed (p, q, gamma) across customers; the expected mean spend shrinks a customer's observed mean
towards the population's by how many orders back it.

CLV over the next t weeks = E[orders in t | x, t_x, T] x E[value per order | x, m], undiscounted (revenue, the same
unit as the orders' ``revenue``). Parameters are stored as JSON and scoring is closed-form (hyp2f1).

The baseline it is evaluated against is the historical average: a customer's revenue per day so far, times the
days predicted.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

WEEK_DAYS = 7.0
MIN_REPEAT_CUSTOMERS = 30  # with fewer repeat customers the historical average stands in


def _bgnbd_ll(params: np.ndarray, x, t_x, T) -> float:
    r, alpha, a, b = np.exp(params)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a3 = np.where(x > 0, special.betaln(a + 1, np.maximum(b + x - 1, 1e-12)) - special.betaln(a, b)
                      - (r + x) * np.log(alpha + t_x), -np.inf)
    ll = a1 + np.logaddexp(a2, a3)
    return -(ll.sum() / len(x))


def bgnbd_fit(x, t_x, T) -> dict:
    """Fit BG/NBD: {"r", "alpha", "a", "b"}."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    start = np.log([1.0, max(float(np.mean(T)), 1.0), 1.0, 1.0])
    result = optimize.minimize(_bgnbd_ll, start, args=(x, t_x, T), method="L-BFGS-B",
                               bounds=[(-8, 8)] * 4)
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    return {"r": r, "alpha": alpha, "a": a, "b": b, "converged": bool(result.success)}


def _a_term(p: dict, x, t_x, T):
    """The second term of the BG/NBD likelihood relative to the first: how likely it is that the customer dropped
    out right after their last order."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, (p["a"] / np.maximum(p["b"] + x - 1, 1e-12))
                        * ((p["alpha"] + T) / (p["alpha"] + t_x)) ** (p["r"] + x), 0.0)


def probability_alive(p: dict, x, t_x, T) -> np.ndarray:
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    return 1.0 / (1.0 + _a_term(p, x, t_x, T))


def expected_orders(p: dict, t: float, x, t_x, T) -> np.ndarray:
    """E[orders in the next ``t`` weeks | x, t_x, T] (BG/NBD, conditional expectation)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    a = a if abs(a - 1.0) > 1e-9 else 1.0 + 1e-9  # the closed form divides by a - 1
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    numerator = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    return np.maximum(numerator / (1.0 + _a_term(p, x, t_x, T)), 0.0)


def _gg_ll(params: np.ndarray, x, m) -> float:
    p, q, v = np.exp(params)
    ll = (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(v)
          + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(x * m + v))
    return -(ll.sum() / len(x))


def gamma_gamma_fit(x, m) -> dict:
    """Fit Gamma-Gamma on the repeat customers (x > 0, m > 0): {"p", "q", "v"}."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]
    result = optimize.minimize(_gg_ll, np.log([1.0, 2.0, max(float(np.mean(m)), 1.0)]), args=(x, m),
                               method="L-BFGS-B", bounds=[(-8, 10)] * 3)
    p, q, v = (float(value) for value in np.exp(result.x))
    return {"p": p, "q": q, "v": v, "converged": bool(result.success)}


def expected_order_value(g: dict, x, m, *, fallback: float) -> np.ndarray:
    """E[value per order | x, m]: the observed mean shrunk towards the population mean; ``fallback`` for a
    customer without repeat orders when the fit has no finite population mean (q <= 1)."""
    x, m = np.asarray(x, dtype=float), np.nan_to_num(np.asarray(m, dtype=float))
    p, q, v = g["p"], g["q"], g["v"]
    population = v * p / (q - 1) if q > 1 else fallback
    with np.errstate(divide="ignore", invalid="ignore"):
        shrunk = (v + x * m) * p / (p * x + q - 1)
    return np.where((x > 0) & (p * x + q - 1 > 0), shrunk, population)


def summaries(first_order, last_order, order_days, orders, revenue, at: float) -> tuple:
    """x, t_x, T (weeks) and m per customer, from epoch seconds, order days, orders and revenue before ``at``.
    m is the mean value of all their orders (the first included; the events do not single out repeat orders'
    revenue cheaply), NaN without a repeat order."""
    day = 86_400.0
    x = np.maximum(np.asarray(order_days, dtype=float) - 1, 0)
    t_x = np.maximum(np.asarray(last_order) - np.asarray(first_order), 0) / day / WEEK_DAYS
    T = np.maximum(at - np.asarray(first_order), 0) / day / WEEK_DAYS
    revenue = np.nan_to_num(np.asarray(revenue, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(x > 0, revenue / np.maximum(np.asarray(orders, dtype=float), 1), np.nan)
    return x, t_x, T, m


def historical_average(revenue, T, days: float) -> np.ndarray:
    """The baseline: the customer's revenue per day since their first order, times ``days``. A customer newer than
    ``days`` is taken to spend what they spent so far once more (the denominator is at least ``days``)."""
    age_days = np.asarray(T, dtype=float) * WEEK_DAYS
    return np.nan_to_num(np.asarray(revenue, dtype=float)) / np.maximum(age_days, days) * days


def errors(predicted: np.ndarray, actual: np.ndarray) -> dict:
    """MAE and RMSE per customer, and the error of the total in percent."""
    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    total = float(actual.sum())
    return {"mae": round(float(np.mean(np.abs(predicted - actual))), 4),
            "rmse": round(float(np.sqrt(np.mean((predicted - actual) ** 2))), 4),
            "total_error_percent": round(100.0 * (float(predicted.sum()) - total) / total, 2) if total else None}
