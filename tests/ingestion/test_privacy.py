"""Ingestion's personal-data handlers find a person's inbox messages however the identifiers were written."""

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from ingestion.models import Import, InboxMessage
from ingestion.services import imports, source_create
from ingestion.services.pipeline import inbox_process_pending
from ingestion.services.privacy import personal_data_erase, personal_data_export
from profiles.models import Profile

pytestmark = pytest.mark.django_db


def send(key: str, path: str, body: dict) -> None:
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    answer = Client().post(path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth)
    assert answer.status_code == 200, answer.content
    inbox_process_pending()


def test_messages_naming_the_person_anywhere_in_any_case_are_exported_and_erased():
    _, key = source_create(name="Web", kind="http", slug="web", channel="web")
    send(key, "/v1/identify", {"anonymousId": "dev-1", "messageId": "a", "traits": {"email": "ottilie@example.de"}})
    send(key, "/v1/track", {"anonymousId": "dev-1", "messageId": "b", "event": "Called",
                            "context": {"traits": {"phone": "0176 1234567"}}})
    # A CRM row (no userId or anonymousId: a record id), its e-mail address typed in another case.
    crm, _ = source_create(name="CRM", kind="file", slug="crm")
    imp = imports.import_create(source=crm, upload=SimpleUploadedFile(
        "customers.csv", b"customer_id,email\nc-77,Ottilie@Example.DE\n"))
    imports.import_configure(imp=imp, mapping={"type": "identify", "event": None, "event_from": None, "fields": [
        {"from": "customer_id", "to": "externalId", "type": "string"},
        {"from": "email", "to": "traits.email", "type": "string"}]})
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
    imports.import_run(import_id=imp.pk)
    inbox_process_pending()
    # Someone else whose id contains the subject's device id as a part must keep their messages.
    send(key, "/v1/identify", {"anonymousId": "dev-10", "messageId": "d", "traits": {"email": "x@example.de"}})
    subject = Profile.objects.get(identities__value="ottilie@example.de")
    exported = personal_data_export(subject)["inbox_messages"]
    assert len(exported) == 3 and {"a", "b"} <= {m["message_id"] for m in exported}
    assert personal_data_erase(subject) == 3
    assert list(InboxMessage.objects.values_list("message_id", flat=True)) == ["d"]
