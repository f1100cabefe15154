"""Tasks of the ingestion queue. A task takes ids, re-reads the world, calls a service and is idempotent."""

import time

from celery import shared_task

from ingestion import selectors
from ingestion.services import pipeline

# A task drains for at most this long, then hands over to a fresh task (so one source cannot hold a worker).
PROCESS_BUDGET_SECONDS = 60
# The sweep re-enqueues sources whose messages wait longer than this.
SWEEP_PENDING_AGE_SECONDS = 30


# No result is kept: with a result backend, every .delay() would also subscribe to the task's result channel,
# which costs more than the publish (and the tracking API enqueues from its request path).
@shared_task(name="ingestion.tasks.inbox_process", ignore_result=True)
def inbox_process(source_id: int | None = None) -> dict:
    """Process pending inbox messages (of one source, or all) in batches until none is left."""
    deadline = time.monotonic() + PROCESS_BUDGET_SECONDS
    total = pipeline.inbox_process_pending(source_id=source_id, deadline=deadline)
    if total.claimed and time.monotonic() >= deadline:
        inbox_process.delay(source_id=source_id)  # stopped by the budget: more may be pending
    return {"claimed": total.claimed, "processed": total.processed, "rejected": total.rejected}


@shared_task(name="ingestion.tasks.inbox_sweep", ignore_result=True)
def inbox_sweep() -> list[int]:
    """Re-enqueue processing for every source with messages pending for too long (a lost broker message never
    loses data). Returns the source ids enqueued."""
    source_ids = selectors.inbox_stale_source_ids(older_than_seconds=SWEEP_PENDING_AGE_SECONDS)
    for source_id in source_ids:
        inbox_process.delay(source_id=source_id)
    return source_ids


# --- connectors: file imports and database pulls (helper "connectors") ------------------------------------------

@shared_task(name="ingestion.tasks.import_run")
def import_run(import_id: int) -> dict | None:
    """Run a queued file import (idempotent: a rerun stores nothing twice)."""
    from ingestion.services.imports import import_run as run

    imp = run(import_id=import_id)
    return None if imp is None else {"status": imp.status, "read": imp.rows_read, "stored": imp.rows_stored,
                                     "failed": imp.rows_failed}


@shared_task(name="ingestion.tasks.database_source_pull")
def database_source_pull(source_id: int, import_id: int | None = None) -> dict | None:
    """Pull the new and changed rows of a database source (the run ``import_id`` when it was queued already)."""
    from ingestion.services.connectors import database_pull

    imp = database_pull(source_id=source_id, import_id=import_id)
    return None if imp is None else {"status": imp.status, "read": imp.rows_read, "stored": imp.rows_stored,
                                     "failed": imp.rows_failed}


@shared_task(name="ingestion.tasks.database_sources_pull_due")
def database_sources_pull_due() -> list[int]:
    """Queue a pull for every enabled database source whose interval has passed. Returns their ids."""
    from ingestion.services.connectors import database_pulls_enqueue_due

    return database_pulls_enqueue_due()
