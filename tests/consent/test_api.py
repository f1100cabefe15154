"""The privacy API for a ticketing system, and consent through the API."""

import io
import zipfile

import pytest

from cdp.core.models import AuditEntry
from consent.models import ConsentRecord, DataSubjectRequest

pytestmark = pytest.mark.django_db
URL = "/api/v1/privacy-requests/"


def test_a_ticketing_system_opens_verifies_and_completes_an_access_request(api_as, person):
    api = api_as("Privacy")
    created = api.post(URL, {"kind": "access", "identifier_type": "email", "identifier": "Jonas.Weber@example.de",
                             "reference": "TICKET-17"}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "received" and body["profile"] == person.pk and body["reference"] == "TICKET-17"
    pk = body["id"]
    assert api.get(f"{URL}{pk}/export/").status_code == 409
    verified = api.post(f"{URL}{pk}/verify/", {"verification_note": "Reply from the address on file"},
                        format="json")
    assert verified.json()["status"] == "verified"
    export = api.get(f"{URL}{pk}/export/")
    assert export.status_code == 200 and export["Content-Type"] == "application/zip"
    assert "profiles.json" in zipfile.ZipFile(io.BytesIO(export.content)).namelist()
    assert AuditEntry.objects.filter(action="export", profile_id=person.pk, actor=api.user).exists()
    done = api.post(f"{URL}{pk}/complete/")
    assert done.json()["status"] == "completed"
    assert [step["action"] for step in done.json()["steps"]] == ["received", "verified", "exported", "completed"]
    assert api.post(f"{URL}{pk}/complete/").json()["error"]["status"] == 409
    listed = api.get(URL, {"open": "false"}).json()
    assert [item["id"] for item in listed["results"]] == [pk]
    api.get(f"{URL}{pk}/")
    assert AuditEntry.objects.filter(action="view", object_type="consent.datasubjectrequest",
                                     object_id=str(pk)).exists()


def test_an_unknown_subject_and_a_second_erasure_are_400_naming_the_field(api_as, person):
    api = api_as("Privacy")
    unknown = api.post(URL, {"kind": "erasure", "identifier_type": "email", "identifier": "nobody@example.de"},
                       format="json")
    assert unknown.status_code == 400 and "identifier" in unknown.json()["error"]["fields"]
    erasure = api.post(URL, {"kind": "erasure", "identifier_type": "user_id", "identifier": "u-4711",
                             "verification_note": "ok"}, format="json").json()
    assert api.post(f"{URL}{erasure['id']}/complete/").json()["status"] == "completed"
    again = api.post(URL, {"kind": "erasure", "identifier_type": "email", "identifier": "jonas.weber@example.de"},
                     format="json")
    assert again.status_code == 400
    assert "already been erased" in again.json()["error"]["fields"]["identifier"][0]
    assert DataSubjectRequest.objects.count() == 1


def test_only_the_privacy_role_handles_requests(api_as, person):
    for role in ("Marketing", "Sales", "Service"):
        api = api_as(role)
        assert api.get(URL).status_code == 403, role
        assert api.post(URL, {}, format="json").status_code == 403, role


def test_consent_through_the_api_by_profile_or_identifier(api_as, person, purposes):
    api = api_as("Service")
    by_id = api.post("/api/v1/consent-records/", {"profile": person.pk, "purpose": "email_marketing",
                                                  "status": "granted", "proof": {"form": "https://x.de/f"}},
                     format="json")
    assert by_id.status_code == 201, by_id.json()
    by_identifier = api.post("/api/v1/consent-records/", {
        "identifier": {"type": "email", "value": "JONAS.WEBER@example.de"}, "purpose": "email_marketing",
        "status": "withdrawn"}, format="json")
    assert by_identifier.status_code == 201
    assert list(ConsentRecord.objects.values_list("status", flat=True)) == ["withdrawn", "granted"]


def test_consent_for_an_unknown_purpose_is_400_naming_the_field_and_nothing_changes(api_as, person, purposes):
    api = api_as("Service")
    answer = api.post("/api/v1/consent-records/", {"profile": person.pk, "purpose": "telepathy",
                                                   "status": "granted"}, format="json")
    assert answer.status_code == 400 and list(answer.json()["error"]["fields"]) == ["purpose"]
    unknown = api.post("/api/v1/consent-records/", {"identifier": {"type": "email", "value": "x@example.de"},
                                                    "purpose": "analytics", "status": "granted"}, format="json")
    assert list(unknown.json()["error"]["fields"]) == ["identifier.value"]
    assert not ConsentRecord.objects.exists()
    assert api_as("Marketing").post("/api/v1/consent-records/", {}, format="json").status_code == 403
