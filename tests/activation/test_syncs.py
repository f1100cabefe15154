"""Delta syncs: the first sends everything, later ones what was added, changed and removed; members without
consent are not sent and are counted; state moves only when a delivery is delivered."""

import hashlib
import hmac

import pytest

from activation import services
from activation.destinations.base import secret as secret_of
from activation.models import Delivery, DeliveryItem, Sync, SyncMember
from consent.models import ConsentRecord, Purpose
from consent.services import consent_record
from segments.services import segment_refresh
from tests.activation.conftest import recheck


def _items(receiver):
    return [(item["change"], item["data"]["email"]) for request in receiver.requests
            for item in request.json["items"]]


@pytest.mark.django_db
def test_the_first_sync_sends_every_member_with_consent_and_counts_the_others(
        receiver, webhook, make_person, make_activation, vips, run_sync):
    ann, bob = make_person("ann@example.com", first_name="Ann"), make_person("bob@example.com")
    make_person("cyd@example.com", consent=ConsentRecord.Status.DENIED)
    make_person("dan@example.com", consent=None)
    make_person("eve@example.com", tier="basic")
    segment_refresh(segment=vips)
    sync = run_sync(make_activation(webhook))

    assert (sync.status, sync.full, sync.members, sync.added, sync.changed, sync.removed, sync.skipped_consent,
            sync.sent, sync.failed) == (Sync.Status.SUCCEEDED, True, 4, 2, 0, 0, 2, 2, 0)
    assert sorted(_items(receiver)) == [("added", "ann@example.com"), ("added", "bob@example.com")]
    data = {item["data"]["email"]: item["data"] for item in receiver.requests[0].json["items"]}
    assert data["ann@example.com"] == {"email": "ann@example.com", "first_name": "Ann", "customer": ann.pk}
    assert data["bob@example.com"]["first_name"] is None  # mapped but empty: sent as null
    assert set(SyncMember.objects.values_list("profile_id", flat=True)) == {ann.pk, bob.pk}


@pytest.mark.django_db
def test_a_later_sync_sends_only_what_was_added_changed_and_removed(
        receiver, webhook, make_person, make_activation, vips, run_sync):
    ann, bob, cyd = (make_person(f"{n}@example.com") for n in ("ann", "bob", "cyd"))
    segment_refresh(segment=vips)
    activation = make_activation(webhook)
    run_sync(activation)
    receiver.requests.clear()

    assert run_sync(activation).deliveries_total == 0  # nothing changed: nothing sent

    make_person("ann@example.com", first_name="Annie")  # changed
    make_person("bob@example.com", tier="basic")  # leaves the segment
    dan = make_person("dan@example.com")  # joins
    recheck(ann, bob, cyd, dan)
    sync = run_sync(activation)

    assert (sync.full, sync.added, sync.changed, sync.removed, sync.sent) == (False, 1, 1, 1, 3)
    assert sorted(_items(receiver)) == [("added", "dan@example.com"), ("changed", "ann@example.com"),
                                        ("removed", "bob@example.com")]
    assert {r.json["type"] for r in receiver.requests} == {"upsert", "remove"}
    assert set(SyncMember.objects.values_list("profile_id", flat=True)) == {ann.pk, cyd.pk, dan.pk}


@pytest.mark.django_db
def test_a_withdrawn_consent_removes_the_member_within_the_next_minutes(
        receiver, webhook, make_person, make_activation, vips, run_sync, django_capture_on_commit_callbacks):
    """consent_record sends profile_changed; activation re-evaluates the profile at once and sends its removal,
    also for an activation that syncs daily."""
    ann, bob = make_person("ann@example.com"), make_person("bob@example.com")
    segment_refresh(segment=vips)
    activation = make_activation(webhook, schedule="daily")
    run_sync(activation)
    receiver.requests.clear()

    with django_capture_on_commit_callbacks(execute=True):
        consent_record(profile=bob, purpose=Purpose.objects.get(key="email_marketing"),
                       status=ConsentRecord.Status.WITHDRAWN)

    assert _items(receiver) == [("removed", "bob@example.com")]
    sync = Sync.objects.get(trigger=Sync.Trigger.CONSENT)
    assert (sync.removed, sync.sent, sync.status) == (1, 1, Sync.Status.SUCCEEDED)
    assert list(SyncMember.objects.values_list("profile_id", flat=True)) == [ann.pk]
    # and the next scheduled sync neither sends Bob nor removes him again, but counts him as skipped
    receiver.requests.clear()
    sync = run_sync(activation)
    assert (sync.deliveries_total, sync.skipped_consent) == (0, 1)


