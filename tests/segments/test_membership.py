"""Membership: full refreshes, the real-time re-check on profile_changed, history, signals, static snapshots."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from profiles.models import Profile
from profiles.services import Observation, observations_apply, profiles_merge
from segments import selectors, services
from segments.models import Membership, Segment, SegmentSize
from segments.signals import segment_entered, segment_exited
from tests.segments.conftest import shopper

pytestmark = pytest.mark.django_db

GERMANS = {"type": "trait", "trait": "country", "op": "equals", "value": "DE"}
RECENT_BUYERS = {"type": "group", "op": "and", "children": [
    GERMANS, {"type": "event", "event": "Order Completed", "op": "performed", "within_days": 30}]}


@pytest.fixture
def sent():
    """What segment_entered / segment_exited carried, as (signal, segment_id, profile_ids)."""
    log = []

    def entered(sender, segment_id, profile_ids, **kwargs):
        log.append(("entered", segment_id, profile_ids))

    def exited(sender, segment_id, profile_ids, **kwargs):
        log.append(("exited", segment_id, profile_ids))

    segment_entered.connect(entered, dispatch_uid="test-entered")
    segment_exited.connect(exited, dispatch_uid="test-exited")
    yield log
    segment_entered.disconnect(dispatch_uid="test-entered")
    segment_exited.disconnect(dispatch_uid="test-exited")


def order(profile_email: str, message_id: str) -> None:
    observations_apply(observations=[Observation(
        identities=[("email", profile_email)], timestamp=timezone.now(), source="shop", channel="shop",
        event_type="track", event_name="Order Completed", properties={"revenue": 42.0}, message_id=message_id)])


def test_a_refresh_opens_and_closes_stays_and_records_the_day(db, sent, django_capture_on_commit_callbacks):
    anna = shopper("anna@example.de", traits={"country": "DE"}, events=[("Order Completed", 5, {})])
    ben = shopper("ben@example.de", traits={"country": "DE"}, events=[("Order Completed", 24 * 60, {})])
    with django_capture_on_commit_callbacks(execute=True):
        segment = services.segment_create(name="Recent German buyers", rules=RECENT_BUYERS)
    segment.refresh_from_db()
    assert segment.size == 1 and segment.last_refreshed_at is not None
    assert list(selectors.segment_members(segment=segment)) == [anna]
    assert ("entered", segment.pk, [anna.pk]) in sent

    # The rules change: everyone German. Ben enters; nobody leaves; today's row counts both entries.
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_update(segment=segment, rules=GERMANS)
    assert set(selectors.segment_members(segment=segment)) == {anna, ben}
    today = SegmentSize.objects.get(segment=segment)
    assert (today.size, today.entered, today.exited) == (2, 2, 0)

    # A refresh with nothing changed writes nothing new.
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        result = services.segment_refresh(segment=segment)
    assert result["entered"] == result["exited"] == 0 and result["size"] == 2
    assert sent == []

    # Back to recent buyers: Ben leaves, and his stay keeps when it began and ended.
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_update(segment=segment, rules=RECENT_BUYERS)
    stay = Membership.objects.get(segment=segment, profile=ben)
    assert stay.exited_at is not None and stay.entered_at < stay.exited_at
    assert ("exited", segment.pk, [ben.pk]) in sent
    assert selectors.segment_size_history(segment=segment) == [(timezone.localdate(), 1)]


def test_a_new_order_puts_the_profile_in_the_segment_in_real_time(db, sent, django_capture_on_commit_callbacks):
    cleo = shopper("cleo@example.de", traits={"country": "DE"}, events=[("Product Viewed", 5, {})])
    shopper("someone@example.de", traits={"country": "DE"}, events=[("Order Completed", 5, {})])
    with django_capture_on_commit_callbacks(execute=True):
        segment = services.segment_create(name="Recent German buyers", rules=RECENT_BUYERS)
    assert not Membership.objects.filter(segment=segment, profile=cleo).exists()
    sent.clear()

    # The pipeline applies an order; profile_changed on commit re-checks Cleo (tasks run in-process here).
    with django_capture_on_commit_callbacks(execute=True):
        order("cleo@example.de", "order-1")
    assert Membership.objects.filter(segment=segment, profile=cleo, exited_at__isnull=True).exists()
    assert sent == [("entered", segment.pk, [cleo.pk])]
    segment.refresh_from_db()
    assert segment.size == 2

    # A change that keeps her in: nothing is sent again.
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        order("cleo@example.de", "order-2")
    assert sent == []


def test_a_merged_profile_leaves_its_segments(db, django_capture_on_commit_callbacks):
    anna = shopper("anna@example.de", traits={"country": "DE"})
    twin = shopper("anna.twin@example.de", traits={"country": "DE"})
    with django_capture_on_commit_callbacks(execute=True):
        segment = services.segment_create(name="Germans", rules=GERMANS)
    with django_capture_on_commit_callbacks(execute=True):
        profiles_merge(winner=anna, loser=twin, reason="manual")
    assert list(selectors.segment_members(segment=segment)) == [anna]
    segment.refresh_from_db()
    assert segment.size == 1


def test_recheck_of_many_profiles_matches_a_full_refresh(db, django_capture_on_commit_callbacks):
    people = [shopper(f"p{i}@example.de", traits={"country": "DE" if i % 3 else "AT", "age": 20 + i},
                      events=[("Order Completed", 24 * (i * 7), {})]) for i in range(12)]
    with django_capture_on_commit_callbacks(execute=True):
        segment = services.segment_create(name="Recent German buyers", rules=RECENT_BUYERS)
    refreshed = set(selectors.segment_members(segment=segment).values_list("pk", flat=True))
    Membership.objects.filter(segment=segment).delete()
    services.memberships_recheck(profile_ids=[p.pk for p in people])
    rechecked = set(selectors.segment_members(segment=segment).values_list("pk", flat=True))
    assert rechecked == refreshed and refreshed


def test_a_static_segment_is_a_snapshot(db, django_capture_on_commit_callbacks):
    shopper("anna@example.de", traits={"country": "DE"})
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = services.segment_create(name="Germans today", rules=GERMANS, kind="static")
    assert snapshot.memberships.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        shopper("ben@example.de", traits={"country": "DE"})
    assert snapshot.memberships.count() == 1


def test_quick_segment_from_a_filtered_profile_list(db):
    anna = shopper("anna@example.de", traits={"country": "DE"})
    shopper("ben@example.at", traits={"country": "AT"})
    segment = services.segment_from_profiles(name="From the list",
                                             queryset=Profile.objects.filter(traits__country="DE"))
    assert segment.kind == "static" and segment.size == 1
    assert list(selectors.segment_members(segment=segment)) == [anna]


def test_overlap_and_explain(db, django_capture_on_commit_callbacks):
    anna = shopper("anna@example.de", traits={"country": "DE"}, events=[("Order Completed", 5, {})])
    shopper("ben@example.de", traits={"country": "DE"})
    shopper("cleo@example.at", traits={"country": "AT"}, events=[("Order Completed", 5, {})])
    with django_capture_on_commit_callbacks(execute=True):
        germans = services.segment_create(name="Germans", rules=GERMANS)
        buyers = services.segment_create(name="Buyers", rules={"type": "event", "event": "Order Completed",
                                                               "op": "performed"})
    assert selectors.segments_overlap(a=germans, b=buyers) == {"a_only": 1, "both": 1, "b_only": 1}
    explained = selectors.membership_explain(segment=germans, profile=anna)
    assert explained == [{"path": "", "depth": 0, "type": "trait", "label": "country is DE", "matched": True}]


def test_erasure_removes_memberships_and_keeps_the_size_true(db, django_capture_on_commit_callbacks):
    anna = shopper("anna@example.de", traits={"country": "DE"})
    with django_capture_on_commit_callbacks(execute=True):
        segment = services.segment_create(name="Germans", rules=GERMANS)
    assert services.personal_data_export(anna)["segment_memberships"][0]["segment"] == "Germans"
    assert services.personal_data_erase(anna) == 1
    segment.refresh_from_db()
    assert segment.size == 0 and not Membership.objects.exists()


def test_a_segment_built_on_another_follows_it_in_the_same_recheck(db, django_capture_on_commit_callbacks):
    cleo = shopper("cleo@example.de", traits={"country": "DE"}, events=[("Product Viewed", 5, {})])
    shopper("long.ago@example.de", traits={"country": "DE"}, events=[("Order Completed", 24 * 90, {})])
    with django_capture_on_commit_callbacks(execute=True):
        buyers = services.segment_create(name="Recent German buyers", rules=RECENT_BUYERS)
        loyal = services.segment_create(name="Buyers on the web", rules={"type": "group", "op": "and", "children": [
            {"type": "segment", "segment": buyers.slug, "op": "member"},
            {"type": "event", "event": "Product Viewed", "op": "performed"}]})
    assert not loyal.memberships.exists()
    with django_capture_on_commit_callbacks(execute=True):
        order("cleo@example.de", "order-1")
    assert list(selectors.segment_members(segment=buyers)) == [cleo]
    assert list(selectors.segment_members(segment=loyal)) == [cleo]


def test_a_recheck_is_one_statement_and_follows_rules_changed_elsewhere(db, sent, django_capture_on_commit_callbacks):
    anna = shopper("anna@example.de", traits={"country": "DE"}, events=[("Order Completed", 5, {})])
    germans = services.segment_create(name="Germans", rules=GERMANS)
    buyers = services.segment_create(name="Recent German buyers", rules=RECENT_BUYERS)
    services.memberships_recheck(profile_ids=[anna.pk])  # builds this process's plan; Anna enters both
    assert {m.segment_id for m in Membership.objects.filter(profile=anna)} == {germans.pk, buyers.pk}

    # Nothing changed: one statement for every segment, the rules compiled before.
    with CaptureQueriesContext(connection) as queries:
        totals = services.memberships_recheck(profile_ids=[anna.pk])
    assert totals == {"profiles": 1, "entered": 0, "exited": 0}
    assert len(queries) == 1

    # Another process changes the rules (no cache of this one is told): the next re-check sees the new rules.
    Segment.objects.filter(pk=germans.pk).update(rules={**GERMANS, "value": "AT"}, updated_at=timezone.now())
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.memberships_recheck(profile_ids=[anna.pk])
    assert sent == [("exited", germans.pk, [anna.pk])]
    assert not Membership.objects.filter(segment=germans, profile=anna, exited_at__isnull=True).exists()
    germans.refresh_from_db()
    assert germans.size == 0

    # A segment deleted elsewhere is no longer checked; one created elsewhere is.
    Segment.objects.filter(pk=germans.pk).delete()
    austrians_or_germans = Segment.objects.create(
        name="DACH", slug="dach", rules={"type": "trait", "trait": "country", "op": "in", "value": ["DE", "AT"]})
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.memberships_recheck(profile_ids=[anna.pk])
    assert sent == [("entered", austrians_or_germans.pk, [anna.pk])]


def test_a_compiled_recheck_keeps_no_now_of_its_own(db):
    """The re-check compiles a segment once; its time bounds come from the database's clock when the statement
    runs. "Added to cart, then no order within 0.1 s": a cart added after the plan was compiled, and older than
    0.1 s when the next re-check runs, makes an abandoner."""
    anna = shopper("anna@example.de", traits={"country": "DE"}, events=[("Product Viewed", 5, {})])
    shopper("ben@example.de", events=[("Product Added", 5, {}), ("Order Completed", 5, {})])  # known events
    abandoners = services.segment_create(name="Abandoners", rules={
        "type": "sequence", "first": {"event": "Product Added"}, "then": {"event": "Order Completed"},
        "op": "not_followed_by", "within_hours": 0.1 / 3600})
    services.memberships_recheck(profile_ids=[anna.pk])  # the plan is compiled now
    assert not Membership.objects.filter(segment=abandoners, profile=anna).exists()
    observations_apply(observations=[Observation(
        identities=[("email", "anna@example.de")], timestamp=timezone.now(), source="web", channel="web",
        event_type="track", event_name="Product Added", properties={"sku": "A"}, message_id="cart-1")])
    time.sleep(0.3)
    services.memberships_recheck(profile_ids=[anna.pk])
    assert Membership.objects.filter(segment=abandoners, profile=anna, exited_at__isnull=True).exists()


def test_the_first_segment_is_seen_by_a_process_that_rechecked_before_any_existed(
        db, django_capture_on_commit_callbacks):
    anna = shopper("anna.first@example.de", traits={"country": "DE"})
    assert services.memberships_recheck(profile_ids=[anna.pk])["entered"] == 0  # a plan without segments
    germans = Segment.objects.create(name="Germans", slug="germans", rules=GERMANS)  # made by another process
    with django_capture_on_commit_callbacks(execute=True):
        assert services.memberships_recheck(profile_ids=[anna.pk])["entered"] == 1
    assert Membership.objects.filter(segment=germans, profile=anna, exited_at__isnull=True).exists()
