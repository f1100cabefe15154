"""Tasks of the segments queue. A task takes ids, re-reads the world, calls a service and is idempotent."""

from celery import shared_task

from segments import services
from segments.models import Segment

# The most profile ids one re-check task takes; a larger change is split over several tasks.
RECHECK_TASK_MAX_IDS = 2000


@shared_task(name="segments.tasks.profiles_recheck")
def profiles_recheck(profile_ids: list[int]) -> dict:
    """The real-time path: bring the computed traits of changed profiles up to date, then re-check their
    membership of every dynamic segment."""
    from profiles.services import computed_values_refresh

    ids = [int(pk) for pk in profile_ids]
    computed_values_refresh(profile_ids=ids)
    return services.memberships_recheck(profile_ids=ids)


@shared_task(name="segments.tasks.segment_refresh")
def segment_refresh(segment_id: int) -> dict | None:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:  # deleted meanwhile
        return None
    return services.segment_refresh(segment=segment)


@shared_task(name="segments.tasks.segments_refresh_all")
def segments_refresh_all() -> list[dict]:
    """The scheduled full recompute (BEAT_SCHEDULE): time passes, so "in the last 30 days" and "then no order
    within 24 h" change without any event arriving."""
    return services.segments_refresh_all()


def profile_changed_enqueue_recheck(sender, profile_ids, **kwargs) -> None:
    """Receiver of ``profile_changed``: enqueue the re-check of the changed profiles. Nothing else happens here."""
    ids = sorted({int(pk) for pk in profile_ids})
    for start in range(0, len(ids), RECHECK_TASK_MAX_IDS):
        profiles_recheck.delay(ids[start:start + RECHECK_TASK_MAX_IDS])