@pytest.mark.django_db
def test_a_realtime_activation_sends_a_member_who_enters_and_one_who_leaves(
        receiver, webhook, make_person, make_activation, vips, run_sync, django_capture_on_commit_callbacks):
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    activation = make_activation(webhook, schedule="realtime")
    run_sync(activation)
    receiver.requests.clear()

    bob = make_person("bob@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        recheck(bob)  # segments sends segment_entered on commit
    assert _items(receiver) == [("added", "bob@example.com")]

    make_person("bob@example.com", tier="basic")
    with django_capture_on_commit_callbacks(execute=True):
        recheck(bob)
    assert _items(receiver)[-1] == ("removed", "bob@example.com")
    assert set(Sync.objects.filter(trigger=Sync.Trigger.REALTIME).values_list("status", flat=True)) == {
        Sync.Status.SUCCEEDED}


@pytest.mark.django_db
def test_a_batch_in_flight_is_not_sent_again_by_the_next_sync(
        receiver, webhook, make_person, make_activation, vips):
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    activation = make_activation(webhook)
    first = services.sync_run(activation=activation)  # not committed: its delivery is pending
    assert Delivery.objects.get(sync=first).status == Delivery.Status.PENDING
    second = services.sync_run(activation=activation)
    assert (second.added, second.deliveries_total) == (0, 0)


@pytest.mark.django_db
def test_a_webhook_is_signed_with_the_secret_shown_once_and_carries_the_idempotency_key(
        receiver, make_person, make_activation, vips, run_sync):
    saved = services.destination_create(name="Hook", kind="webhook", config={"url": receiver.url})
    secret = saved.new_secrets["signing_secret"]
    make_person("ann@example.com")
    segment_refresh(segment=vips)
    run_sync(make_activation(saved.destination))

    (request,) = receiver.requests
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-CDP-Signature"] == expected
    assert request.headers["Idempotency-Key"] == str(Delivery.objects.get().idempotency_key)
    # the secret is shown once: changing the destination keeps it and does not show it again
    again = services.destination_update(destination=saved.destination, name="Hook 2")
    assert again.new_secrets == {} and secret_of(again.destination, "signing_secret") == secret


@pytest.mark.django_db
def test_computed_traits_are_mapped_in_one_query_per_chunk(
        receiver, webhook, make_person, make_activation, vips, run_sync, django_assert_max_num_queries):
    from profiles.models import ComputedTrait, ComputedValue

    trait = ComputedTrait.objects.create(key="orders_total", name="Orders", aggregation="count",
                                         value_type="number")
    people = [make_person(f"p{i}@example.com") for i in range(6)]
    ComputedValue.objects.bulk_create([ComputedValue(trait=trait, profile=p, value_number=i, computed_at=p.created_at)
                                       for i, p in enumerate(people)])
    segment_refresh(segment=vips)
    activation = make_activation(webhook, mapping={"email": "traits.email", "orders": "computed.orders_total"})
    from activation.services.syncs import delta_compute

    with django_assert_max_num_queries(6):  # members, eligible rows, computed values, state, in flight
        delta = delta_compute(activation)
    assert sorted(payload["orders"] for _, _, payload, _ in delta.upserts) == [0, 1, 2, 3, 4, 5]
    assert DeliveryItem.objects.count() == 0


@pytest.mark.django_db
def test_thousands_of_removals_are_read_in_chunks(webhook, make_activation, vips):
    from django.utils import timezone

    from activation.services.syncs import READ_CHUNK, delta_compute
    from profiles.models import Profile

    activation = make_activation(webhook)
    gone = Profile.objects.bulk_create([Profile(traits={"email": f"p{i}@example.com"})
                                       for i in range(READ_CHUNK + 500)])
    SyncMember.objects.bulk_create([SyncMember(activation=activation, profile=p, payload={"email": p.traits["email"]},
                                               payload_hash="old", sent_at=timezone.now()) for p in gone])
    delta = delta_compute(activation)
    assert len(delta.removals) == READ_CHUNK + 500 and delta.upserts == []


@pytest.mark.django_db
def test_a_sensitive_trait_is_never_sent(receiver, webhook, make_person, make_activation, vips, run_sync):
    from activation.services.activations import ActivationInvalid
    from profiles.services import trait_classify

    trait_classify(trait="diagnosis", classification="sensitive")
    with pytest.raises(ActivationInvalid, match="mapping.diagnosis: .diagnosis. is a sensitive trait"):
        make_activation(webhook, mapping={"email": "traits.email", "diagnosis": "traits.diagnosis.code"})
    # Mapped while it was a normal trait, classified sensitive later: it goes out as null.
    activation = make_activation(webhook, mapping={"email": "traits.email", "note": "traits.note"})
    make_person("ann@example.com", note="asthma")
    trait_classify(trait="note", classification="sensitive")
    segment_refresh(segment=vips)
    run_sync(activation)
    [item] = receiver.requests[0].json["items"]
    assert item["data"] == {"email": "ann@example.com", "note": None}
