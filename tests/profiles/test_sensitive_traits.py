"""Sensitive traits: classification (TraitPolicy), encryption at rest in every store profiles keeps trait values
in, survivorship on encrypted values, masking by role, the data-subject export, reclassification, the segment
rule refusal and the personalization filter."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.urls import reverse

from cdp.core import crypto, registry
from cdp.core.masking import UNREADABLE, unseal
from cdp.core.models import AuditEntry
from ingestion.services import inbox_store, source_create
from ingestion.services.pipeline import inbox_process_pending
from profiles.models import Event, Identity, Merge, Profile, TraitPolicy, TraitValue
from profiles.selectors import trait_is_sensitive, traits_without_sensitive
from profiles.services import (
    ClassificationInvalid,
    Observation,
    merge_undo,
    observations_apply,
    personal_data_export,
    profile_traits_update,
    profiles_merge,
    trait_classify,
    trait_values_reseal,
)
from profiles.services.identity_rules import rules_cache_clear
from segments.rules import RuleError, profiles_matching, rules_validate

pytestmark = pytest.mark.django_db
T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)
SECRET = "diabetes type 2"
MD5 = hashlib.md5(json.dumps(SECRET).encode(), usedforsecurity=False).hexdigest()


@pytest.fixture(autouse=True)
def key(settings):
    settings.CDP_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    crypto.keys_changed()
    yield settings
    crypto.keys_changed()


@pytest.fixture
def classify(django_capture_on_commit_callbacks):
    """Classify a trait as an administrator does; the re-encryption queued on commit runs (eager tasks)."""

    def run(trait, classification):
        with django_capture_on_commit_callbacks(execute=True):
            return trait_classify(trait=trait, classification=classification)

    return run


def set_policy(trait, **fields):
    """Change a policy behind the services' back (as a stale worker would see it), and forget the cached policies."""
    TraitPolicy.objects.filter(trait=trait).update(**fields)
    rules_cache_clear()


def see(traits, *, at=T0, source="crm", who=("user_id", "u-1"), event="identify", context=None):
    [pk] = observations_apply(observations=[Observation(
        identities=[who], timestamp=at, source=source, traits=traits, event_type=event,
        properties=dict(traits) if event == "identify" else {}, context=context or {})])
    return Profile.objects.get(pk=pk)


def stored_text() -> str:
    """Every row of every profiles table, as the database holds it (raw SQL, no ORM decoding)."""
    tables = [t for t in connection.introspection.table_names() if t.startswith("profiles_")]
    parts = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            parts.append(repr(cursor.fetchall()))
    return "\n".join(parts)


def test_an_identify_leaves_no_plaintext_of_a_sensitive_trait_in_any_profiles_table(classify):
    classify("diagnosis", "sensitive")
    source, _ = source_create(name="Clinic app", kind="http", channel="app")
    inbox_store(source=source, messages=[
        {"type": "identify", "userId": "p-1", "traits": {"diagnosis": SECRET, "city": "Berlin"}},
        {"type": "track", "userId": "p-1", "event": "Appointment Booked",
         "context": {"traits": {"diagnosis": SECRET}}}])
    inbox_process_pending(source_id=source.pk)
    profile = Identity.objects.get(value="p-1").profile
    assert set(profile.traits) == {"diagnosis", "city"} and profile.traits["city"] == "Berlin"

    at_rest = stored_text()
    assert SECRET not in at_rest and "diabetes" not in at_rest
    assert MD5 not in at_rest  # an md5 of the value could be tested against guesses
    assert crypto.PREFIX in at_rest
    with connection.cursor() as cursor:
        cursor.execute("SELECT CAST(traits AS TEXT) FROM profiles_profile WHERE id = %s", [profile.pk])
        assert "Berlin" in cursor.fetchone()[0]  # normal traits stay readable (segments compare them)
        cursor.execute("SELECT value_hash FROM profiles_traitvalue WHERE name = 'diagnosis'")
        assert [len(h) for (h,) in cursor.fetchall()] == [32]
    # Both the event's copy of the identify traits and the track call's context.traits are sealed.
    identify = Event.objects.get(profile=profile, type="identify")
    track = Event.objects.get(profile=profile, type="track")
    assert crypto.is_encrypted(identify.properties["diagnosis"]) and identify.properties["city"] == "Berlin"
    assert crypto.is_encrypted(track.context["traits"]["diagnosis"])


