"""Data-subject requests through the services: finding the subject, access exports, erasure with suppression,
rectification, restriction and objection."""

import io
import json
import zipfile

import pytest
from django.db.models import OuterRef
from django.utils import timezone

from cdp.core.models import AuditEntry
from consent import selectors
from consent.models import ConsentRecord, DataSubjectRequest, RequestStep, SuppressedIdentifier
from consent.services import (
    ANSWER_WITHIN,
    RequestInvalid,
    consent_record,
    request_complete,
    request_create,
    request_export,
    request_lift,
    request_verify,
)
from profiles.models import Event, Identity, Profile, TraitValue
from profiles.services import Observation

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("identifier_type", "identifier"), [
    ("email", "Jonas.Weber@Example.de"), ("phone", "0170 1234567"), ("user_id", "u-4711"),
    ("anonymous_id", "anon-jw-1")])
def test_the_subject_is_found_by_any_identifier(person, identifier_type, identifier):
    request = request_create(kind="access", identifier_type=identifier_type, identifier=identifier)
    assert request.profile == person
    assert request.due_at == request.received_at + ANSWER_WITHIN
    assert request.status == DataSubjectRequest.Status.RECEIVED
    assert list(request.steps.values_list("action", flat=True)) == ["received"]


def test_the_subject_is_found_by_profile_id(person):
    request = request_create(kind="access", identifier_type="profile_id", identifier=str(person.pk),
                             verification_note="Called back on the number on file")
    assert request.profile == person and request.status == DataSubjectRequest.Status.VERIFIED


def test_an_unknown_subject_is_a_clear_error_and_nothing_is_created(person):
    with pytest.raises(RequestInvalid) as error:
        request_create(kind="erasure", identifier_type="email", identifier="nobody@example.de")
    assert error.value.code == "unknown_subject" and error.value.field == "identifier"
    assert not DataSubjectRequest.objects.exists()


def test_completing_needs_a_verification_first(person):
    request = request_create(kind="erasure", identifier_type="email", identifier="jonas.weber@example.de")
    with pytest.raises(RequestInvalid) as error:
        request_complete(request=request)
    assert error.value.code == "not_verified"
    assert Profile.objects.filter(pk=person.pk).exists()
    request_verify(request=request, verification_note="ID card shown at the counter")
    request_complete(request=request)
    assert not Profile.objects.filter(pk=person.pk).exists()


def test_access_export_is_a_zip_of_json_with_everything_and_the_download_is_audited(person, purposes,
                                                                                    django_user_model):
    officer = django_user_model.objects.create_user("dpo")
    consent_record(profile=person, purpose=purposes["email_marketing"], status="granted", source="web")
    request = request_create(kind="access", identifier_type="email", identifier="jonas.weber@example.de",
                             verification_note="Answered from the address on file")
    name, data = request_export(request=request, actor=officer)
    assert name.endswith(".zip")
    archive = zipfile.ZipFile(io.BytesIO(data))
    files = {info.filename: json.loads(archive.read(info)) for info in archive.infolist()}
    assert {"manifest.json", "profiles.json", "consent.json", "core.json"} <= set(files)
    everything = json.dumps(files)
    for expected in ["jonas.weber@example.de", "Weberknecht", "Order Completed", "email_marketing", "u-4711"]:
        assert expected in everything
    assert files["profiles.json"]["trait_values"], "traits come with their lineage"
    entry = AuditEntry.objects.get(action="export", profile_id=person.pk)
    assert entry.actor == officer and entry.object_id == str(request.pk)
    assert request.steps.filter(action=RequestStep.Action.EXPORTED).count() == 1
    request_export(request=request, actor=officer)
    assert AuditEntry.objects.filter(action="export", profile_id=person.pk).count() == 2


def test_erasure_deletes_everything_and_suppresses_the_identifiers(person, purposes):
    consent_record(profile=person, purpose=purposes["email_marketing"], status="granted", source="web")
    access = request_create(kind="access", identifier_type="user_id", identifier="u-4711",
                            verification_note="Mail from jonas.weber@example.de, Jonas Weberknecht, checked")
    request = request_create(kind="erasure", identifier_type="email", identifier="jonas.weber@example.de",
                             verification_note="Signed letter from Jonas Weberknecht")
    request = request_complete(request=request)
    assert request.status == DataSubjectRequest.Status.COMPLETED
    assert not Profile.objects.filter(pk=person.pk).exists()
    for model in (Identity, Event, TraitValue, ConsentRecord):
        assert not model.objects.exists(), model
    assert request.result["rows"]["profile"] == 1
    # The requests stay as evidence, without the identifier, the name or the link.
    for item in DataSubjectRequest.objects.all():
        assert item.identifier == "" and item.profile_id is None
        assert "Weberknecht" not in item.verification_note and "jonas.weber" not in item.verification_note
    access.refresh_from_db()
    assert "[erased]" in access.verification_note
    assert SuppressedIdentifier.objects.filter(request=request).count() >= 4
    assert selectors.suppressed_identities([("email", "jonas.weber@example.de"), ("phone", "+491701234567"),
                                            ("user_id", "u-4711"), ("email", "other@example.de")]) == {
        ("email", "jonas.weber@example.de"), ("phone", "+491701234567"), ("user_id", "u-4711")}
    assert AuditEntry.objects.filter(action="erase", object_id=str(person.pk)).exists()


