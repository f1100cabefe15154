"""Tasks of the identity queue. A task takes ids, re-reads the world, calls a service and is idempotent."""

from celery import shared_task

from profiles.models import ComputedTrait
from profiles.services import computed, insights, matching, sensitive

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


# --- computed traits (profiles.services.computed) -------------------------------------------------------------------


@shared_task(name="profiles.tasks.computed_traits_recompute_all")
def computed_traits_recompute_all() -> dict:
    """The scheduled full recompute of every enabled computed trait (beat, nightly): windows move on, and RFM
    boundaries are cut again from the whole customer base."""
    return computed.computed_traits_recompute_all()


@shared_task(name="profiles.tasks.computed_trait_recompute")
def computed_trait_recompute(trait_id: int) -> int | None:
    """The full recompute of one trait (after it was created or its definition changed, or "Recompute now");
    None when the trait was deleted meanwhile."""
    trait = ComputedTrait.objects.filter(pk=trait_id).first()
    return None if trait is None else computed.computed_trait_recompute(trait=trait)


# --- insights (profiles.services.insights) --------------------------------------------------------------------------


@shared_task(name="profiles.tasks.insights_run_all")
def insights_run_all() -> dict:
    """The scheduled retraining and scoring of every insight model (beat, nightly, after the computed traits)."""
    return insights.insights_run_all()


@shared_task(name="profiles.tasks.insight_run")
def insight_run(kind: str) -> int:
    """Train and score one kind of insight model ("Run now"); returns the run's id."""
    return insights.insight_run(kind=kind).pk


# --- sensitive traits (profiles.services.sensitive) -----------------------------------------------------------------


@shared_task(name="profiles.tasks.trait_values_reseal")
def trait_values_reseal(name: str) -> dict:
    """Encrypt or decrypt one trait's stored values after it was classified as sensitive or no longer is
    (idempotent: reads the classification now and leaves values already in the right form alone)."""
    return sensitive.trait_values_reseal(name=name)