def test_survivorship_works_on_encrypted_values(classify):
    classify("diagnosis", "sensitive")
    set_policy("diagnosis", strategy="most_frequent")
    see({"diagnosis": SECRET}, at=T0)
    see({"diagnosis": "asthma"}, at=T0 + timedelta(days=1))
    see({"diagnosis": SECRET}, at=T0 + timedelta(days=2), source="web")
    profile = see({"diagnosis": "asthma"}, at=T0 + timedelta(days=3))
    rows = {(r.source, unseal(r.value)): r.seen_count for r in TraitValue.objects.filter(name="diagnosis")}
    assert rows == {("crm", SECRET): 1, ("web", SECRET): 1, ("crm", "asthma"): 2}
    assert unseal(profile.traits["diagnosis"]) == "asthma"  # 2 against 2: the most recent
    profile = see({"diagnosis": SECRET}, at=T0 + timedelta(days=4), source="web")
    assert unseal(profile.traits["diagnosis"]) == SECRET
    assert profile.trait_sources["diagnosis"]["why"] == "seen 3 times"

    # First non-empty and most recent (with an explicit null ending it), through the manual path too.
    set_policy("diagnosis", strategy="first_non_empty")
    profile = profile_traits_update(profile=profile, traits={"diagnosis": ""}, at=T0 + timedelta(days=5))
    assert unseal(profile.traits["diagnosis"]) == SECRET
    set_policy("diagnosis", strategy="most_recent")
    profile = see({"diagnosis": None}, at=T0 + timedelta(days=6))
    assert "diagnosis" not in profile.traits
    assert SECRET not in stored_text()


def test_a_policy_that_only_classifies_keeps_the_default_survivorship(classify):
    set_policy("*", strategy="first_non_empty")
    policy = classify("religion", "sensitive")
    assert policy.strategy == ""
    see({"religion": "catholic"}, at=T0)
    profile = see({"religion": "protestant"}, at=T0 + timedelta(days=1))
    assert unseal(profile.traits["religion"]) == "catholic"
    assert profile.trait_sources["religion"]["strategy"] == "first_non_empty"


@pytest.fixture
def patient(classify):
    classify("diagnosis", "sensitive")
    see({"diagnosis": "asthma", "email": "pat@example.org"}, at=T0, who=("email", "pat@example.org"))
    return see({"diagnosis": SECRET}, at=T0 + timedelta(days=1), who=("email", "pat@example.org"))


def test_the_api_shows_the_value_to_roles_with_view_pii_and_hides_it_from_the_others(patient, api_as):
    sales, marketing = api_as("Sales"), api_as("Marketing")
    shown = sales.get(f"/api/v1/profiles/{patient.pk}/").json()
    assert shown["traits"]["diagnosis"] == SECRET
    hidden = marketing.get(f"/api/v1/profiles/{patient.pk}/").json()
    assert hidden["traits"]["diagnosis"] == "•••"
    assert "diabetes" not in json.dumps(hidden) and crypto.PREFIX not in json.dumps(hidden)
    listed = marketing.get("/api/v1/profiles/").json()["results"][0]["traits"]
    assert listed["diagnosis"] == "•••"
    assert AuditEntry.objects.filter(actor=sales.user, profile_id=patient.pk, action="view").exists()
    # The timeline: the identify event's copy of the traits.
    events = sales.get(f"/api/v1/profiles/{patient.pk}/timeline/").json()["results"]
    assert {e["properties"].get("diagnosis") for e in events} == {SECRET, "asthma"}
    events = marketing.get(f"/api/v1/profiles/{patient.pk}/timeline/").json()
    assert "diabetes" not in json.dumps(events) and "asthma" not in json.dumps(events)


def test_the_profile_page_and_lineage_show_the_value_to_roles_with_view_pii_only(patient, client, make_user):
    sales = make_user("Sales")
    client.force_login(sales)
    page = client.get(reverse("profiles:detail", args=[patient.pk])).content.decode()
    assert SECRET in page and "asthma" in page  # the winner and the other value of its lineage
    assert "Sensitive" in page and crypto.PREFIX not in page
    assert AuditEntry.objects.filter(actor=sales, profile_id=patient.pk, summary="Viewed the profile page").exists()
    client.force_login(make_user("Marketing"))
    page = client.get(reverse("profiles:detail", args=[patient.pk])).content.decode()
    assert "diabetes" not in page and "asthma" not in page and crypto.PREFIX not in page
    assert "Sensitive" in page


def test_the_data_subject_export_decrypts(patient, key):
    exported = registry.export_all(patient)["profiles"]
    text = json.dumps(exported)
    assert crypto.PREFIX not in text
    assert exported["profile"]["traits"]["diagnosis"] == SECRET
    assert {v["value"] for v in exported["trait_values"] if v["name"] == "diagnosis"} == {SECRET, "asthma"}
    assert {e["properties"].get("diagnosis") for e in exported["events"]} == {SECRET, "asthma"}


