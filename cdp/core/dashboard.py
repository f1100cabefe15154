"""What the dashboard shows. Apps register their live counts, daily series and distribution charts from
``AppConfig.ready()``, so that cdp imports no app."""

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


@dataclass(frozen=True)
class Distribution:
    """A chart of how something is spread (profiles per churn level, per range of predicted value). ``data``
    returns what components/chart.html takes, {"labels": [...], "series": [{"key", "label", "values"}]} (extra keys
    such as "total" are kept), or None when there is nothing to show yet."""

    key: str
    label: str
    data: Callable[[], dict | None]
    kind: str = "bar"
    axis: str = "Value"
    description: str = ""
    empty: str = "Nothing to show yet."
    url_name: str | None = None
    permission: str | None = None
    order: int = 100


_metrics: dict[str, Metric] = {}
_series: dict[str, Series] = {}
_distributions: dict[str, Distribution] = {}


def register_metric(metric: Metric) -> None:
    _metrics[metric.key] = metric


def register_series(series: Series) -> None:
    _series[series.key] = series


def register_distribution(distribution: Distribution) -> None:
    _distributions[distribution.key] = distribution


def metrics_for(user) -> list[Metric]:
    return sorted((m for m in _metrics.values() if not m.permission or user.has_perm(m.permission)),
                  key=lambda m: (m.order, m.key))


def series_for(user) -> list[Series]:
    return [s for s in _series.values() if not s.permission or user.has_perm(s.permission)]


def distributions_for(user) -> list[Distribution]:
    return sorted((d for d in _distributions.values() if not d.permission or user.has_perm(d.permission)),
                  key=lambda d: (d.order, d.key))


def distributions_data(user) -> list[dict]:
    """The distribution charts ``user`` may see, each {key, label, kind, axis, description, empty, url_name, data};
    data None when there is nothing to show yet (``empty`` says why)."""
    return [{"key": d.key, "label": d.label, "kind": d.kind, "axis": d.axis, "description": d.description,
             "empty": d.empty, "url_name": d.url_name, "data": d.data()} for d in distributions_for(user)]
