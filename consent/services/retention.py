"""Retention: how long each category of data is kept, and the nightly run that deletes what is older.

The categories and their deletion live in ``cdp.core.retention`` (each app registers the handler of its tables);
the policies and the record of each run live here.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from cdp.core import retention
from consent.models import RetentionPolicy, RetentionRun

BATCH_SIZE = 5000


class PolicyInvalid(ValueError):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


@transaction.atomic
def retention_policy_save(*, category: str, days: int, scope: str = "", enabled: bool = True,
                          policy: RetentionPolicy | None = None) -> RetentionPolicy:
    handler = retention.handler_for(category)
    if handler is None:
        known = ", ".join(h.category for h in retention.handlers())
        raise PolicyInvalid(f"Unknown data category; one of {known}.", field="category")
    scope = (scope or "").strip()
    if scope and not handler.scope_label:
        raise PolicyInvalid(f"{handler.label} have no scopes; leave it empty.", field="scope")
    if not isinstance(days, int) or days < 1:
        raise PolicyInvalid("Keep data for at least one day.", field="days")
    clash = RetentionPolicy.objects.filter(category=category, scope=scope)
    if policy is not None:
        clash = clash.exclude(pk=policy.pk)
    if clash.exists():
        raise PolicyInvalid("There is already a policy for this category and scope.", field="scope")
    policy = policy or RetentionPolicy()
    policy.category, policy.scope, policy.days, policy.enabled = category, scope, days, enabled
    policy.save()
    return policy


@transaction.atomic
def retention_policy_delete(*, policy: RetentionPolicy) -> None:
    policy.delete()


def retention_run(*, trigger: str = "nightly", now: datetime | None = None,
                  batch_size: int = BATCH_SIZE) -> RetentionRun:
    """Apply every enabled policy: delete the category's data older than its period, batch by batch (each batch
    its own short transaction, so the tables stay writable). The run and its counts are recorded as it goes."""
    now = now or timezone.now()
    run = RetentionRun.objects.create(started_at=now, trigger=trigger)
    try:
        for policy in RetentionPolicy.objects.filter(enabled=True).order_by("category", "scope"):
            before = now - timedelta(days=policy.days)
            entry = {"category": policy.category, "scope": policy.scope, "days": policy.days,
                     "before": before.isoformat(), "deleted": 0, "skipped": ""}
            handler = retention.handler_for(policy.category)
            if handler is None:
                entry["skipped"] = "no handler is registered for this category (its app is not installed)"
            else:
                while True:
                    with transaction.atomic():
                        deleted = handler.delete_batch(before, policy.scope, batch_size)
                    entry["deleted"] += deleted
                    if deleted < batch_size:
                        break
            run.deleted.append(entry)
            run.total += entry["deleted"]
            run.save(update_fields=["deleted", "total"])
    except Exception as error:
        run.status, run.error, run.finished_at = RetentionRun.Status.FAILED, f"{type(error).__name__}: {error}", \
            timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        raise
    run.status, run.finished_at = RetentionRun.Status.DONE, timezone.now()
    run.save(update_fields=["status", "finished_at"])
    return run


# --- the handlers consent registers for tables of the layers below it --------------------------------------------


def events_delete_batch(before: datetime, scope: str, limit: int) -> int:
    from profiles.models import Event

    events = Event.objects.filter(timestamp__lt=before)
    if scope:
        events = events.filter(type=scope)
    return retention.delete_oldest(events, limit=limit)
