"""Deliveries: one batch to one destination, sent by its own task with the destination's timeouts.

- A delivery is claimed (row lock, status ``sending``, attempts + 1) before the request and settled after it, so two
  workers never send it at once and a delivered one is never sent again. Its idempotency key stays the same through
  retries and re-sends; destinations get it (header, file name, Message-ID) to drop a repeat of a request whose
  answer was lost.
- A passing failure (no connection, timeout, 5xx, 429) is retried with exponential backoff and full jitter (the
  numbers of ``CDPTask``); a lasting one (4xx, a bad template) or the last attempt makes it a dead letter that keeps
  the reason. A dead letter can be sent again from the UI or the API, with the same key.
- Delivered: the activation's state (``SyncMember``) takes the payloads sent, and the sync's counts move on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from celery.utils.time import get_exponential_backoff_interval
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from activation.destinations import Batch, DestinationError, Item, kind_module
from activation.models import Delivery, DeliveryItem, Destination, Sync, SyncMember
from activation.services.syncs import sync_finish
from cdp.celery import CDPTask

# A delivery left "sending" longer than this (its worker died) may be claimed again.
SENDING_LEASE = timedelta(minutes=5)
# Deliveries waiting longer than this past their time are enqueued again by the beat (a lost broker message).
RESUME_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    status: str
    retry_in: float | None = None  # seconds until the next attempt, when one is due
    message: str = ""


def retry_delay(attempts: int) -> float:
    """Exponential backoff with full jitter, as CDPTask retries: factor 2, at most 300 s."""
    return get_exponential_backoff_interval(factor=CDPTask.retry_backoff, retries=max(attempts - 1, 0),
                                            maximum=CDPTask.retry_backoff_max, full_jitter=CDPTask.retry_jitter)


@transaction.atomic
def _claim(delivery_id: int) -> Delivery | None:
    delivery = (Delivery.objects.select_for_update(of=("self",)).select_related("destination", "activation")
                .filter(pk=delivery_id).first())
    if delivery is None or delivery.status in (Delivery.Status.DELIVERED, Delivery.Status.DEAD):
        return None
    now = timezone.now()
    if delivery.status == Delivery.Status.SENDING and delivery.sent_at and delivery.sent_at > now - SENDING_LEASE:
        return None  # another worker is sending it
    delivery.status = Delivery.Status.SENDING
    delivery.attempts += 1
    delivery.sent_at = now
    delivery.save(update_fields=["status", "attempts", "sent_at"])
    return delivery


def _batch(delivery: Delivery) -> Batch:
    items = [Item(id=pk, profile_id=pid, change=change, payload=payload, delivered=done is not None)
             for pk, pid, change, payload, done in delivery.items.order_by("id").values_list(
                 "id", "profile_id", "change", "payload", "delivered_at")]
    activation = delivery.activation

    def item_done(item_id: int) -> None:
        DeliveryItem.objects.filter(pk=item_id).update(delivered_at=timezone.now())

    return Batch(action=delivery.action, items=items, idempotency_key=str(delivery.idempotency_key),
                 created_at=delivery.created_at, activation_id=activation.pk if activation else None,
                 activation_name=activation.name if activation else "",
                 options=activation.options if activation else {}, item_done=item_done)


def _call(delivery: Delivery, batch: Batch):
    module = kind_module(delivery.destination.kind)
    if not delivery.destination.enabled:
        raise DestinationError("the destination is switched off", retryable=False)
    return {Delivery.Action.UPSERT: module.send_batch, Delivery.Action.REMOVE: module.remove_batch,
            Delivery.Action.FORGET: module.forget}[delivery.action](delivery.destination, batch)


def delivery_attempt(*, delivery_id: int) -> Attempt:
    """One attempt at a delivery (the task's body). Returns what happened and when to try again, if at all."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return Attempt(delivery_id, "skipped")
    batch = _batch(delivery)
    try:
        result = _call(delivery, batch)
    except DestinationError as error:
        return _failed(delivery, error)
    except Exception as error:  # a bug in a destination module: a dead letter with the reason, not a stuck row
        return _failed(delivery, DestinationError(f"internal error: {type(error).__name__}: {error}"[:500],
                                                  retryable=False))
    return _delivered(delivery, result.status, result.message)


@transaction.atomic
def _delivered(delivery: Delivery, status: int | None, message: str) -> Attempt:
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.DELIVERED, delivered_at=now,
                                                   response_status=status, last_error="", next_attempt_at=None)
    items = delivery.items.filter(profile_id__isnull=False)
    if delivery.activation_id and delivery.action == Delivery.Action.UPSERT:
        SyncMember.objects.bulk_create(
            [SyncMember(activation_id=delivery.activation_id, profile_id=pid, payload=payload, payload_hash=digest,
                        sent_at=now)
             for pid, payload, digest in items.values_list("profile_id", "payload", "payload_hash")],
            update_conflicts=True, unique_fields=["activation", "profile"],
            update_fields=["payload", "payload_hash", "sent_at"], batch_size=1000)
    elif delivery.activation_id and delivery.action == Delivery.Action.REMOVE:
        for pid, digest in items.values_list("profile_id", "payload_hash"):
            # only the state that was removed: a member who came back meanwhile keeps the newer state
            SyncMember.objects.filter(activation_id=delivery.activation_id, profile_id=pid,
                                      payload_hash=digest).delete()
    elif delivery.action == Delivery.Action.FORGET:
        delivery.items.update(payload={})  # the identifiers were kept for this request only
    if delivery.sync_id:
        Sync.objects.filter(pk=delivery.sync_id).update(sent=F("sent") + delivery.item_count,
                                                        deliveries_done=F("deliveries_done") + 1)
        sync_finish(sync=Sync(pk=delivery.sync_id))
    return Attempt(delivery.pk, Delivery.Status.DELIVERED, message=message)


