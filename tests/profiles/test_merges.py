"""The merge journal: what a merge moves (rows of other apps included, found generically), refusals, and an undo
that restores both profiles exactly; a never-merge pair is respected afterwards. Merges in bulk
(``profiles_merge_batch``): the same end state as one merge after the other, transitive clusters, refusals,
one signal per batch, undo of each merge of a batch."""

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from consent.models import ConsentRecord
from consent.services import consent_record, purposes_install
from profiles.models import (
    Event,
    Identity,
    MatchCandidate,
    Merge,
    MergeRefusal,
    NeverMerge,
    Profile,
    TraitValue,
)
from profiles.services import (
    CandidateDecisionError,
    MergePair,
    MergeRefused,
    Observation,
    candidate_decide,
    live_profile_id,
    merge_undo,
    never_merge_add,
    observations_apply,
    profiles_merge,
    profiles_merge_batch,
)
from profiles.signals import profile_changed, profiles_merged
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
    assert [kw["merges"] for kw in received] == [[{"merge_id": merge.pk, "winner_id": a.pk, "loser_id": b.pk}]]
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


# ---------------------------------------------------------------------------------------------- merges in bulk
def world(prefix):
    """Seven profiles with identities, events and lineage (p0 and p1 share a (name, source, value) lineage row)."""
    p = [
        person(("email", f"{prefix}e0@example.org"), traits={"first_name": "Anna"}, events=2),
        person(("phone", f"+4917{len(prefix)}990001"), traits={"first_name": "Anna", "city": "Köln"}, source="crm",
               at=T0 + timedelta(days=1)),
        person(("anonymous_id", f"{prefix}-a2"), traits={"first_name": "Anne"}, events=3, at=T0 + timedelta(days=2)),
        person(("user_id", f"{prefix}-u3"), traits={"plan": "pro"}, at=T0 + timedelta(days=3)),
        person(("user_id", f"{prefix}-u4"), traits={"plan": "free"}, at=T0 + timedelta(days=4)),
        person(("email", f"{prefix}e5@example.org"), traits={"plan": "pro", "zip": "50667"}, source="shop",
               at=T0 + timedelta(days=5)),
        person(("email", f"{prefix}e6@example.org"), at=T0 + timedelta(days=6)),
    ]
    never_merge_add(profile_a=p[6], profile_b=p[1])
    return p


# (winner, loser) by position in world(): 0 <- 1 <- 2 is one cluster; 3 <- 5 joins; 5 <- 4 is then refused (two
# user ids in one cluster); 6 <- 0 is refused (6 must never merge with 1, now in 0's family); 2 <- 2 is itself.
PAIRS = [(0, 1), (1, 2), (3, 5), (5, 4), (6, 0), (2, 2)]


def state(profiles, prefix):
    """Everything a merge touches, with ids replaced by positions in ``profiles`` and the prefix taken out."""
    pos = {p.pk: i for i, p in enumerate(profiles)}
    out = []
    for p in profiles:
        p.refresh_from_db()
        out.append({
            "traits": p.traits, "sources": p.trait_sources, "merged_into": pos.get(p.merged_into_id),
            "first": p.first_seen_at, "last": p.last_seen_at,
            "identities": sorted((t, v.replace(prefix, "").replace(f"+4917{len(prefix)}", "+4917"))
                                 for t, v in p.identities.values_list("type", "value")),
            "events": sorted(Event.objects.filter(profile=p).values_list("name", "timestamp")),
            "lineage": sorted(TraitValue.objects.filter(profile=p).values_list(
                "name", "source", "value_hash", "seen_count", "first_observed_at", "observed_at")),
        })
    journal = sorted(
        (pos[m.loser_id], pos[live_profile_id(m.winner_id)], m.reason, m.rule, m.score, str(m.evidence),
         m.moved["events"]["count"], len(m.moved["identities"]))
        for m in Merge.objects.filter(loser_id__in=pos))
    refusals = sorted((pos[r.profile_a_id], pos[r.profile_b_id], r.rule)
                      for r in MergeRefusal.objects.filter(profile_a_id__in=pos))
    return out, journal, refusals


