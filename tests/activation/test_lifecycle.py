"""Around the syncs: the beat starts due syncs and resumes stalled deliveries; a restriction freezes a person out
(removed, counted as skipped); an erasure asks the destinations to forget and leaves no log; the export handler
answers with the person's deliveries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from activation import services, tasks
from activation.models import Activation, Delivery, DeliveryItem, Sync, SyncMember
from cdp.core.registry import erase_all, export_all
from segments.services import segment_refresh


@pytest.mark.django_db
def test_the_beat_starts_the_syncs_whose_schedule_has_come_once(receiver, webhook, make_person, vips,
                                                                 make_activation, django_capture_on_commit_callbacks):
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    hourly = make_activation(webhook, schedule="hourly")
    manual = services.activation_create(name="By hand", segment=vips, destination=webhook, purpose=hourly.purpose,
                                        mapping={"email": "traits.email"})
    with django_capture_on_commit_callbacks(execute=True):
        first = tasks.syncs_due()
    assert first["syncs"] == [hourly.pk] and not manual.syncs.exists()
    assert hourly.syncs.get().trigger == Sync.Trigger.SCHEDULE and len(receiver.requests) == 1
    assert tasks.syncs_due()["syncs"] == []  # not again within the hour

    Activation.objects.filter(pk=hourly.pk).update(last_sync_at=timezone.now() - timedelta(minutes=61))
    assert services.activations_due() == [hourly.pk]
    assert services.activations_due() == []  # claimed: a second beat does not start it again


@pytest.mark.django_db
def test_the_beat_resumes_a_delivery_whose_message_was_lost(receiver, webhook, make_person, vips, make_activation):
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    sync = services.sync_run(activation=make_activation(webhook))  # committed nowhere: its task never ran
    delivery = Delivery.objects.get(sync=sync)
    assert services.deliveries_stalled() == []
    Delivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert tasks.syncs_due()["deliveries"] == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and len(receiver.requests) == 1


@pytest.mark.django_db
def test_a_delivery_being_sent_is_not_claimed_twice(receiver, webhook, make_person, vips, make_activation):
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    sync = services.sync_run(activation=make_activation(webhook))
    delivery = Delivery.objects.get(sync=sync)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENDING, sent_at=timezone.now())
    assert services.delivery_attempt(delivery_id=delivery.pk).status == "skipped"
    assert receiver.requests == []


@pytest.mark.django_db
def test_a_restriction_freezes_the_person_out_and_removes_them(receiver, webhook, make_person, vips,
                                                               make_activation, run_sync,
                                                               django_capture_on_commit_callbacks):
    from consent.services import request_complete, request_create

    make_person("ann@example.com")
    bob = make_person("bob@example.com")
    segment_refresh(segment=vips)
    activation = make_activation(webhook, schedule="daily")
    run_sync(activation)
    receiver.requests.clear()

    with django_capture_on_commit_callbacks(execute=True):
        request = request_create(kind="restriction", identifier_type="email", identifier="bob@example.com",
                                 verification_note="called from the number on file")
        request_complete(request=request)
    removed = [item["data"]["email"] for r in receiver.requests for item in r.json["items"]
               if item["change"] == "removed"]
    assert removed == ["bob@example.com"]
    assert not SyncMember.objects.filter(profile=bob).exists()
    assert run_sync(activation).skipped_consent == 1


@pytest.mark.django_db
def test_an_erasure_forgets_the_person_at_the_destinations_and_leaves_no_log(
        receiver, webhook, make_person, vips, make_activation, run_sync, django_capture_on_commit_callbacks):
    ann = make_person("ann@example.com")
    segment_refresh(segment=vips)
    run_sync(make_activation(webhook))
    exported = export_all(ann)["activation"]
    assert [d["change"] for d in exported["deliveries"]] == ["added"]
    assert exported["sent_state"][0]["payload"]["email"] == "ann@example.com"

    receiver.requests.clear()
    with django_capture_on_commit_callbacks(execute=True):
        erase_all(ann)
    (forget,) = receiver.requests
    assert forget.json["type"] == "forget" and forget.json["items"][0]["data"]["email"] == "ann@example.com"
    assert not DeliveryItem.objects.filter(profile=ann).exists() and not SyncMember.objects.exists()
    assert list(DeliveryItem.objects.values_list("payload", flat=True)) == [{}]


@pytest.mark.django_db
def test_delivery_logs_past_their_retention_are_deleted_in_batches(receiver, webhook, make_person, vips,
                                                                   make_activation, run_sync):
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    run_sync(make_activation(webhook))
    assert services.delivery_logs_delete_batch(timezone.now() - timedelta(days=1), "", 100) == 0
    assert services.delivery_logs_delete_batch(timezone.now() + timedelta(seconds=1), "", 100) == 1
    assert not DeliveryItem.objects.exists()
