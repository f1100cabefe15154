"""Consent and privacy tasks (default queue)."""

from celery import shared_task

from consent import services


@shared_task(name="consent.tasks.retention_run")
def retention_run(trigger: str = "nightly") -> int:
    """Apply the retention policies (beat: consent-retention, or "Run now" in the UI). Returns the rows deleted."""
    return services.retention_run(trigger=trigger).total
