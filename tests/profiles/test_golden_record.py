"""The golden record: lineage per trait value (source, time, count) and survivorship per trait."""

from datetime import UTC, datetime, timedelta

import pytest

from ingestion.services import inbox_store, source_create
from ingestion.services.pipeline import inbox_process_pending
from profiles.models import Identity, Profile, TraitPolicy, TraitValue
from profiles.services import (
    Observation,
    golden_record_recompute,
    observations_apply,
    profile_traits_update,
    trait_policies_install,
)

pytestmark = pytest.mark.django_db
T0 = datetime(2025, 1, 10, 12, tzinfo=UTC)


def see(value_by_trait, *, source, at, who=("user_id", "u-1")):
    [pid] = observations_apply(observations=[Observation(identities=[who], timestamp=at, source=source,
                                                         traits=value_by_trait)])
    return Profile.objects.get(pk=pid)


def test_every_value_is_kept_with_source_time_and_count():
    see({"city": "Berlin"}, source="web", at=T0)
    see({"city": "Berlin"}, source="web", at=T0 + timedelta(days=1))
    profile = see({"city": "Hamburg"}, source="crm", at=T0 + timedelta(days=2))
    rows = {(r.source, r.value): r for r in TraitValue.objects.filter(profile=profile, name="city")}
    assert rows[("web", "Berlin")].seen_count == 2
    assert rows[("web", "Berlin")].first_observed_at == T0
    assert rows[("web", "Berlin")].observed_at == T0 + timedelta(days=1)
    assert rows[("crm", "Hamburg")].seen_count == 1
    assert profile.traits["city"] == "Hamburg"
    assert profile.trait_sources["city"]["source"] == "crm"
    assert profile.trait_sources["city"]["strategy"] == "most_recent"


def test_most_recent_ignores_a_late_arriving_older_value_and_null_ends_the_trait():
    see({"plan": "pro"}, source="web", at=T0 + timedelta(days=1))
    profile = see({"plan": "free"}, source="web", at=T0)
    assert profile.traits["plan"] == "pro"
    profile = see({"plan": None}, source="web", at=T0 + timedelta(days=3))
    assert "plan" not in profile.traits and "plan" not in profile.trait_sources


def test_source_priority():
    TraitPolicy.objects.create(trait="last_name", strategy="source_priority", source_priority=["crm", "shop"])
    see({"last_name": "Mueller"}, source="crm", at=T0)
    profile = see({"last_name": "Müller-typo"}, source="web", at=T0 + timedelta(days=1))
    assert profile.traits["last_name"] == "Mueller"
    profile = see({"last_name": "Müller"}, source="shop", at=T0 + timedelta(days=2))
    assert profile.traits["last_name"] == "Mueller"
    assert profile.trait_sources["last_name"]["why"].startswith("from crm, priority 1")
    profile = see({"last_name": "Müller"}, source="crm", at=T0 + timedelta(days=3))
    assert profile.traits["last_name"] == "Müller"


def test_most_frequent_and_first_non_empty():
    TraitPolicy.objects.create(trait="color", strategy="most_frequent")
    TraitPolicy.objects.create(trait="signup_channel", strategy="first_non_empty")
    for day, color in enumerate(["red", "blue", "red", "green"]):
        see({"color": color, "signup_channel": "" if day == 0 else f"ch{day}"}, source="web",
            at=T0 + timedelta(days=day))
    profile = Profile.objects.get(identities__value="u-1")
    assert profile.traits["color"] == "red"
    assert profile.trait_sources["color"]["why"] == "seen 2 times"
    assert profile.traits["signup_channel"] == "ch1"


def test_within_one_batch_the_policy_sees_every_value():
    TraitPolicy.objects.create(trait="color", strategy="most_frequent")
    observations_apply(observations=[
        Observation(identities=[("user_id", "b")], timestamp=T0 + timedelta(minutes=i), source="web",
                    traits={"color": c}) for i, c in enumerate(["green", "green", "blue"])])
    assert Profile.objects.get(identities__value="b").traits["color"] == "green"


def test_recompute_after_a_policy_change():
    see({"tier": "gold"}, source="crm", at=T0)
    profile = see({"tier": "silver"}, source="web", at=T0 + timedelta(days=1))
    assert profile.traits["tier"] == "silver"
    TraitPolicy.objects.create(trait="tier", strategy="source_priority", source_priority=["crm"])
    profile = golden_record_recompute(profile=profile)
    assert profile.traits["tier"] == "gold"


def test_profile_traits_update_records_lineage():
    profile = see({"city": "Bonn"}, source="web", at=T0)
    profile = profile_traits_update(profile=profile, traits={"city": "Köln"}, source="call_center",
                                    at=T0 + timedelta(hours=1))
    assert profile.traits["city"] == "Köln"
    assert profile.trait_sources["city"]["source"] == "call_center"
    assert TraitValue.objects.filter(profile=profile, name="city").count() == 2


def test_the_pipeline_keeps_lineage_per_source():
    web, _ = source_create(name="Web", kind="http", channel="web")
    shop, _ = source_create(name="Shop", kind="http", channel="shop")
    for source, name in ((web, "Ann"), (shop, "Anna")):
        inbox_store(source=source, messages=[{"type": "identify", "userId": "u-p", "traits": {"first_name": name}}])
        inbox_process_pending(source_id=source.pk)
    profile = Identity.objects.get(value="u-p").profile
    assert set(TraitValue.objects.filter(profile=profile).values_list("source", "value")) == {
        (web.slug, "Ann"), (shop.slug, "Anna")}
    assert profile.traits["first_name"] == "Anna"


def test_stock_policy_is_installed():
    assert TraitPolicy.objects.get(trait="*").strategy == "most_recent"
    assert trait_policies_install() == 0
