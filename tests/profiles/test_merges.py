"""The merge journal: what a merge moves (rows of other apps included, found generically), refusals, and an undo
that restores both profiles exactly; a never-merge pair is respected afterwards."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from consent.models import ConsentRecord
from consent.services import consent_record, purposes_install
from profiles.models import Event, Identity, Merge, MergeRefusal, NeverMerge, Profile, TraitValue
from profiles.services import (
    MergeRefused,
    Observation,
    merge_undo,
    never_merge_add,
    observations_apply,
    profiles_merge,
)
from profiles.signals import profiles_merged
from segments.models import Membership, Segment

pytestmark = pytest.mark.django_db
T0 = datetime(2025, 5, 1, 8, tzinfo=UTC)


def person(*identities, traits=None, at=T0, events=1, source="web"):
    ids = observations_apply(observations=[
        Observation(identities=list(identities), timestamp=at + timedelta(minutes=i), source=source,
                    traits=traits or {}, event_type="track", event_name=f"E{i}") for i in range(events)])
    return Profile.objects.get(pk=ids[0])


def snapshot(profile):
    profile.refresh_from_db()
    return {
        "traits": profile.traits, "trait_sources": profile.trait_sources, "merged_into": profile.merged_into_id,
        "first": profile.first_seen_at, "last": profile.last_seen_at,
        "identities": sorted(Identity.objects.filter(profile=profile).values_list("id", "type", "value")),
        "events": sorted(Event.objects.filter(profile=profile).values_list("id", flat=True)),
        "lineage": sorted(TraitValue.objects.filter(profile=profile).values_list(
            "id", "name", "source", "value_hash", "seen_count", "first_observed_at", "observed_at")),
        "consent": sorted(ConsentRecord.objects.filter(profile=profile).values_list("id", flat=True)),
        "memberships": sorted(Membership.objects.filter(profile=profile).values_list("id", flat=True)),
    }


@pytest.fixture
def two(django_capture_on_commit_callbacks):
    purposes = purposes_install()
    segment = Segment.objects.create(name="VIP", slug="vip")
    a = person(("email", "a@example.org"), traits={"first_name": "Anna", "city": "Köln"}, events=3)
    b = person(("phone", "+4917099999999"), traits={"first_name": "Anne", "zip": "50667"},
               at=T0 + timedelta(days=2), events=2, source="crm")
    consent_record(profile=b, purpose=purposes[0], status="granted", source="crm")
    Membership.objects.create(segment=segment, profile=b, entered_at=timezone.now())
    Membership.objects.create(segment=segment, profile=a, entered_at=timezone.now())  # conflicts when moved
    return a, b


def test_merge_moves_everything_and_journals_it(two, django_capture_on_commit_callbacks):
    a, b = two
    received = []
    profiles_merged.connect(lambda **kw: received.append(kw), weak=False, dispatch_uid="t-merge")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            merge = profiles_merge(winner=a, loser=b, reason="manual", rule="test", score=0.97,
                                   evidence={"why": "same person"})
    finally:
        profiles_merged.disconnect(dispatch_uid="t-merge")
    assert received and received[0]["winner_id"] == a.pk and received[0]["loser_id"] == b.pk
    b.refresh_from_db()
    a.refresh_from_db()
    assert b.merged_into == a and b.traits == {}
    assert Identity.objects.get(type="phone").profile == a
    assert Event.objects.filter(profile=a).count() == 5
    assert a.traits["first_name"] == "Anne" and a.traits["zip"] == "50667" and a.traits["city"] == "Köln"
    assert a.first_seen_at == T0 and a.last_seen_at == T0 + timedelta(days=2, minutes=1)
    assert ConsentRecord.objects.get().profile == a
    moved = merge.moved
    assert moved["events"]["count"] == 2 and moved["loser"]["traits"]["first_name"] == "Anne"
    assert moved["related"]["consent.consentrecord"]["ids"]
    # The open membership of the same segment would break the one-open-stay rule: it stays with the loser.
    assert moved["related"]["segments.membership"]["kept"]
    assert (merge.rule, merge.score, merge.evidence) == ("test", 0.97, {"why": "same person"})


def test_undo_restores_both_profiles_exactly_and_the_pair_stays_apart(two):
    a, b = two
    before_a, before_b = snapshot(a), snapshot(b)
    merge = profiles_merge(winner=a, loser=b, reason="manual")
    # Something arrives for the merged person in between: it stays with the winner.
    person(("phone", "+4917099999999"), traits={"first_name": "Anna"}, at=T0 + timedelta(days=5))
    winner, loser = merge_undo(merge=merge)
    assert snapshot(loser) == before_b
    after_a = snapshot(winner)
    assert after_a["identities"] == before_a["identities"]
    assert after_a["memberships"] == before_a["memberships"] and after_a["consent"] == before_a["consent"]
    assert set(before_a["events"]) < set(after_a["events"]) and len(after_a["events"]) == len(before_a["events"]) + 1
    assert winner.traits["first_name"] == "Anna" and "zip" not in winner.traits
    merge.refresh_from_db()
    assert merge.undone_at is not None
    assert NeverMerge.objects.filter(profile_a=min(a.pk, b.pk), profile_b=max(a.pk, b.pk)).exists()
    with pytest.raises(MergeRefused):
        profiles_merge(winner=a, loser=b, reason="manual")
    assert MergeRefusal.objects.filter(rule="never_merge").exists()
    with pytest.raises(ValueError):
        merge_undo(merge=merge)


def test_undo_restores_combined_lineage():
    a = person(("email", "c@example.org"), traits={"plan": "pro"})
    b = person(("anonymous_id", "dev-c"), traits={"plan": "pro"}, at=T0 + timedelta(hours=1))
    before_a, before_b = snapshot(a), snapshot(b)
    merge = profiles_merge(winner=a, loser=b, reason="identity")
    row = TraitValue.objects.get(profile=a, name="plan")
    assert row.seen_count == 2 and row.observed_at == T0 + timedelta(hours=1)
    merge_undo(merge=merge)
    assert snapshot(a) == before_a and snapshot(b) == before_b


def test_refusals_are_logged_with_their_reason():
    a = person(("user_id", "u-1"))
    b = person(("user_id", "u-2"))
    with pytest.raises(MergeRefused) as refused:
        profiles_merge(winner=a, loser=b, reason="match", score=0.99)
    assert "user_id" in refused.value.reason
    refusal = MergeRefusal.objects.get()
    assert {refusal.profile_a_id, refusal.profile_b_id} == {a.pk, b.pk}
    assert refusal.rule == "identity_rule:user_id:unique_per_profile"
    c = person(*[("email", f"c{i}@example.org") for i in range(3)])
    d = person(*[("email", f"d{i}@example.org") for i in range(3)])
    with pytest.raises(MergeRefused, match="at most 5"):
        profiles_merge(winner=c, loser=d, reason="manual")
    with pytest.raises(MergeRefused):
        profiles_merge(winner=c, loser=c, reason="manual")
    assert Merge.objects.count() == 0


def test_never_merge_covers_profiles_merged_in_later():
    a, b, c = (person(("email", f"{n}@example.org")) for n in "pqr")
    never_merge_add(profile_a=a, profile_b=b)
    profiles_merge(winner=c, loser=b, reason="manual")
    with pytest.raises(MergeRefused):
        profiles_merge(winner=a, loser=c, reason="manual")


def test_a_chain_of_merges_can_be_undone_in_reverse():
    a, b, c = (person(("email", f"x{i}@example.org")) for i in range(3))
    states = [snapshot(p) for p in (a, b, c)]
    first = profiles_merge(winner=b, loser=c, reason="manual")
    second = profiles_merge(winner=a, loser=b, reason="manual")
    assert Profile.objects.get(pk=c.pk).merged_into_id == a.pk  # tombstones follow to the live profile
    merge_undo(merge=second)
    assert Profile.objects.get(pk=c.pk).merged_into_id == b.pk
    merge_undo(merge=first)
    assert [snapshot(p) for p in (a, b, c)] == states
