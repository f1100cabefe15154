"""The profiles API: list with search, retrieve with lineage/identities/segments/consent (masked per role),
timeline, notes, lookup, identities, merges with undo; the one error format; audit entries."""

import pytest
from django.utils import timezone

from cdp.core.models import AuditEntry
from consent.models import ConsentRecord, Purpose
from profiles.models import Merge, Profile
from profiles.services import golden_record_recompute, profiles_merge
from profiles.services.golden import trait_values_record
from segments.models import Membership, Segment
from tests.profiles.people import person

pytestmark = pytest.mark.django_db


@pytest.fixture
def anna():
    return person("Anna.Mueller@example.de", first_name="Anna", last_name="Müller", phone="+4930123456", events=4,
                  extra_identities=[("user_id", "U-1")])


def test_retrieve_has_traits_lineage_identities_segments_and_consent(api_as, anna):
    segment = Segment.objects.create(name="Loyal", slug="loyal")
    Membership.objects.create(segment=segment, profile=anna, entered_at=timezone.now())
    purpose = Purpose.objects.get_or_create(key="email_marketing", defaults={"name": "Email marketing"})[0]
    ConsentRecord.objects.create(profile=anna, purpose=purpose, status="granted", recorded_at=timezone.now())
    trait_values_record([(anna.pk, "plan", "gold", "shop", timezone.now())])
    golden_record_recompute(profile=anna, names=["plan"])
    client = api_as("Service")
    data = client.get(f"/api/v1/profiles/{anna.pk}/").json()
    assert data["traits"]["email"] == "Anna.Mueller@example.de" and data["traits"]["plan"] == "gold"
    assert data["trait_sources"]["plan"]["source"] == "shop"
    assert {(i["type"], i["value"]) for i in data["identities"]} >= {("email", "anna.mueller@example.de"),
                                                                     ("user_id", "U-1")}
    assert data["segments"][0]["slug"] == "loyal"
    assert data["consent"] == {"email_marketing": "granted"}
    assert data["timeline_url"].endswith(f"/api/v1/profiles/{anna.pk}/timeline/")
    assert AuditEntry.objects.filter(profile_id=anna.pk, summary="Retrieved through the API",
                                     actor=client.user).count() == 1


def test_segments_and_consent_are_null_without_their_permissions(anna, make_user):
    from django.contrib.auth.models import Permission
    from rest_framework.test import APIClient

    user = make_user(None, username="profiles-only")
    user.user_permissions.add(Permission.objects.get(codename="view_profile"))
    client = APIClient()
    client.force_authenticate(user)
    data = client.get(f"/api/v1/profiles/{anna.pk}/").json()
    assert data["segments"] is None and data["consent"] is None
    assert data["traits"]["email"] != "Anna.Mueller@example.de"  # no view_pii either


def test_marketing_gets_masked_traits_and_identities(api_as, anna):
    data = api_as("Marketing").get(f"/api/v1/profiles/{anna.pk}/").json()
    assert "Müller" not in str(data) and "anna.mueller@example.de" not in str(data).lower()
    assert data["traits"]["email"].startswith("A•••")


def test_list_searches_and_hides_tombstones(api_as, anna):
    other = person("anna.work@example.de", first_name="Anna", last_name="Müller")
    profiles_merge(winner=anna, loser=other, reason=Merge.Reason.MANUAL)
    client = api_as("Sales")
    ids = [row["id"] for row in client.get("/api/v1/profiles/", {"q": "müller"}).json()["results"]]
    assert ids == [anna.pk]
    # The old id leads to the profile it was merged into.
    assert client.get(f"/api/v1/profiles/{other.pk}/").json()["id"] == anna.pk


