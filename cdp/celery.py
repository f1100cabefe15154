"""The Celery app: queue names (one enum), routes by module, retry policy and the beat schedule (one place)."""

import os
from enum import StrEnum

from celery import Celery, Task
from celery.schedules import crontab
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from kombu import Queue
from kombu.exceptions import OperationalError as BrokerOperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")


class Queues(StrEnum):
    INGESTION = "ingestion"
    IDENTITY = "identity"
    SEGMENTS = "segments"
    ACTIVATION = "activation"
    DEFAULT = "default"


# A task goes to the queue of the app it lives in; anything else to the default queue.
ROUTES_BY_MODULE = {
    "ingestion.tasks.*": {"queue": Queues.INGESTION.value},
    "profiles.tasks.*": {"queue": Queues.IDENTITY.value},
    "segments.tasks.*": {"queue": Queues.SEGMENTS.value},
    "activation.tasks.*": {"queue": Queues.ACTIVATION.value},
    "consent.tasks.*": {"queue": Queues.DEFAULT.value},
    "cdp.*": {"queue": Queues.DEFAULT.value},
}

# The beat schedule, in one place. Entries name tasks by their dotted path, so cdp imports no app.
BEAT_SCHEDULE: dict[str, dict] = {
    # Re-enqueue inbox processing for anything pending too long (a lost broker message never loses data).
    "ingestion-inbox-sweep": {"task": "ingestion.tasks.inbox_sweep", "schedule": 60.0},
    # Queue a pull of every database source whose own interval (its settings) has passed.
    "ingestion-database-pulls": {"task": "ingestion.tasks.database_sources_pull_due", "schedule": 60.0},
    # Recompute every dynamic segment: windows ("in the last 30 days") and waits ("then no order within 24 h")
    # move with time, without any event arriving. Real-time changes come through profile_changed meanwhile.
    "segments-refresh-all": {"task": "segments.tasks.segments_refresh_all", "schedule": 900.0},
    # Start the activation syncs whose schedule (hourly, daily) has come, and re-enqueue stalled deliveries.
    "activation-syncs-due": {"task": "activation.tasks.syncs_due", "schedule": 60.0},
    # Recompute every computed trait in full, nightly: time windows move on and RFM quintiles are cut again.
    "profiles-computed-traits": {"task": "profiles.tasks.computed_traits_recompute_all",
                                 "schedule": crontab(hour=2, minute=30)},
    # Retrain and score the insight models (churn, lifetime value, recommendations) on the night's data.
    "profiles-insights": {"task": "profiles.tasks.insights_run_all", "schedule": crontab(hour=3, minute=45)},
    # Delete data older than its retention policy (events, inbox, delivery logs, audit entries), in batches.
    "consent-retention": {"task": "consent.tasks.retention_run", "schedule": crontab(hour=3, minute=15)},
}


# Errors worth a retry: the network, the broker, and a database that is briefly away or locked.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    DatabaseOperationalError,
    DatabaseInterfaceError,
    BrokerOperationalError,
)


class CDPTask(Task):
    """Retries on transient errors only, with exponential backoff and jitter; anything else fails at once."""

    max_retries = 5
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = True
    acks_late = True

    autoretry_for = TRANSIENT_ERRORS

    def apply(self, args=None, kwargs=None, *, throw=None, **options):
        """Run in-process (the embedded default, or ``task.apply()``), with the same retries as a worker.

        Celery's eager path raises ``Retry`` to the caller on the first transient error when exceptions
        propagate; here the retries run in-process (without the backoff wait) and only the final outcome
        propagates.
        """
        if throw is None:
            throw = self.app.conf.task_eager_propagates
        result = super().apply(args, kwargs, throw=False, **options)
        if throw and result.failed() and isinstance(result.result, BaseException):
            raise result.result
        return result


app = Celery("cdp", task_cls=CDPTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(queue.value) for queue in Queues]
app.conf.task_default_queue = Queues.DEFAULT.value
app.conf.task_routes = ROUTES_BY_MODULE
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()


@app.task(name="cdp.ping")
def ping(value: str = "pong") -> str:
    """A round trip through the broker and a worker (used by /readyz checks and the integration test)."""
    return value


__all__ = ["BEAT_SCHEDULE", "TRANSIENT_ERRORS", "Queues", "app", "crontab"]
