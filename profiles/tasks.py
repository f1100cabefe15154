"""Tasks of the identity queue. A task takes ids, re-reads the world, calls a service and is idempotent."""

from celery import shared_task

from profiles.services import matching

# The most profile ids one task takes; a larger change is split over several tasks.
MATCH_TASK_MAX_IDS = 2000


@shared_task(name="profiles.tasks.match_profiles")
def match_profiles(profile_ids: list[int]) -> dict:
    """Probabilistic matching for new and changed profiles (idempotent: decided and queued pairs stay as they
    are; ids of merged profiles follow to the profile they were merged into)."""
    return matching.match_incremental(profile_ids=[int(pk) for pk in profile_ids]).as_dict()


def profile_changed_enqueue_matching(sender, profile_ids, **kwargs) -> None:
    """Receiver of ``profile_changed``: enqueue matching for the changed profiles, once per batch. Nothing else
    happens here; with no enabled match rule (one cached query) or inside a matching pass, nothing is enqueued."""
    if matching.matching_in_progress() or not matching.matching_enabled():
        return
    ids = sorted({int(pk) for pk in profile_ids})
    for start in range(0, len(ids), MATCH_TASK_MAX_IDS):
        match_profiles.delay(ids[start:start + MATCH_TASK_MAX_IDS])