@transaction.atomic
def _failed(delivery: Delivery, error: DestinationError) -> Attempt:
    reason = f"attempt {delivery.attempts}: {error.message}"[:2000]
    if error.retryable and delivery.attempts < delivery.max_attempts:
        delay = retry_delay(delivery.attempts)
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.RETRYING, last_error=reason, response_status=error.status,
            next_attempt_at=timezone.now() + timedelta(seconds=delay))
        return Attempt(delivery.pk, Delivery.Status.RETRYING, retry_in=delay, message=reason)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.DEAD, last_error=reason,
                                                   response_status=error.status, next_attempt_at=None)
    if delivery.sync_id:
        Sync.objects.filter(pk=delivery.sync_id).update(failed=F("failed") + delivery.item_count,
                                                        deliveries_done=F("deliveries_done") + 1)
        Sync.objects.filter(pk=delivery.sync_id, error="").update(error=reason[:500])
        sync_finish(sync=Sync(pk=delivery.sync_id))
    return Attempt(delivery.pk, Delivery.Status.DEAD, message=reason)


class NotResendable(ValueError):
    pass


@transaction.atomic
def delivery_resend(*, delivery: Delivery, actor=None) -> Delivery:
    """Send a dead letter again, with its idempotency key and a fresh set of attempts. Its sync counts it as open
    again, until it is delivered or dead once more."""
    delivery = Delivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status != Delivery.Status.DEAD:
        raise NotResendable("Only a dead letter can be sent again; this delivery is "
                            f"{delivery.get_status_display().lower()}.")
    default_attempts = Delivery._meta.get_field("max_attempts").default
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.PENDING,
                                                   max_attempts=delivery.attempts + default_attempts,
                                                   next_attempt_at=timezone.now())
    if delivery.sync_id:
        Sync.objects.filter(pk=delivery.sync_id).update(
            failed=F("failed") - delivery.item_count, deliveries_done=F("deliveries_done") - 1,
            status=Sync.Status.RUNNING, finished_at=None)
    from activation.tasks import delivery_send

    transaction.on_commit(lambda: delivery_send.delay(delivery.pk))
    delivery.refresh_from_db()
    return delivery


def deliveries_stalled(*, now=None) -> list[int]:
    """Deliveries that should be moving and are not: pending or retrying well past their time (a lost broker
    message), or sending past the lease (a worker died)."""
    now = now or timezone.now()
    waiting = Delivery.objects.filter(status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING])
    stalled = set(waiting.filter(next_attempt_at__lt=now - RESUME_AFTER).values_list("pk", flat=True))
    stalled |= set(waiting.filter(next_attempt_at__isnull=True, created_at__lt=now - RESUME_AFTER)
                   .values_list("pk", flat=True))
    stalled |= set(Delivery.objects.filter(status=Delivery.Status.SENDING, sent_at__lt=now - SENDING_LEASE)
                   .values_list("pk", flat=True))
    return sorted(stalled)


@transaction.atomic
def destinations_forget(*, profile) -> list[int]:
    """Ask every destination that can delete to forget the person: one forget delivery per destination that was
    sent this profile, carrying the identifiers last sent (read now, before profiles erases the identities). The
    items are not linked to the profile (it is being erased) and lose their payload once delivered."""
    states = (SyncMember.objects.filter(profile=profile).select_related("activation__destination")
              .order_by("activation__destination_id", "activation_id"))
    payloads: dict[int, list[dict]] = {}
    destinations: dict[int, Destination] = {}
    for state in states:
        destination = state.activation.destination
        if kind_module(destination.kind).SUPPORTS_FORGET and state.payload not in payloads.get(destination.pk, []):
            payloads.setdefault(destination.pk, []).append(state.payload)
            destinations[destination.pk] = destination
    ids = []
    for pk, rows in payloads.items():
        delivery = Delivery.objects.create(destination=destinations[pk], action=Delivery.Action.FORGET,
                                           item_count=len(rows))
        DeliveryItem.objects.bulk_create([DeliveryItem(delivery=delivery, profile=None,
                                                       change=DeliveryItem.Change.FORGOTTEN, payload=payload)
                                          for payload in rows])
        ids.append(delivery.pk)
    if ids:
        from activation.tasks import delivery_send

        transaction.on_commit(lambda: [delivery_send.delay(pk) for pk in ids])
    return ids


def delivery_logs_delete_batch(before, scope: str, limit: int) -> int:
    """Retention: delete up to ``limit`` finished deliveries (delivered or dead) created before ``before``, with
    their items (the per-profile log). Deliveries still on their way are kept."""
    from cdp.core.retention import delete_oldest

    return delete_oldest(Delivery.objects.filter(created_at__lt=before,
                                                 status__in=[Delivery.Status.DELIVERED, Delivery.Status.DEAD]),
                         limit=limit)