def test_timeline_filters_and_pages_with_a_cursor(api_as, anna):
    client = api_as("Service")
    page = client.get(f"/api/v1/profiles/{anna.pk}/timeline/", {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    stamps = [row["timestamp"] for row in page["results"]]
    assert stamps == sorted(stamps, reverse=True)
    rest = client.get(page["next"]).json()
    assert len(rest["results"]) == 2
    pages = client.get(f"/api/v1/profiles/{anna.pk}/timeline/", {"type": "page"}).json()["results"]
    assert {row["type"] for row in pages} == {"page"} and len(pages) == 2
    web = client.get(f"/api/v1/profiles/{anna.pk}/timeline/", {"channel": "crm"}).json()["results"]
    assert [row["type"] for row in web] == ["identify"]


def test_lookup_by_any_identifier_normalizing_the_value(api_as, anna):
    client = api_as("Service")
    for query in ({"type": "email", "value": " ANNA.MUELLER@EXAMPLE.DE "}, {"type": "phone", "value": "030 123456"},
                  {"type": "user_id", "value": "U-1"}):
        response = client.get("/api/v1/profiles/lookup/", query)
        assert response.status_code == 200, query
        assert response.json()["id"] == anna.pk
    assert AuditEntry.objects.filter(profile_id=anna.pk, summary="Looked up by phone").exists()


def test_lookup_of_a_source_record_by_its_key(api_as):
    bert = person("bert@example.de", extra_identities=[("record", "crm:C-77")])
    client = api_as("Sales")
    for query in ({"type": "record", "value": "crm:C-77"}, {"type": "record", "source": "crm", "value": "C-77"}):
        assert client.get("/api/v1/profiles/lookup/", query).json()["id"] == bert.pk
    assert client.get("/api/v1/profiles/lookup/", {"type": "record", "source": "shop", "value": "C-77"}
                      ).status_code == 404


def test_lookup_follows_merge_tombstones(api_as, anna):
    other = person("second@example.de")
    profiles_merge(winner=anna, loser=other, reason=Merge.Reason.MANUAL)
    data = api_as("Service").get("/api/v1/profiles/lookup/", {"type": "email", "value": "second@example.de"}).json()
    assert data["id"] == anna.pk


def test_lookup_errors_in_the_one_format(api_as, anna):
    client = api_as("Service")
    missing = client.get("/api/v1/profiles/lookup/", {"type": "email", "value": "nobody@example.de"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = client.get("/api/v1/profiles/lookup/", {"type": "shoe_size", "value": "42"})
    assert bad.status_code == 400 and "type" in bad.json()["error"]["fields"]
    empty = client.get("/api/v1/profiles/lookup/", {"type": "email"})
    assert empty.status_code == 400 and "value" in empty.json()["error"]["fields"]


def test_notes_through_the_api(api_as, anna):
    service = api_as("Service")
    response = service.post(f"/api/v1/profiles/{anna.pk}/notes/",
                            {"kind": "intent_to_cancel", "channel": "call_center", "text": "Will cancel"},
                            format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["author"] == service.user.username
    assert Profile.objects.get(pk=anna.pk).traits["intends_to_cancel"] is True
    listed = service.get(f"/api/v1/profiles/{anna.pk}/notes/").json()["results"]
    assert [n["text"] for n in listed] == ["Will cancel"]
    marketing = api_as("Marketing")
    assert marketing.get(f"/api/v1/profiles/{anna.pk}/notes/").json()["results"][0]["text"] != "Will cancel"
    denied = marketing.post(f"/api/v1/profiles/{anna.pk}/notes/",
                                      {"kind": "note", "channel": "store", "text": "x"}, format="json")
    assert denied.status_code == 403
    bad = service.post(f"/api/v1/profiles/{anna.pk}/notes/", {"kind": "rant", "channel": "store", "text": " "},
                       format="json")
    assert bad.status_code == 400 and {"kind", "text"} <= set(bad.json()["error"]["fields"])


def test_identities_filter_by_type_and_source_with_profile_id(api_as, anna):
    person("bert@example.de", source="shop")
    client = api_as("Sales")
    rows = client.get("/api/v1/identities/", {"type": "email", "source": "crm"}).json()["results"]
    assert [(r["value"], r["profile"]) for r in rows] == [("anna.mueller@example.de", anna.pk)]
    bad = client.get("/api/v1/identities/", {"type": "nonsense"})
    assert bad.status_code == 400 and "type" in bad.json()["error"]["fields"]


def test_merges_list_and_undo(api_as, anna):
    other = person("other@example.de")
    merge = profiles_merge(winner=anna, loser=other, reason=Merge.Reason.MANUAL, rule="agent decision")
    admin = api_as("Admin")
    rows = admin.get("/api/v1/merges/", {"profile": anna.pk}).json()["results"]
    assert [r["id"] for r in rows] == [merge.pk] and rows[0]["loser_id"] == other.pk
    assert api_as("Marketing").get("/api/v1/merges/").json()["results"][0]["moved"] is None
    assert api_as("Service").post(f"/api/v1/merges/{merge.pk}/undo/").status_code == 403
    response = admin.post(f"/api/v1/merges/{merge.pk}/undo/")
    assert response.status_code == 200
    assert response.json()["loser"] == other.pk and response.json()["merge"]["undone_at"]
    assert Profile.objects.get(pk=other.pk).merged_into_id is None
    again = admin.post(f"/api/v1/merges/{merge.pk}/undo/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert admin.post("/api/v1/merges/999999/undo/").status_code == 404
