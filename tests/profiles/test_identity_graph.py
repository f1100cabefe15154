"""The deterministic identity graph: rules (priority, limits, blocked values, merge protection), Segment's identify
and alias, identities from traits and externalIds, automatic merges and refusals, flagged raw identifiers."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from ingestion.services import inbox_store, source_create
from ingestion.services.pipeline import inbox_process_pending
from profiles.models import Event, Identity, IdentityRule, Merge, MergeRefusal, Profile
from profiles.services import (
    Observation,
    identities_resolve,
    identity_rules_install,
    never_merge_add,
    observations_apply,
)

pytestmark = pytest.mark.django_db
T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)


def obs(*identities, at=T0, **kwargs):
    return Observation(identities=list(identities), timestamp=at, source=kwargs.pop("source", "web"), **kwargs)


def apply(*observations):
    return observations_apply(observations=list(observations))


def profile_of(identity_type, value):
    return Identity.objects.get(type=identity_type, value=value).profile


@pytest.fixture
def web():
    source, _ = source_create(name="Web", kind="http", channel="web")
    return source


def process(source, messages):
    inbox_store(source=source, messages=messages)
    return inbox_process_pending(source_id=source.pk)


def test_stock_rules_are_installed_and_install_is_idempotent():
    rules = {r.type: r for r in IdentityRule.objects.all()}
    assert rules["user_id"].max_per_profile == 1 and rules["user_id"].unique_per_profile
    assert rules["email"].max_per_profile == 5
    assert rules["user_id"].priority < rules["email"].priority < rules["anonymous_id"].priority
    assert identity_rules_install() == 0


def test_anonymous_browsing_on_several_days_then_identify_gives_one_profile_and_old_ids_follow(web):
    for day in range(3):
        process(web, [{"type": "page", "anonymousId": f"device-{day % 2}", "name": "Home",
                       "timestamp": (T0 + timedelta(days=day)).isoformat()}])
    assert Profile.objects.filter(merged_into=None).count() == 2  # two devices, not yet known to be one person
    process(web, [{"type": "identify", "anonymousId": "device-0", "userId": "u-42",
                   "traits": {"email": "Ada@Example.com", "first_name": "Ada"}}])
    process(web, [{"type": "identify", "anonymousId": "device-1", "userId": "u-42"}])
    person = profile_of("user_id", "u-42")
    assert profile_of("anonymous_id", "device-0") == person == profile_of("anonymous_id", "device-1")
    assert profile_of("email", "ada@example.com") == person  # email from traits became an identity
    assert Merge.objects.filter(winner=person, reason="identity").count() == 1
    # Later, a page with an old anonymous id resolves to the person.
    process(web, [{"type": "page", "anonymousId": "device-0", "name": "Pricing"}])
    assert Event.objects.filter(profile=person, type="page").count() == 4
    assert Profile.objects.filter(merged_into=None).count() == 1


def test_alias_merges_the_previous_ids_profile_into_the_user_ids(web):
    process(web, [{"type": "track", "anonymousId": "anon-a", "event": "Viewed"},
                  {"type": "identify", "userId": "u-1", "traits": {"plan": "pro"}}])
    before = profile_of("user_id", "u-1")
    loser = profile_of("anonymous_id", "anon-a")
    process(web, [{"type": "alias", "userId": "u-1", "previousId": "anon-a"}])
    loser.refresh_from_db()
    assert loser.merged_into == before
    merge = Merge.objects.get()
    assert (merge.reason, merge.winner, merge.loser_id) == ("alias", before, loser.pk)
    assert Event.objects.filter(profile=before, name="Viewed").exists()


def test_blocked_values_never_resolve_or_merge():
    a, b = apply(obs(("user_id", "null"), ("anonymous_id", "d1")), obs(("user_id", "null"), ("anonymous_id", "d2")))
    assert a != b
    assert not Identity.objects.filter(value="null").exists()
    c, d = apply(obs(("email", "test@example.com"), ("user_id", "x1")),
                 obs(("email", "TEST@example.com "), ("user_id", "x2")))
    assert c != d and not Merge.objects.exists()
    # Only blocked identities: the event is still kept, on a profile of its own.
    [e] = apply(obs(("user_id", "undefined"), event_type="track", event_name="Clicked"))
    assert Event.objects.get(profile_id=e).name == "Clicked"


def test_configured_blocked_values_apply_too():
    rule = IdentityRule.objects.get(type="phone")
    rule.blocked_values = ["+4930123456"]
    rule.save()
    a, b = apply(obs(("phone", "+4930123456"), ("user_id", "p1")), obs(("phone", "+4930123456"), ("user_id", "p2")))
    assert a != b and not Identity.objects.filter(type="phone").exists()


def test_limit_per_profile_stops_attaching_more_emails():
    pid = identities_resolve(identities=[("user_id", "many")]).pk
    for i in range(7):
        apply(obs(("user_id", "many"), ("email", f"e{i}@example.org")))
    assert Identity.objects.filter(profile_id=pid, type="email").count() == 5


def test_a_new_user_id_on_a_device_of_another_user_gets_its_own_profile():
    [alice] = apply(obs(("user_id", "alice"), ("anonymous_id", "family-ipad")))
    [bob] = apply(obs(("user_id", "bob"), ("anonymous_id", "family-ipad"), event_type="track", event_name="Played"))
    assert alice != bob
    assert profile_of("anonymous_id", "family-ipad").pk == alice
    assert Event.objects.get(name="Played").profile_id == bob
    assert not Merge.objects.exists()
    refusal = MergeRefusal.objects.get()
    assert refusal.rule == "identity_rule:user_id:unique_per_profile"
    # Once per pair and rule, not per event.
    apply(obs(("user_id", "bob"), ("anonymous_id", "family-ipad")))
    assert MergeRefusal.objects.count() == 1


def test_merge_protection_refuses_two_user_ids_and_the_event_goes_to_the_higher_priority_profile():
    [one] = apply(obs(("user_id", "u-1"), ("email", "shared@example.org")))
    [two] = apply(obs(("user_id", "u-2"), ("phone", "+4917012345678")))
    [got] = apply(obs(("phone", "+4917012345678"), ("email", "shared@example.org"),
                      event_type="track", event_name="Ordered"))
    assert got == one  # email outranks phone
    assert Event.objects.get(name="Ordered").profile_id == one
    assert Profile.objects.get(pk=two).merged_into is None
    assert MergeRefusal.objects.filter(rule="identity_rule:user_id:unique_per_profile").exists()


def test_identities_pointing_to_two_profiles_merge_and_are_journaled():
    [a] = apply(obs(("email", "jo@example.org"), traits={"first_name": "Jo"}))
    [b] = apply(obs(("phone", "+4915112345678"), event_type="track", event_name="Called"))
    [c] = apply(obs(("email", "jo@example.org"), ("phone", "+4915112345678"), message_id="m-9"))
    assert c == a
    merge = Merge.objects.get()
    assert merge.winner_id == a and merge.loser_id == b and merge.reason == "identity"
    assert merge.rule == "identity:phone" and merge.evidence["message_id"] == "m-9"
    assert Identity.objects.get(type="phone").profile_id == a
    assert Event.objects.get(name="Called").profile_id == a
    assert Profile.objects.get(pk=b).merged_into_id == a


def test_a_never_merge_pair_is_respected_by_identity_merges():
    [a] = apply(obs(("email", "x@example.org")))
    [b] = apply(obs(("phone", "+4916012345678")))
    never_merge_add(profile_a=Profile.objects.get(pk=a), profile_b=Profile.objects.get(pk=b))
    [got] = apply(obs(("email", "x@example.org"), ("phone", "+4916012345678"), event_type="track", event_name="E"))
    assert got == a and not Merge.objects.exists()
    assert profile_of("phone", "+4916012345678").pk == b
    assert MergeRefusal.objects.get().rule == "never_merge"


def test_external_ids_become_record_identities(web):
    process(web, [{"type": "identify", "userId": "u-7",
                   "context": {"externalIds": [{"id": "C-1001", "type": "crm_contact", "collection": "users"}]}}])
    assert profile_of("record", "crm_contact:C-1001") == profile_of("user_id", "u-7")


def test_an_invalid_identifier_is_kept_raw_flagged_and_never_merges(web):
    process(web, [{"type": "identify", "userId": "u-a", "traits": {"email": "not-an-email"},
                   "context": {"cdp": {"invalid": ["traits.email"]}}},
                  {"type": "identify", "userId": "u-b", "traits": {"email": "not-an-email"},
                   "context": {"cdp": {"invalid": ["traits.email"]}}}])
    flagged = Identity.objects.get(type="email")
    assert flagged.flagged and flagged.raw_value == "not-an-email"
    assert flagged.profile == profile_of("user_id", "u-a") != profile_of("user_id", "u-b")
    assert not Merge.objects.exists()
    # Given directly to the service too.
    [pid] = apply(obs(("user_id", "u-c"), flagged_identities=[("phone", "12ab")]))
    assert Identity.objects.get(type="phone", value="12ab", flagged=True).profile_id == pid


def test_known_identity_resolves_to_the_live_profile_after_a_merge():
    [a] = apply(obs(("email", "m@example.org")))
    [b] = apply(obs(("anonymous_id", "dev-m")))
    apply(obs(("email", "m@example.org"), ("anonymous_id", "dev-m")))
    [again] = apply(obs(("anonymous_id", "dev-m")))
    assert again == a and Profile.objects.get(pk=b).merged_into_id == a


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the keyed-lookup plan settings are PostgreSQL's")
def test_the_identity_lookup_leaves_the_planner_settings_as_they_were():
    """The lookup of a batch's known identities turns hash/merge joins and bitmap scans off for itself only: later
    statements of the same transaction are planned as before."""
    names = ("enable_bitmapscan", "enable_hashjoin", "enable_mergejoin")

    def settings():
        with connection.cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in names))
            return cursor.fetchone()

    before = settings()
    with transaction.atomic():
        observations_apply(observations=[Observation(identities=[("email", "planner@example.org")], traits={},
                                                     timestamp=T0)])
        observations_apply(observations=[Observation(identities=[("email", "planner@example.org")], traits={},
                                                     timestamp=T0)])
        assert settings() == before == ("on", "on", "on")
    assert Identity.objects.filter(type="email", value="planner@example.org").count() == 1
