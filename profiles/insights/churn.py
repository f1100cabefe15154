"""Churn risk: the probability that a customer places no order within the horizon (90 days by default).

The model is a logistic regression (scikit-learn) on standardized features (``FEATURES``) derived from the
measures of profiles.insights.features: recency, the order rhythm, frequency, order value, tenure, engagement
(recent events, e-mail opens and clicks, an unsubscribe) and service sentiment (negative contacts, the mean
sentiment). A logistic regression is chosen over stronger learners because each profile's risk then decomposes
exactly into per-feature contributions (coefficient x standardized value): the "top factors" are the model's own
arithmetic, not an approximation. Total revenue is left out: its log is nearly the sum of the order-days and
order-value logs, and collinear features would show as opposing factors. The fitted parameters are plain numbers
(stored as JSON), and scoring is a dot product.

Quality is measured on a time-based split: train on the customers at ``now - 2 x horizon`` with what they did in
the following horizon, test on the customers at ``now - horizon`` with what they did since; AUC beside the naive
baseline, recency alone (days since the last order). The model that scores is then refitted on both periods.

With too little history or too few customers of each outcome a heuristic stands in, labelled as such: the risk
grows with the time since the last order measured in the customer's own order rhythm, raised by negative service
contacts and an unsubscribe.
"""

from __future__ import annotations

import math

import numpy as np

from profiles.insights.features import DAY, Customers

MIN_CUSTOMERS = 200  # per period, to train
MIN_PER_CLASS = 25  # customers who ordered again and who did not, per period
LEVELS = ((0.6, "high"), (0.3, "medium"), (0.0, "low"))

# name -> (how the value enters the model: "log" for log1p of a count or duration, "raw"; what it means)
FEATURES: dict[str, tuple[str, str]] = {
    "days_since_last_order": ("log", "days since the last order"),
    "rhythm_overdue": ("log", "time since the last order in units of the usual gap between orders"),
    "order_days": ("log", "days with an order"),
    "orders_90d": ("log", "orders in the last 90 days"),
    "average_order_value": ("log", "average order value"),
    "tenure_days": ("log", "days since first seen"),
    "days_since_last_seen": ("log", "days since last seen"),
    "events_30d": ("log", "events in the last 30 days"),
    "engagement_90d": ("log", "e-mails opened or clicked in the last 90 days"),
    "unsubscribed": ("raw", "unsubscribed from e-mail"),
    "negative_contacts_180d": ("log", "negative service contacts in the last 180 days"),
    "sentiment_365d": ("raw", "mean sentiment of service contacts in the last 365 days"),
}
FEATURE_NAMES = tuple(FEATURES)


def raw_features(customers: Customers, *, typical_gap_days: float | None = None) -> np.ndarray:
    """The feature matrix (columns ``FEATURE_NAMES``, untransformed) of the customers at their cutoff."""
    at = customers.at.timestamp()
    col = customers.column
    order_days = col("order_days")
    first_order, last_order = col("first_order"), col("last_order")
    since_order = np.maximum(0.0, (at - last_order) / DAY)
    if typical_gap_days is None:
        typical_gap_days = typical_gap(customers)
    # The usual gap between order days, shrunk towards the population's by one pseudo-gap: one order alone gives
    # the typical gap, two orders on adjacent days do not make a rhythm of one day.
    gaps = ((last_order - first_order) / DAY + typical_gap_days) / np.maximum(order_days, 1)
    orders = col("orders")
    revenue = np.nan_to_num(col("revenue"))
    columns = {
        "days_since_last_order": since_order,
        "rhythm_overdue": since_order / gaps,
        "order_days": order_days,
        "orders_90d": col("orders_90d"),
        "average_order_value": np.maximum(revenue, 0.0) / np.maximum(orders, 1),
        "tenure_days": np.maximum(0.0, (at - col("first_seen")) / DAY),
        "days_since_last_seen": np.maximum(0.0, (at - col("last_seen")) / DAY),
        "events_30d": col("events_30d"),
        "engagement_90d": col("engagement_90d"),
        "unsubscribed": col("unsubscribed"),
        "negative_contacts_180d": col("negative_180d"),
        "sentiment_365d": np.nan_to_num(col("sentiment_365d")),
    }
    return np.column_stack([columns[name] for name in FEATURE_NAMES]) if len(customers) else \
        np.empty((0, len(FEATURE_NAMES)))


def typical_gap(customers: Customers) -> float:
    """The median gap in days between order days among repeat customers (90 without any)."""
    order_days = customers.column("order_days")
    repeat = order_days >= 2
    if not repeat.any():
        return 90.0
    gaps = (customers.column("last_order")[repeat] - customers.column("first_order")[repeat]) / DAY / (
        order_days[repeat] - 1)
    return float(max(1.0, np.median(gaps)))


