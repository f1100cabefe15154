"""PII masking in the API and the UI, and the append-only audit log of who viewed personal data."""

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from cdp.core.models import AuditEntry
from profiles.models import Profile
from profiles.services import Observation, observations_apply

pytestmark = pytest.mark.django_db

EMAIL = "anna.schmidt@example.de"
PHONE = "+4915112345678"
SECRETS = ["Schmidt", "schmidt", "anna.schmidt", "15112345678", "Anna "]


@pytest.fixture
def person() -> Profile:
    [profile_id] = observations_apply(observations=[Observation(
        identities=[("email", EMAIL), ("phone", PHONE)],
        timestamp=timezone.now(),
        source="crm",
        channel="crm",
        traits={"first_name": "Anna", "last_name": "Schmidt", "email": EMAIL, "phone": PHONE, "city": "Berlin"},
    )])
    return Profile.objects.get(pk=profile_id)


def assert_no_pii(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked"


# --- masking in the API ----------------------------------------------------------------------------------------


def test_marketing_sees_masked_profiles_in_the_api(api_as, person):
    response = api_as("Marketing").get("/api/v1/profiles/")
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["id"] == person.pk
    assert row["traits"]["city"] == "Berlin"  # not personal: shown as is
    assert row["traits"]["email"] != EMAIL and "•" in row["traits"]["email"]
    assert row["traits"]["phone"] != PHONE and "•" in row["traits"]["phone"]
    assert row["traits"]["last_name"].startswith("S") and "•" in row["traits"]["last_name"]
    assert "•" in row["display_name"]
    assert_no_pii(response.content.decode())


def test_marketing_sees_masked_identities_in_the_api(api_as, person):
    client = api_as("Marketing")
    response = client.get("/api/v1/identities/")
    assert response.status_code == 200
    values = {row["type"]: row["value"] for row in response.json()["results"]}
    assert set(values) == {"email", "phone"}
    assert all("•" in value for value in values.values())
    assert_no_pii(response.content.decode())
    detail = client.get(f"/api/v1/profiles/{person.pk}/")
    assert detail.status_code == 200
    assert_no_pii(detail.content.decode())


def test_sales_sees_personal_data_unmasked_in_the_api(api_as, person):
    client = api_as("Sales")
    [row] = client.get("/api/v1/profiles/").json()["results"]
    assert row["traits"]["email"] == EMAIL
    assert row["traits"]["phone"] == PHONE
    assert row["display_name"] == "Anna Schmidt"
    values = {row["type"]: row["value"] for row in client.get("/api/v1/identities/").json()["results"]}
    assert values == {"email": EMAIL, "phone": PHONE}


# --- masking in the UI -----------------------------------------------------------------------------------------


def test_marketing_sees_masked_profiles_in_the_ui(client, make_user, person):
    client.force_login(make_user("Marketing"))
    for url in (reverse("profiles:list"), reverse("profiles:detail", args=[person.pk])):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_pii(response.content.decode())


def test_sales_sees_profiles_unmasked_in_the_ui(client, make_user, person):
    client.force_login(make_user("Sales"))
    page = client.get(reverse("profiles:detail", args=[person.pk])).content.decode()
    assert EMAIL in page
    assert "Schmidt" in page


# --- audit log -------------------------------------------------------------------------------------------------


def test_viewing_a_profile_in_the_api_leaves_an_audit_entry(api_as, person):
    client = api_as("Sales")
    assert client.get(f"/api/v1/profiles/{person.pk}/").status_code == 200
    entry = AuditEntry.objects.get(profile_id=person.pk, action=AuditEntry.Action.VIEW)
    assert entry.actor == client.user
    assert entry.actor_name == client.user.username
    assert entry.object_type == "profiles.profile"
    assert entry.object_id == str(person.pk)
    assert "email" in entry.fields
    # Names of fields, never their values.
    assert_no_pii(f"{entry.summary} {entry.fields} {entry.path}")


def test_viewing_a_profile_in_the_ui_leaves_an_audit_entry(client, make_user, person):
    user = make_user("Service")
    client.force_login(user)
    assert client.get(reverse("profiles:detail", args=[person.pk])).status_code == 200
    entry = AuditEntry.objects.get(profile_id=person.pk, action=AuditEntry.Action.VIEW)
    assert entry.actor == user
    assert entry.path == reverse("profiles:detail", args=[person.pk])
    assert_no_pii(f"{entry.summary} {entry.fields}")


def test_listing_profiles_is_not_a_view_of_each_profile(api_as, person):
    api_as("Sales").get("/api/v1/profiles/")
    assert not AuditEntry.objects.filter(profile_id=person.pk).exists()


def test_audit_entries_cannot_be_changed_or_deleted(api_as, person):
    api_as("Sales").get(f"/api/v1/profiles/{person.pk}/")
    entry = AuditEntry.objects.get(profile_id=person.pk)
    entry.summary = "rewritten"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(pk=entry.pk).update(summary="rewritten")
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(PermissionError), transaction.atomic():
        AuditEntry.objects.bulk_update([entry], ["summary"])
    assert AuditEntry.objects.get(pk=entry.pk).summary != "rewritten"


def test_the_admin_shows_the_audit_log_read_only(client, api_as, person):
    api_as("Sales").get(f"/api/v1/profiles/{person.pk}/")
    entry = AuditEntry.objects.get(profile_id=person.pk)
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    client.force_login(admin)
    assert client.get(reverse("admin:core_auditentry_changelist")).status_code == 200
    assert client.get(reverse("admin:core_auditentry_add")).status_code == 403
    assert client.post(reverse("admin:core_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_the_audit_api_is_for_privacy_and_admin_only(api_as, person):
    assert api_as("Marketing").get("/api/v1/audit-entries/").status_code == 403
    assert api_as("Sales").get("/api/v1/audit-entries/").status_code == 403
    assert api_as("Privacy").get("/api/v1/audit-entries/").status_code == 200
    assert api_as("Admin").get("/api/v1/audit-entries/").status_code == 200


def test_the_audit_api_is_filterable(api_as, person, make_user):
    sales = api_as("Sales")
    sales.get(f"/api/v1/profiles/{person.pk}/")
    other = observations_apply(observations=[Observation(identities=[("email", "b@example.org")],
                                                         timestamp=timezone.now(), traits={"email": "b@example.org"})])
    sales.get(f"/api/v1/profiles/{other[0]}/")
    privacy = api_as("Privacy")
    everything = privacy.get("/api/v1/audit-entries/").json()
    assert everything["count"] == 2

    by_profile = privacy.get("/api/v1/audit-entries/", {"profile_id": person.pk}).json()
    assert [row["profile_id"] for row in by_profile["results"]] == [person.pk]
    by_actor = privacy.get("/api/v1/audit-entries/", {"actor": "sales"}).json()
    assert by_actor["count"] == 2
    assert privacy.get("/api/v1/audit-entries/", {"actor": "nobody-like-this"}).json()["count"] == 0
    assert privacy.get("/api/v1/audit-entries/", {"action": "export"}).json()["count"] == 0
    assert privacy.get("/api/v1/audit-entries/", {"action": "view"}).json()["count"] == 2
    future = (timezone.now() + timezone.timedelta(days=1)).isoformat()
    assert privacy.get("/api/v1/audit-entries/", {"since": future}).json()["count"] == 0
    bad = privacy.get("/api/v1/audit-entries/", {"action": "steal"})
    assert bad.status_code == 400
    assert "action" in bad.json()["error"]["fields"]


def test_the_audit_log_page_is_for_privacy_and_admin_only(client, make_user, api_as, person):
    api_as("Sales").get(f"/api/v1/profiles/{person.pk}/")
    client.force_login(make_user("Marketing"))
    assert client.get(reverse("audit-log")).status_code == 403
    client.force_login(make_user("Privacy"))
    page = client.get(reverse("audit-log"), {"profile_id": person.pk})
    assert page.status_code == 200
    assert "sales-user" in page.content.decode()


def test_an_api_client_without_credentials_sees_nothing(person):
    response = APIClient().get("/api/v1/profiles/")
    assert response.status_code == 401
    assert_no_pii(response.content.decode())


def test_marketing_sees_event_properties_and_context_masked_in_the_timeline(api_as, make_user):
    [profile_id] = observations_apply(observations=[Observation(
        identities=[("email", EMAIL)], timestamp=timezone.now(), source="web", channel="web",
        event_type="track", event_name="Order Completed",
        properties={"total": 99.5, "email": EMAIL, "shipping": {"phone": PHONE, "city": "Berlin"},
                    "note": f"call me on {PHONE} or write to {EMAIL}"},
        context={"traits": {"email": EMAIL, "last_name": "Schmidt"}, "ip": "203.0.113.9"},
    )])
    masked = api_as("Marketing").get(f"/api/v1/profiles/{profile_id}/timeline/")
    assert masked.status_code == 200
    [event] = [e for e in masked.json()["results"] if e["name"] == "Order Completed"]
    assert event["properties"]["total"] == 99.5
    assert event["properties"]["shipping"]["city"] == "Berlin"
    assert_no_pii(masked.content.decode())

    plain = api_as("Sales").get(f"/api/v1/profiles/{profile_id}/timeline/")
    [event] = [e for e in plain.json()["results"] if e["name"] == "Order Completed"]
    assert event["properties"]["email"] == EMAIL
    assert event["context"]["traits"]["last_name"] == "Schmidt"