def test_a_batch_ends_in_the_same_state_as_one_merge_after_the_other():
    one, bulk = world("qq"), world("zzz")
    for w, loser in PAIRS:  # one by one, each pair on the live profiles (as the batch resolves them)
        winner_id, loser_id = (live_profile_id(one[w].pk), live_profile_id(one[loser].pk)) if w != loser \
            else (one[w].pk, one[w].pk)
        with contextlib.suppress(MergeRefused):
            profiles_merge(winner=Profile(pk=winner_id), loser=Profile(pk=loser_id), reason="match", rule="r",
                           score=0.995, evidence={"pair": [w, loser]})
    outcomes = profiles_merge_batch(pairs=[
        MergePair(bulk[w].pk, bulk[loser].pk, "match", "r", 0.995, {"pair": [w, loser]}) for w, loser in PAIRS])
    assert [type(o).__name__ for o in outcomes] == ["Merge", "Merge", "Merge", "MergeRefused", "MergeRefused",
                                                    "MergeRefused"]
    assert [o.rule for o in outcomes[3:]] == ["identity_rule:user_id:unique_per_profile", "never_merge",
                                              "same_profile"]
    # Transitive: 2 went straight into 0, the cluster's winner.
    assert (outcomes[1].winner_id, outcomes[1].loser_id) == (bulk[0].pk, bulk[2].pk)
    assert state(one, "qq") == state(bulk, "zzz")
    profiles, journal, refusals = state(bulk, "zzz")
    assert [p["merged_into"] for p in profiles] == [None, 0, 0, None, None, 3, None]
    assert profiles[0]["traits"]["first_name"] == "Anne" and profiles[0]["traits"]["city"] == "Köln"
    assert ("first_name", "web") in {(n, s) for n, s, *_ in profiles[0]["lineage"]}
    combined = [row for row in profiles[0]["lineage"] if row[0] == "first_name" and row[3] == 2]
    assert len(combined) == 1  # "Anna" from web, seen on 0 and on 1: one row, seen twice
    assert len(profiles[0]["events"]) == 6 and len(journal) == 3 and len(refusals) == 3


def test_a_batch_sends_one_signal_with_every_merge(django_capture_on_commit_callbacks):
    p = world("ss")
    received, changed = [], []
    profiles_merged.connect(lambda **kw: received.append(kw["merges"]), weak=False, dispatch_uid="t-batch")
    profile_changed.connect(lambda **kw: changed.append(kw["profile_ids"]), weak=False, dispatch_uid="t-batch")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            outcomes = profiles_merge_batch(pairs=[MergePair(p[w].pk, p[loser].pk, "match") for w, loser in PAIRS])
    finally:
        profiles_merged.disconnect(dispatch_uid="t-batch")
        profile_changed.disconnect(dispatch_uid="t-batch")
    merges = [o for o in outcomes if isinstance(o, Merge)]
    assert received == [[{"merge_id": m.pk, "winner_id": m.winner_id, "loser_id": m.loser_id} for m in merges]]
    assert changed == [sorted({p[i].pk for i in (0, 1, 2, 3, 5)})]


def test_each_merge_of_a_batch_is_undone_on_its_own():
    p = world("uu")
    before = snapshot(p[1])
    outcomes = profiles_merge_batch(pairs=[MergePair(p[w].pk, p[loser].pk, "match") for w, loser in PAIRS])
    winner, loser = merge_undo(merge=outcomes[0])
    assert snapshot(loser) == before
    assert Profile.objects.get(pk=p[2].pk).merged_into_id == p[0].pk  # the other merge of the cluster stays
    assert winner.traits["first_name"] == "Anne" and "city" not in winner.traits
    assert NeverMerge.objects.filter(profile_a=p[0].pk, profile_b=p[1].pk).exists()
    merge_undo(merge=outcomes[1])
    assert Profile.objects.get(pk=p[0].pk).traits == {"first_name": "Anna"}


