"""What the churn and lifetime-value models read: per customer, measures of their events up to a moment (the
cutoff), and the orders after it (the labels of a time-based split). Set-based: one GROUP BY over the events per
call, on PostgreSQL and SQLite alike; the arithmetic on times happens in numpy.

A customer is a live (not merged) profile with at least one completed order before the cutoff. The event names are
Segment's e-commerce and e-mail spec names (and the e-mail service names the demo's provider sends); the measures
follow the stock computed traits (recency, frequency and monetary value as in RFM).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db import connection
from django.utils.dateparse import parse_datetime

from profiles.services.computed import (
    EVENT_TABLE,
    ORDER_EVENT,
    PROFILE_TABLE,
    _db_time,
    _number_expr,
)

ENGAGEMENT_EVENTS = ("Email Opened", "Email Link Clicked")
UNSUBSCRIBE_EVENTS = ("Unsubscribed", "Email Unsubscribed")
NEGATIVE_SENTIMENT = -0.2  # a text scored below this counts as a negative service contact
DAY = 86_400.0

# The measures, in the order of the matrix columns.
COLUMNS = ("first_seen", "last_seen", "orders", "order_days", "first_order", "last_order", "revenue",
           "orders_90d", "events_30d", "engagement_90d", "unsubscribed", "negative_180d", "sentiment_365d")


@dataclass
class Customers:
    """The customers at ``at``: their profile ids and one row of measures each (``COLUMNS``; times as epoch
    seconds, a missing measure NaN)."""

    at: datetime
    ids: np.ndarray
    values: np.ndarray

    def column(self, name: str) -> np.ndarray:
        return self.values[:, COLUMNS.index(name)]

    def __len__(self) -> int:
        return len(self.ids)


def _epoch(value) -> float:
    if value is None:
        return np.nan
    if isinstance(value, str):
        value = parse_datetime(value)
    return value.timestamp()


def _in(names) -> str:
    return "(" + ", ".join(["%s"] * len(names)) + ")"


def customers_at(at: datetime, *, profile_ids=None) -> Customers:
    """Every customer's measures over their events before ``at`` (or only the customers among ``profile_ids``)."""
    revenue, sentiment = _number_expr("revenue"), _number_expr("sentiment")
    day = _day_expr()
    params: list = []

    def param(value):
        params.append(value)
        return "%s"

    t = _db_time(at)
    order = param(ORDER_EVENT)
    select = [
        "MIN(e.timestamp)", "MAX(e.timestamp)",
        f"SUM(CASE WHEN e.name = {order} THEN 1 ELSE 0 END)",
        f"COUNT(DISTINCT CASE WHEN e.name = {param(ORDER_EVENT)} THEN {day} END)",
        f"MIN(CASE WHEN e.name = {param(ORDER_EVENT)} THEN e.timestamp END)",
        f"MAX(CASE WHEN e.name = {param(ORDER_EVENT)} THEN e.timestamp END)",
        f"SUM(CASE WHEN e.name = {param(ORDER_EVENT)} THEN {revenue} END)",
        f"SUM(CASE WHEN e.name = {param(ORDER_EVENT)} AND e.timestamp >= {param(_db_time(at - timedelta(90)))} "
        "THEN 1 ELSE 0 END)",
        f"SUM(CASE WHEN e.timestamp >= {param(_db_time(at - timedelta(30)))} THEN 1 ELSE 0 END)",
        f"SUM(CASE WHEN e.name IN ({', '.join(param(n) for n in ENGAGEMENT_EVENTS)}) AND e.timestamp >= "
        f"{param(_db_time(at - timedelta(90)))} THEN 1 ELSE 0 END)",
        f"MAX(CASE WHEN e.name IN ({', '.join(param(n) for n in UNSUBSCRIBE_EVENTS)}) THEN 1 ELSE 0 END)",
        f"SUM(CASE WHEN {sentiment} < {param(NEGATIVE_SENTIMENT)} AND e.timestamp >= "
        f"{param(_db_time(at - timedelta(180)))} THEN 1 ELSE 0 END)",
        f"AVG(CASE WHEN e.timestamp >= {param(_db_time(at - timedelta(365)))} THEN {sentiment} END)",
    ]
    where = f"e.timestamp < {param(t)}"
    if profile_ids is not None:
        ids = sorted({int(pk) for pk in profile_ids})
        if not ids:
            return Customers(at=at, ids=np.empty(0, dtype=np.int64), values=np.empty((0, len(COLUMNS))))
        where += f" AND e.profile_id IN ({', '.join(param(pk) for pk in ids)})"
    sql = (f"SELECT e.profile_id, {', '.join(select)} FROM {EVENT_TABLE} e "
           f"JOIN {PROFILE_TABLE} p ON p.id = e.profile_id AND p.merged_into_id IS NULL "
           f"WHERE {where} GROUP BY e.profile_id "
           f"HAVING SUM(CASE WHEN e.name = {param(ORDER_EVENT)} THEN 1 ELSE 0 END) > 0 ORDER BY e.profile_id")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    times = {0, 1, 4, 5}  # the columns of COLUMNS that are times
    values = np.array([[_epoch(v) if i in times else (np.nan if v is None else float(v))
                        for i, v in enumerate(row[1:])] for row in rows], dtype=float).reshape(len(rows), len(COLUMNS))
    return Customers(at=at, ids=np.array([row[0] for row in rows], dtype=np.int64), values=values)


def _day_expr() -> str:
    """The event's day (UTC), to count order days rather than orders (two orders on one day are one purchase)."""
    if connection.vendor == "postgresql":
        return "CAST(e.timestamp AT TIME ZONE 'UTC' AS date)"
    return "substr(e.timestamp, 1, 10)"


def orders_between(start: datetime, end: datetime, *, profile_ids=None) -> dict[int, tuple[int, float]]:
    """profile id -> (order days, revenue) of the completed orders in (start, end]."""
    params = [ORDER_EVENT, _db_time(start), _db_time(end)]
    where = ""
    if profile_ids is not None:
        ids = sorted({int(pk) for pk in profile_ids})
        if not ids:
            return {}
        where = f" AND e.profile_id IN ({', '.join(['%s'] * len(ids))})"
        params += ids
    sql = (f"SELECT e.profile_id, COUNT(DISTINCT {_day_expr()}), SUM({_number_expr('revenue')}) "
           f"FROM {EVENT_TABLE} e WHERE e.name = %s AND e.timestamp > %s AND e.timestamp <= %s{where} "
           "GROUP BY e.profile_id")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {pk: (int(days), float(revenue or 0.0)) for pk, days, revenue in cursor.fetchall()}


def history_days() -> float:
    """Days between the first completed order and now (0 without orders): how far back a time split can reach."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(e.timestamp) FROM {EVENT_TABLE} e WHERE e.name = %s", [ORDER_EVENT])
        first = cursor.fetchone()[0]
    if first is None:
        return 0.0
    from django.utils import timezone

    return max(0.0, (timezone.now().timestamp() - _epoch(first)) / DAY)