def _transform(raw: np.ndarray) -> np.ndarray:
    out = raw.astype(float).copy()
    for j, name in enumerate(FEATURE_NAMES):
        if FEATURES[name][0] == "log":
            out[:, j] = np.log1p(np.maximum(out[:, j], 0.0))
    return out


def fit(raw: np.ndarray, churned: np.ndarray, *, seed: int = 0) -> dict:
    """Fit the model; returns its parameters (JSON): per feature mean, scale and coefficient, and the intercept."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = _transform(raw)
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed)
    model.fit((x - scaler.mean_) / scale, churned.astype(int))
    return {"method": "logistic_regression", "features": list(FEATURE_NAMES),
            "mean": [float(v) for v in scaler.mean_], "scale": [float(v) for v in scale],
            "coef": [float(v) for v in model.coef_[0]], "intercept": float(model.intercept_[0])}


def _z(params: dict, raw: np.ndarray) -> np.ndarray:
    return (_transform(raw) - np.array(params["mean"])) / np.array(params["scale"])


def score(params: dict, raw: np.ndarray) -> np.ndarray:
    """Churn probability per row, from fitted parameters (a logistic regression) or the heuristic."""
    if params.get("method") == "heuristic":
        return heuristic_score(raw)
    logits = _z(params, raw) @ np.array(params["coef"]) + params["intercept"]
    return 1.0 / (1.0 + np.exp(-logits))


def heuristic_score(raw: np.ndarray) -> np.ndarray:
    """The stand-in with too little data: 1 - exp(-overdue), where overdue is the time since the last order in the
    customer's usual rhythm, plus 0.15 per negative service contact (at most 0.3) and 0.1 for an unsubscribe."""
    get = {name: raw[:, j] for j, name in enumerate(FEATURE_NAMES)}
    base = 1.0 - np.exp(-np.maximum(get["rhythm_overdue"], 0.0))
    bump = np.minimum(0.15 * get["negative_contacts_180d"], 0.3) + 0.1 * get["unsubscribed"]
    return np.clip(base + bump, 0.0, 1.0)


def level(risk: float) -> str:
    for bound, name in LEVELS:
        if risk >= bound:
            return name
    return "low"


def contributions(params: dict, raw_row: np.ndarray) -> list[dict]:
    """The features of one customer by how much each moves the risk (log-odds; positive raises it), largest first.
    For the heuristic: its two terms."""
    if params.get("method") == "heuristic":
        get = dict(zip(FEATURE_NAMES, raw_row, strict=True))
        overdue = float(get["rhythm_overdue"])
        items = [{"feature": "rhythm_overdue", "value": overdue, "effect": 1.0 - math.exp(-max(overdue, 0.0))}]
        if get["negative_contacts_180d"]:
            items.append({"feature": "negative_contacts_180d", "value": float(get["negative_contacts_180d"]),
                          "effect": min(0.15 * float(get["negative_contacts_180d"]), 0.3)})
        if get["unsubscribed"]:
            items.append({"feature": "unsubscribed", "value": 1.0, "effect": 0.1})
        return sorted(items, key=lambda item: -abs(item["effect"]))
    z = _z(params, raw_row.reshape(1, -1))[0]
    effects = z * np.array(params["coef"])
    items = [{"feature": name, "value": float(raw_row[j]), "effect": float(effects[j])}
             for j, name in enumerate(params["features"])]
    return sorted(items, key=lambda item: -abs(item["effect"]))


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC (None when only one outcome occurs)."""
    from sklearn.metrics import roc_auc_score

    labels = labels.astype(int)
    if labels.min(initial=0) == labels.max(initial=0):
        return None
    return float(roc_auc_score(labels, scores))


def describe(feature: str, value: float) -> str:
    """A factor in words, for the 360° page: "No order for 212 days"."""
    v = value
    texts = {
        "days_since_last_order": f"No order for {v:,.0f} days",
        "rhythm_overdue": f"{v:,.1f}× their usual time between orders since the last one",
        "order_days": f"Ordered on {v:,.0f} day{'s' if round(v) != 1 else ''}",
        "orders_90d": f"{v:,.0f} order{'s' if round(v) != 1 else ''} in the last 90 days",
        "revenue": f"Revenue {v:,.2f}",
        "average_order_value": f"Average order {v:,.2f}",
        "tenure_days": f"Known for {v:,.0f} days",
        "days_since_last_seen": f"Last seen {v:,.0f} days ago",
        "events_30d": f"{v:,.0f} events in the last 30 days",
        "engagement_90d": f"{v:,.0f} e-mails opened or clicked in 90 days",
        "unsubscribed": "Unsubscribed from e-mail" if v else "Still subscribed to e-mail",
        "negative_contacts_180d": f"{v:,.0f} negative service contact{'s' if round(v) != 1 else ''} in 180 days",
        "sentiment_365d": f"Service sentiment {v:+.2f}",
    }
    return texts.get(feature, f"{feature}: {v:,.2f}")
