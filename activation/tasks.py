"""Tasks of the activation queue. A task takes ids, re-reads the world, calls a service and is idempotent.

Each delivery is its own task, so a slow or failing destination holds up nothing but its own deliveries (and those
only as long as its timeouts allow)."""

from celery import shared_task

from activation import services
from activation.models import Activation, Sync, SyncMember

# The most profile ids one re-evaluation task takes; a larger change is split over several tasks.
REEVALUATE_MAX_IDS = 2000


@shared_task(name="activation.tasks.delivery_send")
def delivery_send(delivery_id: int) -> dict:
    attempt = services.delivery_attempt(delivery_id=delivery_id)
    if attempt.retry_in is not None:
        delivery_send.apply_async((delivery_id,), countdown=attempt.retry_in)
    return {"delivery": delivery_id, "status": attempt.status, "retry_in": attempt.retry_in}


@shared_task(name="activation.tasks.activation_sync")
def activation_sync(activation_id: int, trigger: str = Sync.Trigger.MANUAL, actor_id: int | None = None) -> dict | None:
    from django.contrib.auth import get_user_model

    activation = Activation.objects.filter(pk=activation_id).first()
    if activation is None:  # deleted meanwhile
        return None
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    sync = services.sync_run(activation=activation, trigger=trigger, actor=actor)
    return {"sync": sync.pk if sync else None}


@shared_task(name="activation.tasks.syncs_due")
def syncs_due() -> dict:
    """The beat, every minute: start the syncs whose schedule has come, and enqueue again the deliveries that
    stalled (a lost broker message, a dead worker)."""
    due = services.activations_due()
    for pk in due:
        activation_sync.delay(pk, Sync.Trigger.SCHEDULE)
    stalled = services.deliveries_stalled()
    for pk in stalled:
        delivery_send.delay(pk)
    return {"syncs": due, "deliveries": stalled}


@shared_task(name="activation.tasks.segment_members_changed")
def segment_members_changed(segment_id: int, profile_ids: list[int]) -> list[int]:
    """The real-time path: members entered or left a segment; each real-time activation of it sends the delta of
    these profiles now."""
    syncs = []
    for activation in Activation.objects.filter(segment_id=segment_id, schedule=Activation.Schedule.REALTIME,
                                                enabled=True):
        sync = services.sync_run(activation=activation, trigger=Sync.Trigger.REALTIME, profile_ids=profile_ids)
        if sync is not None:
            syncs.append(sync.pk)
    return syncs


@shared_task(name="activation.tasks.profiles_reevaluate")
def profiles_reevaluate(profile_ids: list[int]) -> list[int]:
    """Profiles changed (traits, consent, a restriction): real-time activations of their segments send their delta;
    every other activation that holds them sends their removal if they may no longer be activated (a withdrawn
    consent leaves the audience within minutes, not at the next daily sync)."""
    ids = [int(pk) for pk in profile_ids]
    held = set(SyncMember.objects.filter(profile_id__in=ids).values_list("activation_id", flat=True).distinct())
    realtime = set(Activation.objects.filter(
        schedule=Activation.Schedule.REALTIME, enabled=True, segment__memberships__profile_id__in=ids,
        segment__memberships__exited_at__isnull=True).values_list("pk", flat=True).distinct())
    syncs = []
    for activation in Activation.objects.filter(pk__in=held | realtime, enabled=True).order_by("pk"):
        realtime_one = activation.schedule == Activation.Schedule.REALTIME
        sync = services.sync_run(activation=activation, profile_ids=ids, removals_only=not realtime_one,
                                 trigger=Sync.Trigger.REALTIME if realtime_one else Sync.Trigger.CONSENT)
        if sync is not None:
            syncs.append(sync.pk)
    return syncs


# --- receivers: they only enqueue --------------------------------------------------------------------------------


def segment_changed_enqueue(sender, segment_id, profile_ids, **kwargs) -> None:
    """Receiver of ``segment_entered`` and ``segment_exited``."""
    segment_members_changed.delay(segment_id, list(profile_ids))


def profile_changed_enqueue(sender, profile_ids, **kwargs) -> None:
    """Receiver of ``profile_changed``."""
    ids = sorted({int(pk) for pk in profile_ids})
    for start in range(0, len(ids), REEVALUATE_MAX_IDS):
        profiles_reevaluate.delay(ids[start:start + REEVALUATE_MAX_IDS])
