"""Queue insight runs ("Run now" on the Insights page and POST /api/v1/insights/runs/): on commit, as
``computed_traits_recompute_enqueue`` queues a recompute. The task records the run (``insight_run_record`` commits
it as running first, so the page shows it). In the embedded default the run happens in-process right away."""

import logging

from django.conf import settings
from django.db import transaction

from profiles.models import InsightModel

logger = logging.getLogger(__name__)


def insight_run_enqueue(*, kind: str | None = None) -> None:
    """Queue one kind of insight model, or every kind (``kind`` None), on commit. Raises ValueError for an unknown
    kind. A run that fails records its reason on its InsightModel; in the embedded default (eager tasks) that
    failure is logged here instead of failing the request that asked for it."""
    if kind is not None and kind not in InsightModel.Kind.values:
        raise ValueError(f"Unknown insight kind {kind!r}; one of {', '.join(InsightModel.Kind.values)}.")

    def enqueue():
        from profiles import tasks  # tasks import the services: imported when used

        try:
            if kind is None:
                tasks.insights_run_all.delay()
            else:
                tasks.insight_run.delay(kind)
        except Exception:
            if not settings.CELERY_TASK_ALWAYS_EAGER:
                raise
            logger.exception("insight run %s failed", kind)

    transaction.on_commit(enqueue)
