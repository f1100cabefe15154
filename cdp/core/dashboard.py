"""What the dashboard shows. Apps register their live counts and daily series from ``AppConfig.ready()``,
so that cdp imports no app."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    count: Callable[[], int]
    url_name: str | None = None
    permission: str | None = None
    order: int = 100


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    per_day: Callable[[date, date], dict[date, int]]
    permission: str | None = None


_metrics: dict[str, Metric] = {}
_series: dict[str, Series] = {}


def register_metric(metric: Metric) -> None:
    _metrics[metric.key] = metric


def register_series(series: Series) -> None:
    _series[series.key] = series


def metrics_for(user) -> list[Metric]:
    return sorted((m for m in _metrics.values() if not m.permission or user.has_perm(m.permission)),
                  key=lambda m: (m.order, m.key))


def series_for(user) -> list[Series]:
    return [s for s in _series.values() if not s.permission or user.has_perm(s.permission)]
