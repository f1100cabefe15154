"""Consent and privacy tasks (default queue)."""

from celery import shared_task

from consent import services


@shared_task(name="consent.tasks.retention_run_nightly")
def retention_run_nightly() -> int:
    """Apply the retention policies (beat: consent-retention). Returns the rows deleted."""
    return services.retention_run(trigger="nightly").total
