from datetime import timedelta

from django.utils import timezone

from cdp.core import dashboard


def dashboard_metrics(user) -> list[dict]:
    return [{"key": m.key, "label": m.label, "value": m.count(), "url_name": m.url_name}
            for m in dashboard.metrics_for(user)]


def dashboard_series(user, *, days: int) -> dict:
    """Daily values of every series the user may see, over the last ``days`` days (today included)."""
    end = timezone.localdate()
    start = end - timedelta(days=days - 1)
    labels = [start + timedelta(days=offset) for offset in range(days)]
    series = []
    for item in dashboard.series_for(user):
        values = item.per_day(start, end)
        series.append({"key": item.key, "label": item.label, "values": [values.get(day, 0) for day in labels]})
    return {"labels": [day.isoformat() for day in labels], "series": series}


def database_ready(connection) -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "detail": connection.vendor}
    except Exception as error:  # noqa: BLE001 - readiness reports any failure
        return {"ok": False, "detail": type(error).__name__}


def broker_ready() -> dict:
    from django.conf import settings

    from cdp.celery import app

    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "detail": "no broker: tasks run eagerly in-process"}
    try:
        with app.connection_for_write() as connection:
            # One quick retry, no back-off: a readiness probe must answer within its own timeout.
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return {"ok": True, "detail": connection.transport_cls}
    except Exception as error:  # noqa: BLE001
        return {"ok": False, "detail": type(error).__name__}