def test_undo_leaves_what_the_winner_observed_after_the_merge_with_the_winner():
    a = person(("email", "l@example.org"), traits={"plan": "pro"})
    b = person(("anonymous_id", "dev-l"), traits={"plan": "pro"}, at=T0 + timedelta(hours=1), source="app")
    before_b = snapshot(b)
    merge = profiles_merge(winner=a, loser=b, reason="identity")
    # After the merge the winner sees b's row's (name, source, value) twice more: the moved row counts them.
    for hours in (5, 6):
        person(("anonymous_id", "dev-l"), traits={"plan": "pro"}, at=T0 + timedelta(hours=hours), source="app")
    assert TraitValue.objects.get(profile=a, source="app").seen_count == 3
    merge_undo(merge=merge)
    assert snapshot(b)["lineage"] == before_b["lineage"]  # seen once, at its own time, as at the merge
    later = TraitValue.objects.get(profile=a, source="app")
    assert (later.seen_count, later.observed_at) == (2, T0 + timedelta(hours=6))


def test_undoing_two_merges_combined_into_one_row_in_either_order_restores_the_counts():
    for order in ((1, 0), (0, 1)):
        a, b, c = (person(("email", f"{n}{order[0]}@example.org"), traits={"plan": "pro"}, source="crm",
                          at=T0 + timedelta(hours=i)) for i, n in enumerate("abc"))
        states = [snapshot(p) for p in (a, b, c)]
        merges = profiles_merge_batch(pairs=[MergePair(a.pk, b.pk, "manual"), MergePair(a.pk, c.pk, "manual")])
        assert TraitValue.objects.get(profile=a, name="plan").seen_count == 3
        for i in order:
            merge_undo(merge=merges[i])
        if order == (1, 0):  # in reverse order: exactly as before
            assert [snapshot(p) for p in (a, b, c)] == states
        # In either order: every profile has its rows and counts back (out of order, the winner's last observation
        # is the one before the later merge, which included the earlier loser's: see merges._lineage_undo).
        counts = [sorted(TraitValue.objects.filter(profile=p).values_list("pk", "seen_count")) for p in (a, b, c)]
        assert counts == [[row[:1] + row[4:5] for row in s["lineage"]] for s in states]


def test_a_refused_review_merge_keeps_its_refusal_logged():
    a = person(("user_id", "r-1"))
    b = person(("user_id", "r-2"))
    candidate = MatchCandidate.objects.create(profile_a=a, profile_b=b, score=0.9)
    with pytest.raises(CandidateDecisionError, match="refused"):
        candidate_decide(candidate=candidate, decision="merge")
    assert MergeRefusal.objects.get().rule == "identity_rule:user_id:unique_per_profile"
    candidate.refresh_from_db()
    assert candidate.status == MatchCandidate.Status.PENDING


def test_a_refusal_in_a_batch_is_logged_once_per_pair_and_rule():
    a = person(("user_id", "o-1"))
    b = person(("user_id", "o-2"))
    for _ in range(2):
        [outcome] = profiles_merge_batch(pairs=[MergePair(a.pk, b.pk, "identity")])
        assert isinstance(outcome, MergeRefused)
    assert MergeRefusal.objects.count() == 1 and not Merge.objects.exists()


class _RolledBack(Exception):
    pass