def test_text_that_only_looks_encrypted_is_exported_as_sent(patient):
    fake = crypto.PREFIX + "gAAAAABnot-a-token"
    profile = see({"nickname": fake}, at=T0 + timedelta(days=2), who=("email", "pat@example.org"))
    exported = personal_data_export(profile)
    assert exported["profile"]["traits"]["nickname"] == fake
    assert exported["profile"]["traits"]["diagnosis"] == SECRET


def test_a_missing_key_is_a_clear_error_in_the_export_and_a_marker_on_the_page(patient, key, client, make_user):
    key.CDP_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    crypto.keys_changed()
    with pytest.raises(crypto.DecryptionError, match="CDP_ENCRYPTION_KEYS"):
        personal_data_export(patient)
    client.force_login(make_user("Sales"))
    response = client.get(reverse("profiles:detail", args=[patient.pk]))
    assert response.status_code == 200 and UNREADABLE in response.content.decode()


def lineage(name):
    return {(r.profile_id, r.source, unseal(r.value)): r.seen_count for r in TraitValue.objects.filter(name=name)}


def test_reclassification_encrypts_and_decrypts_what_is_stored(classify):
    see({"union": "ver.di", "city": "Köln"}, at=T0)
    see({"union": "ver.di"}, at=T0 + timedelta(hours=1), event="track", context={"traits": {"union": "ver.di"}})
    winner = see({"union": "ver.di"}, at=T0 + timedelta(days=1), source="web")
    other = ("email", "b@example.org")
    see({"union": "ver.di"}, at=T0 + timedelta(days=2), who=other)
    loser = see({"union": "IG Metall"}, at=T0 + timedelta(days=3), who=other)
    profiles_merge(winner=winner, loser=loser, reason="manual")  # (crm, ver.di) is combined, (crm, IG Metall) moves
    assert "ver.di" in stored_text()

    classify("union", "sensitive")
    at_rest = stored_text()
    assert "ver.di" not in at_rest and "IG Metall" not in at_rest
    assert Profile.objects.get(pk=winner.pk).traits["city"] == "Köln"  # other traits are left alone
    assert all(crypto.is_encrypted(value) for value in TraitValue.objects.filter(name="union")
               .values_list("value", flat=True))
    assert lineage("union") == {(winner.pk, "crm", "ver.di"): 3, (winner.pk, "web", "ver.di"): 1,
                                (winner.pk, "crm", "IG Metall"): 1}
    track = Event.objects.get(type="track")
    assert unseal(track.context["traits"]["union"]) == "ver.di"
    assert trait_values_reseal(name="union") == {"profiles": 0, "trait_values": 0, "events": 0, "merges": 0}
    # The keyed hashes are those the write path computes: the same value again is counted on its row.
    see({"union": "ver.di"}, at=T0 + timedelta(days=4))
    assert lineage("union")[(winner.pk, "crm", "ver.di")] == 4

    # The merge journal's snapshots were sealed too; an undo gives the loser its values back, still sealed.
    winner, loser = merge_undo(merge=Merge.objects.get())
    assert unseal(loser.traits["union"]) == "IG Metall"
    assert lineage("union") == {(winner.pk, "crm", "ver.di"): 3, (winner.pk, "web", "ver.di"): 1,
                                (loser.pk, "crm", "ver.di"): 1, (loser.pk, "crm", "IG Metall"): 1}
    assert "IG Metall" not in stored_text()

    classify("union", "normal")
    assert Profile.objects.get(pk=winner.pk).traits["union"] == "ver.di"
    assert Profile.objects.get(pk=loser.pk).traits["union"] == "IG Metall"
    assert crypto.PREFIX not in stored_text()
    assert set(TraitValue.objects.filter(name="union", value="ver.di").values_list("value_hash", flat=True)) == {
        hashlib.md5(b'"ver.di"', usedforsecurity=False).hexdigest()}
    assert Event.objects.get(type="track").context["traits"] == {"union": "ver.di"}
    see({"union": "ver.di"}, at=T0 + timedelta(days=5))
    assert lineage("union")[(winner.pk, "crm", "ver.di")] == 4


def test_values_written_under_a_stale_classification_are_combined_when_resealed(classify):
    see({"diagnosis": SECRET}, at=T0)  # written while the trait was still normal (a worker's cached policies)
    classify("diagnosis", "sensitive")
    see({"diagnosis": SECRET}, at=T0 + timedelta(days=1))
    set_policy("diagnosis", classification="")
    see({"diagnosis": SECRET}, at=T0 + timedelta(days=2))  # plain again, with an md5 beside the keyed hash
    set_policy("diagnosis", classification="sensitive")
    assert TraitValue.objects.filter(name="diagnosis").count() == 2
    trait_values_reseal(name="diagnosis")
    [row] = TraitValue.objects.filter(name="diagnosis")
    assert row.seen_count == 3 and row.first_observed_at == T0 and row.observed_at == T0 + timedelta(days=2)
    assert SECRET not in stored_text()