def test_a_second_erasure_of_the_same_subject_is_a_clear_error_and_changes_nothing(person):
    first = request_create(kind="erasure", identifier_type="email", identifier="jonas.weber@example.de",
                           verification_note="ok")
    with pytest.raises(RequestInvalid) as error:
        request_create(kind="erasure", identifier_type="phone", identifier="+49 170 1234567", verification_note="ok")
    assert error.value.code == "already_open"
    request_complete(request=first)
    suppressed = SuppressedIdentifier.objects.count()
    for identifier_type, identifier in [("email", "JONAS.WEBER@example.de"), ("phone", "0170 1234567")]:
        with pytest.raises(RequestInvalid) as error:
            request_create(kind="erasure", identifier_type=identifier_type, identifier=identifier)
        assert error.value.code == "already_erased"
        assert f"#{first.pk}" in str(error.value)
    assert DataSubjectRequest.objects.count() == 1
    assert SuppressedIdentifier.objects.count() == suppressed
    with pytest.raises(RequestInvalid) as error:
        request_complete(request=first)
    assert error.value.code == "not_open"


def test_observations_of_an_erased_person_are_recognised(person):
    request_complete(request=request_create(kind="erasure", identifier_type="user_id", identifier="u-4711",
                                            verification_note="ok"))
    now = timezone.now()
    observations = [
        Observation(identities=[("anonymous_id", "new-device")], timestamp=now),
        Observation(identities=[("anonymous_id", "new-device-2"), ("email", "jonas.weber@example.de")], timestamp=now),
        Observation(identities=[("user_id", "u-1")], previous_id="anon-jw-1", timestamp=now),
        Observation(identities=[("phone", "+491701234567")], timestamp=now),
    ]
    assert selectors.observations_suppressed(observations) == {1, 2, 3}


def test_rectification_corrects_traits_with_the_request_as_source(person):
    request = request_create(kind="rectification", identifier_type="email", identifier="jonas.weber@example.de",
                             verification_note="ok", changes={"last_name": "Weber", "city": "Bonn"})
    request_complete(request=request)
    person.refresh_from_db()
    assert person.traits["last_name"] == "Weber" and person.traits["city"] == "Bonn"
    assert TraitValue.objects.filter(profile=person, name="last_name",
                                     source=f"privacy_request:{request.pk}").exists()
    assert AuditEntry.objects.filter(action="change", profile_id=person.pk).exists()


def test_a_rectification_without_changes_is_refused(person):
    with pytest.raises(RequestInvalid) as error:
        request_create(kind="rectification", identifier_type="email", identifier="jonas.weber@example.de")
    assert error.value.field == "changes"


@pytest.mark.parametrize("kind", ["restriction", "objection"])
def test_restriction_and_objection_freeze_the_profile_out_of_activation_until_lifted(person, purposes, kind):
    consent_record(profile=person, purpose=purposes["email_marketing"], status="granted", source="web")
    def frozen():
        return Profile.objects.filter(selectors.processing_restricted_exists(profile_ref=OuterRef("pk")))

    assert selectors.profile_may_activate(profile=person, purpose_key="email_marketing")
    assert not selectors.profile_may_activate(profile=person, purpose_key="personalization")
    request = request_create(kind=kind, identifier_type="email", identifier="jonas.weber@example.de",
                             verification_note="ok")
    assert not frozen().exists(), "an open request freezes nothing yet"
    request = request_complete(request=request)
    assert list(frozen()) == [person]
    assert not selectors.profile_may_activate(profile=person, purpose_key="email_marketing")
    request_lift(request=request, reason="Accuracy confirmed")
    assert not frozen().exists()
    assert selectors.profile_may_activate(profile=person, purpose_key="email_marketing")
    with pytest.raises(RequestInvalid):
        request_lift(request=request)