def test_unify_full_merges_the_same_in_batches_as_one_pair_at_a_time(monkeypatch):
    """The full run hands its merges over MERGE_BATCH pairs at a time: batches of one and one batch for
    everything end in the same profiles, journal and review queue."""
    from profiles.services import matching
    from tests.profiles.test_unify import _synthetic_people

    matching.match_rules_install()
    observations, same, _different = _synthetic_people(120)
    for start in range(0, len(observations), 50):
        observations_apply(observations=observations[start:start + 50])

    def run(batch_size):
        monkeypatch.setattr(matching, "MERGE_BATCH", batch_size)
        try:
            with transaction.atomic():
                result = matching.unify_full()
                out = (result.auto_merged, result.refused, result.sent_to_review,
                       sorted(Profile.objects.values_list("pk", "merged_into_id", "traits", "trait_sources")),
                       # One at a time a chain (c into b, b into a) is journaled as it happened; a batch
                       # journals c straight into a. Both end in the same live profile.
                       sorted((m.loser_id, live_profile_id(m.winner_id), m.rule, m.score, str(m.evidence))
                              for m in Merge.objects.all()),
                       sorted(Identity.objects.values_list("pk", "profile_id")),
                       sorted(TraitValue.objects.values_list("profile_id", "name", "source", "value_hash",
                                                             "seen_count")),
                       sorted(MatchCandidate.objects.values_list("profile_a_id", "profile_b_id", "status")))
                raise _RolledBack
        except _RolledBack:
            return out

    one_by_one, batched = run(1), run(2000)
    assert one_by_one[0] > 0.8 * len(same)
    assert one_by_one == batched


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="merge workers side by side need PostgreSQL")
def test_unify_full_merges_side_by_side_to_the_same_end_as_in_one_transaction(monkeypatch):
    """Outside a transaction on PostgreSQL the full run merges its batches (whole clusters each) in worker threads,
    each with its own connection: the profiles, journal and review queue end as a run in one transaction leaves
    them (one batch after the other)."""
    from profiles.services import matching
    from tests.profiles.test_unify import _synthetic_people

    observations, same, _different = _synthetic_people(120)
    for start in range(0, len(observations), 50):  # committed: with no rule yet, nothing is matched meanwhile
        observations_apply(observations=observations[start:start + 50])
    matching.match_rules_install()
    monkeypatch.setattr(matching, "MERGE_BATCH", 5)

    def state():
        return (sorted(Profile.objects.values_list("pk", "merged_into_id", "traits", "trait_sources")),
                sorted((m.loser_id, live_profile_id(m.winner_id), m.rule, m.score) for m in Merge.objects.all()),
                sorted(Identity.objects.values_list("pk", "profile_id")),
                sorted(TraitValue.objects.values_list("profile_id", "name", "source", "value_hash", "seen_count")),
                sorted(MatchCandidate.objects.values_list("profile_a_id", "profile_b_id", "status")))

    try:
        with transaction.atomic():
            assert matching._merge_workers(None) == 1
            in_one = matching.unify_full()
            expected = state()
            raise _RolledBack
    except _RolledBack:
        pass
    assert matching._merge_workers(None) > 1
    side_by_side = matching.unify_full()
    assert in_one.auto_merged > 0.8 * len(same) and side_by_side.auto_merged == in_one.auto_merged
    assert state() == expected
    # The older profile of every merge won.
    assert all(m.winner_id < m.loser_id for m in Merge.objects.all())


def test_a_match_pair_lets_the_older_cluster_win_also_after_a_refusal():
    a = person(("user_id", "older"))
    b = person(("user_id", "other"))
    c = person(("anonymous_id", "c"))
    outcomes = profiles_merge_batch(pairs=[
        MergePair(b.pk, a.pk, "match", older_wins=True),  # refused: two user ids
        MergePair(c.pk, b.pk, "match", older_wins=True),  # c joins b, the older of the two
    ])
    assert isinstance(outcomes[0], MergeRefused)
    assert (outcomes[1].winner_id, outcomes[1].loser_id) == (b.pk, c.pk)
    assert live_profile_id(a.pk) == a.pk and live_profile_id(c.pk) == b.pk