def test_identifiers_cannot_be_sensitive_and_the_default_policy_cannot_classify(classify):
    for name in ("email", "phone", "user_id", "first_name", "company", "postcode"):
        with pytest.raises(ClassificationInvalid, match="identifies a person") as caught:
            classify(name, "sensitive")
        assert caught.value.field == "classification"
    with pytest.raises(ClassificationInvalid, match="personal data by its name"):
        classify("email", "normal")
    with pytest.raises(ClassificationInvalid, match="default policy"):
        classify("*", "sensitive")
    assert not TraitPolicy.objects.exclude(trait="*").exists()
    assert classify("email", "pii").classification == "pii"


def test_the_admin_classifies_and_refuses_an_identifier_at_the_field(client, django_user_model,
                                                                      django_capture_on_commit_callbacks):
    see({"health_note": "pregnant"}, at=T0)
    admin_user = django_user_model.objects.create_superuser("root", "root@example.org", "pw-for-tests-only")
    client.force_login(admin_user)
    url = reverse("admin:profiles_traitpolicy_add")
    response = client.post(url, {"trait": "email", "strategy": "", "source_priority": "[]",
                                 "classification": "sensitive"})
    assert response.status_code == 200
    assert "cannot be sensitive" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"trait": "health_note", "strategy": "", "source_priority": "[]",
                                     "classification": "sensitive"})
    assert response.status_code == 302
    assert "pregnant" not in stored_text()
    assert TraitPolicy.objects.get(trait="health_note").classification == "sensitive"


def test_segments_may_only_test_whether_a_sensitive_trait_is_set(patient, classify):
    see({"diagnosis": "", "city": "Bonn"}, who=("user_id", "other"))
    tree = {"type": "trait", "trait": "diagnosis", "op": "equals", "value": SECRET}
    with pytest.raises(RuleError) as caught:
        rules_validate(tree)
    assert list(caught.value.errors) == ["op"]
    assert "'diagnosis' is a sensitive trait" in caught.value.errors["op"][0]
    for op in ("contains", "in", "is_true", "gt"):
        with pytest.raises(RuleError):
            rules_validate({**tree, "op": op, "value": ["x"] if op == "in" else "x"})
    with pytest.raises(RuleError):
        rules_validate({"type": "trait", "trait": "diagnosis.code", "op": "equals", "value": "E11"})
    present = {"type": "trait", "trait": "diagnosis", "op": "exists"}
    assert rules_validate(present) == present
    assert patient.pk in set(profiles_matching(present).values_list("pk", flat=True))
    assert trait_is_sensitive("diagnosis") and not trait_is_sensitive("city")


def test_the_segment_api_answers_400_naming_the_condition(patient, api_as, django_capture_on_commit_callbacks):
    marketing = api_as("Marketing")
    with django_capture_on_commit_callbacks(execute=True):
        response = marketing.post("/api/v1/segments/", {"name": "Diabetics", "rules": {
            "type": "group", "op": "and", "children": [
                {"type": "trait", "trait": "diagnosis", "op": "contains", "value": "diabetes"}]}}, format="json")
    assert response.status_code == 400
    assert "sensitive" in response.json()["error"]["fields"]["rules.children.0.op"][0]


def test_sensitive_traits_are_never_shared(patient):
    traits = Profile.objects.get(pk=patient.pk).traits
    assert set(traits_without_sensitive(traits)) == {"email"}
    # A sealed value left by a reclassification in progress is not shared either.
    assert traits_without_sensitive({"x": crypto.encrypt('"y"'), "city": "Bonn"}) == {"city": "Bonn"}


def test_a_computed_value_taken_from_a_sensitive_trait_is_revealed_or_hidden_by_role(patient, make_user):
    from profiles.selectors import profile_computed
    from profiles.services import computed_trait_create, computed_values_refresh

    computed_trait_create(key="last_diagnosis", name="Last diagnosis", aggregation="last", field="diagnosis")
    computed_values_refresh(profile_ids=[patient.pk])
    assert SECRET not in stored_text()  # computed from the events' encrypted copies
    assert profile_computed(profile=patient, user=make_user("Sales"))["last_diagnosis"] == SECRET
    assert profile_computed(profile=patient, user=make_user("Marketing"))["last_diagnosis"] == "•••"
