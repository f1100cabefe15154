"""The lifetime-value run: evaluate BG/NBD with Gamma-Gamma on a time split beside the historical average, fit it
on the whole order history, and write every customer's ``predicted_orders_12m`` and ``predicted_clv_12m`` (see
profiles.insights.clv)."""

from __future__ import annotations

import time as clock
from datetime import timedelta

import numpy as np
from django.utils import timezone

from profiles.insights import clv
from profiles.insights.features import Customers, customers_at, history_days, orders_between
from profiles.models import InsightModel
from profiles.services.insights import insight_run_record, insight_values_write

HORIZON_WEEKS = 52.0  # the prediction: the next 12 months
MIN_HISTORY_DAYS = 60  # a time split needs at least this much order history


def _summaries(customers: Customers):
    col = customers.column
    return clv.summaries(col("first_order"), col("last_order"), col("order_days"), col("orders"), col("revenue"),
                         customers.at.timestamp())


def _fit(customers: Customers) -> dict | None:
    """Fitted parameters, or None with too few repeat customers."""
    x, t_x, T, m = _summaries(customers)
    if int((x > 0).sum()) < clv.MIN_REPEAT_CUSTOMERS:
        return None
    revenue = np.nan_to_num(customers.column("revenue"))
    orders = np.maximum(customers.column("orders"), 1)
    return {"method": "bg_nbd_gamma_gamma", "bg_nbd": clv.bgnbd_fit(x, t_x, T),
            "gamma_gamma": clv.gamma_gamma_fit(x, m), "mean_order_value": float(np.mean(revenue / orders))}


def predict(params: dict, customers: Customers, weeks: float) -> tuple[np.ndarray, np.ndarray]:
    """Expected orders and revenue per customer in the next ``weeks``."""
    x, t_x, T, m = _summaries(customers)
    if params.get("method") == "heuristic":
        revenue = clv.historical_average(customers.column("revenue"), T, weeks * clv.WEEK_DAYS)
        orders = clv.historical_average(customers.column("order_days"), T, weeks * clv.WEEK_DAYS)
        return orders, revenue
    orders = clv.expected_orders(params["bg_nbd"], weeks, x, t_x, T)
    value = clv.expected_order_value(params["gamma_gamma"], x, m, fallback=params["mean_order_value"])
    return orders, orders * value


def _evaluate(now) -> dict:
    """Fit on the history before a cutoff, predict the holdout after it, compare with what happened."""
    history = history_days()
    holdout_days = 365 if history >= 730 else int(history // 2)
    if holdout_days < MIN_HISTORY_DAYS // 2:
        return {"evaluated": False, "reason": f"{history:,.0f} days of order history; a time split needs "
                                              f"{MIN_HISTORY_DAYS}."}
    cutoff = now - timedelta(days=holdout_days)
    calibration = customers_at(cutoff)
    params = _fit(calibration)
    later = orders_between(cutoff, now)
    actual_orders = np.array([later.get(int(pk), (0, 0.0))[0] for pk in calibration.ids], dtype=float)
    actual_revenue = np.array([later.get(int(pk), (0, 0.0))[1] for pk in calibration.ids], dtype=float)
    _, _, T, _ = _summaries(calibration)
    baseline_revenue = clv.historical_average(calibration.column("revenue"), T, holdout_days)
    baseline_orders = clv.historical_average(calibration.column("order_days"), T, holdout_days)
    metrics = {"evaluated": True, "holdout_days": holdout_days, "customers": len(calibration),
               "actual_revenue_total": round(float(actual_revenue.sum()), 2),
               "baseline": "historical average (revenue per day since the first order x the holdout days)",
               "baseline_revenue": clv.errors(baseline_revenue, actual_revenue),
               "baseline_orders": clv.errors(baseline_orders, actual_orders)}
    if params is None:
        metrics["reason"] = f"fewer than {clv.MIN_REPEAT_CUSTOMERS} repeat customers before the cutoff"
        return metrics
    orders, revenue = predict(params, calibration, holdout_days / clv.WEEK_DAYS)
    metrics["revenue"] = clv.errors(revenue, actual_revenue)
    metrics["orders"] = clv.errors(orders, actual_orders)
    return metrics


def _train(record: InsightModel) -> None:
    now = timezone.now()
    begin = clock.monotonic()
    metrics = _evaluate(now)
    current = customers_at(now)
    params = _fit(current)
    if params is None:
        params = {"method": "heuristic"}
        record.method, record.status = "heuristic", InsightModel.Status.HEURISTIC
        record.reason = (f"{int((_summaries(current)[0] > 0).sum())} repeat customers; BG/NBD needs "
                         f"{clv.MIN_REPEAT_CUSTOMERS}. The historical average (revenue per day so far) stands in.")
    else:
        record.method, record.status = "bg_nbd_gamma_gamma", InsightModel.Status.OK
    params["horizon_weeks"] = HORIZON_WEEKS
    record.metrics, record.params, record.training_rows, record.cutoff_at = metrics, params, len(current), now
    record.train_seconds = round(clock.monotonic() - begin, 3)
    begin = clock.monotonic()
    record.scored_rows = clv_scores_write(params=params, customers=current, now=now)
    record.score_seconds = round(clock.monotonic() - begin, 3)


def clv_scores_write(*, params: dict, customers: Customers, now=None, profile_ids=None) -> int:
    """Write the predicted orders and value of the next 12 months of these customers: a full run, or only the
    profiles of ``profile_ids`` (those among them that are no customers lose their values)."""
    orders, revenue = predict(params, customers, params.get("horizon_weeks", HORIZON_WEEKS)) if len(customers) \
        else (np.empty(0), np.empty(0))
    ids = [int(pk) for pk in customers.ids]
    values = {"predicted_orders_12m": {pk: round(float(v), 3) for pk, v in zip(ids, orders, strict=True)},
              "predicted_clv_12m": {pk: round(float(v), 2) for pk, v in zip(ids, revenue, strict=True)}}
    if profile_ids is not None:
        for key in values:
            values[key].update({int(pk): None for pk in profile_ids if int(pk) not in values[key]})
    insight_values_write(values=values, full=profile_ids is None, now=now)
    return len(ids)


def run() -> InsightModel:
    return insight_run_record(kind=InsightModel.Kind.CLV, run=_train)
