"""The churn run: train on the installation's own history with a time-based split, score every customer, write
``churn_risk`` and ``churn_risk_level`` (see profiles.insights.churn for the model and the split)."""

from __future__ import annotations

import time as clock
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.utils import timezone

from profiles.insights import churn
from profiles.insights.features import customers_at, orders_between
from profiles.models import InsightModel
from profiles.services.insights import insight_run_record, insight_values_write

HORIZON_DAYS = 90


def horizon_days() -> int:
    """Days without an order that count as churned (setting INSIGHTS_CHURN_HORIZON_DAYS)."""
    return int(getattr(settings, "INSIGHTS_CHURN_HORIZON_DAYS", HORIZON_DAYS))


def _labelled(at, until):
    """The customers at ``at``, their features and whether they placed no order in (at, until]."""
    customers = customers_at(at)
    raw = churn.raw_features(customers)
    later = orders_between(at, until, profile_ids=None) if len(customers) else {}
    churned = np.array([int(pk) not in later for pk in customers.ids], dtype=int)
    return customers, raw, churned


def _enough(churned: np.ndarray) -> bool:
    return (len(churned) >= churn.MIN_CUSTOMERS and churned.sum() >= churn.MIN_PER_CLASS
            and (len(churned) - churned.sum()) >= churn.MIN_PER_CLASS)


def _train(record: InsightModel) -> None:
    now = timezone.now()
    horizon = timedelta(days=horizon_days())
    begin = clock.monotonic()
    _, train_x, train_y = _labelled(now - 2 * horizon, now - horizon)
    _, test_x, test_y = _labelled(now - horizon, now)
    recency = churn.FEATURE_NAMES.index("days_since_last_order")
    metrics = {"horizon_days": horizon.days, "train_customers": len(train_y), "test_customers": len(test_y),
               "train_churn_rate": round(float(train_y.mean()), 4) if len(train_y) else None,
               "test_churn_rate": round(float(test_y.mean()), 4) if len(test_y) else None,
               "baseline": "recency alone (days since the last order)",
               "baseline_auc": churn.auc(test_y, test_x[:, recency]) if len(test_y) else None}
    if _enough(train_y) and _enough(test_y):
        held_out = churn.fit(train_x, train_y)
        metrics["auc"] = churn.auc(test_y, churn.score(held_out, test_x))
        params = churn.fit(np.vstack([train_x, test_x]), np.concatenate([train_y, test_y]))
        record.method, record.status = "logistic_regression", InsightModel.Status.OK
        record.training_rows = len(train_y) + len(test_y)
    else:
        params = {"method": "heuristic", "features": list(churn.FEATURE_NAMES)}
        metrics["auc"] = churn.auc(test_y, churn.score(params, test_x)) if len(test_y) else None
        record.method, record.status = "heuristic", InsightModel.Status.HEURISTIC
        record.reason = (f"Too little history to train: each of the two periods needs {churn.MIN_CUSTOMERS} "
                         f"customers with at least {churn.MIN_PER_CLASS} who ordered again and "
                         f"{churn.MIN_PER_CLASS} who did not (found {len(train_y)} and {len(test_y)} customers). "
                         "A heuristic on the time since the last order stands in.")
    # Scoring one profile later (the 360° page) measures its rhythm against the population's, as of this run.
    current = customers_at(now)
    params["typical_gap_days"] = round(churn.typical_gap(current), 3)
    record.cutoff_at = now - horizon
    record.metrics, record.params = metrics, params
    record.train_seconds = round(clock.monotonic() - begin, 3)
    begin = clock.monotonic()
    record.scored_rows = churn_scores_write(params=params, now=now, customers=current)
    record.score_seconds = round(clock.monotonic() - begin, 3)


def churn_scores_write(*, params: dict, now=None, profile_ids=None, customers=None) -> int:
    """Score the customers now (or those of ``profile_ids``; ``customers``: their measures, read already) and
    write their churn risk and level; a full run removes the values of profiles that are no customers any more."""
    current = customers if customers is not None else customers_at(now or timezone.now(), profile_ids=profile_ids)
    raw = churn.raw_features(current, typical_gap_days=params.get("typical_gap_days"))
    risk = churn.score(params, raw) if len(current) else np.empty(0)
    ids = [int(pk) for pk in current.ids]
    values = {"churn_risk": {pk: round(float(p), 4) for pk, p in zip(ids, risk, strict=True)},
              "churn_risk_level": {pk: churn.level(float(p)) for pk, p in zip(ids, risk, strict=True)}}
    if profile_ids is not None:  # the given profiles that are no customers lose their values
        for key in values:
            values[key].update({int(pk): None for pk in profile_ids if int(pk) not in values[key]})
    insight_values_write(values=values, full=profile_ids is None, now=now)
    return len(ids)


def run() -> InsightModel:
    return insight_run_record(kind=InsightModel.Kind.CHURN, run=_train)
