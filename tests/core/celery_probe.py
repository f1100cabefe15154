"""Tasks for the Celery tests. A real worker imports this module with ``-I tests.core.celery_probe``.

The probes are named as tasks of each app's ``tasks`` module, so that cdp.celery.ROUTES_BY_MODULE routes them
exactly as it routes the apps' own tasks; each returns the queue its message arrived on.
"""

from collections import Counter

from django.db import OperationalError

from cdp.celery import ROUTES_BY_MODULE, app

# Attempts per key, in this process (eager tests, or the worker's solo pool).
attempts: Counter = Counter()


def _delivered_on(request) -> str:
    return (request.delivery_info or {}).get("routing_key") or ""


def _probe(module: str):
    @app.task(bind=True, name=f"{module}.platform_probe")
    def probe(self, value: str) -> dict:
        return {"value": value, "queue": _delivered_on(self.request)}

    return probe


PROBES = {pattern[:-1] + "platform_probe": _probe(pattern[:-2]) for pattern in ROUTES_BY_MODULE
          if pattern.endswith(".tasks.*")}


@app.task(bind=True, name="profiles.tasks.platform_flaky")
def flaky(self, key: str, failures: int) -> dict:
    """Fails with a transient database error ``failures`` times, then succeeds."""
    attempts[key] += 1
    if attempts[key] <= failures:
        raise OperationalError("database is locked")
    return {"attempts": attempts[key], "retries": self.request.retries}


@app.task(bind=True, name="profiles.tasks.platform_broken")
def broken(self, key: str) -> None:
    """Fails with a programming error: no retry can help."""
    attempts[key] += 1
    raise ValueError("a bug, not a transient error")
