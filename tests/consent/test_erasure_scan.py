"""Done when: after an erasure no table, file or log of the project holds the subject's identifiers or personal
data (a full database dump and the data directories are scanned), and re-sending the subject's events with the
same identifiers creates no profile."""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from consent.models import SuppressionHit
from consent.selectors import observations_suppressed
from consent.services import consent_record, purposes_install, request_complete, request_create, request_export
from ingestion.models import Import
from ingestion.services import imports, source_create
from ingestion.services.pipeline import inbox_process_pending
from profiles.models import Profile

EMAIL, PHONE, NAME = "ottilie.quast@example.de", "+491761234567", "Quastenflosser"
PHONE_FORMS = [PHONE, "0176 1234567", "01761234567", "1761234567"]
MAPPING = {"type": "identify", "event": None, "event_from": None, "fields": [
    {"from": "customer_id", "to": "externalId", "type": "string"},
    {"from": "email", "to": "traits.email", "type": "string"},
    {"from": "last_name", "to": "traits.last_name"},
    {"from": "visits", "to": "traits.visits", "type": "integer"},
]}


def send(key: str, path: str, body: dict):
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    answer = Client().post(path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth)
    assert answer.status_code == 200, answer.content
    inbox_process_pending()


def messages(message_suffix: str = "") -> list[tuple[str, dict]]:
    return [
        ("/v1/identify", {"userId": "ottilie-1", "anonymousId": "dev-ottilie", "messageId": f"i{message_suffix}",
                          "traits": {"email": EMAIL, "phone": "0176 1234567", "first_name": "Ottilie",
                                     "last_name": NAME},
                          "context": {"consent": {"categoryPreferences": {"marketing": True, "analytics": False}}}}),
        ("/v1/track", {"userId": "ottilie-1", "event": "Order Completed", "messageId": f"t{message_suffix}",
                       "properties": {"total": 42}, "context": {"traits": {"email": EMAIL}}}),
    ]


@pytest.fixture
def world(settings, tmp_path):
    """The subject's data everywhere: tracking API (inbox, profile, events, traits, consent), a file import with
    an error report, an access export (audit entries), and another person who must survive."""
    settings.MEDIA_ROOT = tmp_path / "media"
    purposes = {purpose.key: purpose for purpose in purposes_install()}
    web, key = source_create(name="Web", kind="http", slug="web", channel="web")
    for path, body in messages():
        send(key, path, body)
    send(key, "/v1/identify", {"userId": "other-1", "traits": {"email": "other@example.de", "last_name": "Anders"}})
    crm, _ = source_create(name="CRM", kind="file", slug="crm")
    csv = ("customer_id,email,last_name,visits\n"
           f"c-1,{EMAIL},{NAME},3\n"
           f"c-2,{EMAIL},{NAME},many\n"
           "c-3,third@example.de,Dritte,1\n")
    imp = imports.import_create(source=crm, upload=SimpleUploadedFile("customers.csv", csv.encode()))
    imports.import_configure(imp=imp, mapping=MAPPING)
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
    imp = imports.import_run(import_id=imp.pk)
    assert imp.rows_failed == 1 and imp.error_report, "the error report names the subject"
    inbox_process_pending()
    access = request_create(kind="access", identifier_type="email", identifier=EMAIL,
                            verification_note=f"Letter signed {NAME}, reply to {EMAIL}")
    request_export(request=access)
    subject = Profile.objects.get(identities__type="email", identities__value=EMAIL)
    consent_record(profile=subject, purpose=purposes["email_marketing"], status="granted", source="web",
                   proof={"form": "https://shop.example.de/newsletter", "email": EMAIL})
    return {"key": key, "subject": subject, "media": settings.MEDIA_ROOT}


def database_text() -> str:
    """Everything the test database holds: pg_dump on PostgreSQL, every row of every table on SQLite."""
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
        args = [shutil.which("pg_dump") or "pg_dump", "--no-owner", "-h", db.get("HOST") or "127.0.0.1",
                "-p", str(db.get("PORT") or 5432), "-U", db.get("USER") or "postgres", db["NAME"]]
        return subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    lines = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from the introspection
            lines += [repr(row) for row in cursor.fetchall()]
    return "\n".join(lines)


def files_text(*roots: Path) -> str:
    texts = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and path.suffix not in {".sqlite3", ".sqlite3-wal", ".sqlite3-shm"}:
                texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def found(text: str) -> list[str]:
    return [value for value in [EMAIL, NAME, *PHONE_FORMS, "ottilie-1", "dev-ottilie"] if value in text]


@pytest.mark.django_db(transaction=True)
def test_after_an_erasure_no_table_and_no_file_holds_the_subject(world):
    before = database_text()
    assert {EMAIL, NAME, "ottilie-1"} <= set(found(before)), "the scan must see the subject before the erasure"
    assert found(files_text(world["media"]))
    request = request_create(kind="erasure", identifier_type="phone", identifier="0176 1234567",
                             verification_note=f"Called {NAME} back on {PHONE}")
    request_complete(request=request)
    assert found(database_text()) == []
    assert found(files_text(world["media"], settings.VAR_DIR)) == []
    assert Profile.objects.filter(identities__value="other@example.de").exists(), "the other person stays"


@pytest.mark.django_db(transaction=True)
def test_observations_of_the_erased_subject_are_recognised_as_suppressed(world):
    from ingestion.models import Source
    from ingestion.services.pipeline import message_to_observation

    request_complete(request=request_create(kind="erasure", identifier_type="email", identifier=EMAIL,
                                            verification_note="ok"))
    web = Source.objects.get(slug="web")
    observations = [message_to_observation({**body, "type": path.rsplit("/", 1)[1]}, source=web)
                    for path, body in messages("-again")]
    assert observations_suppressed(observations) == {0, 1}


@pytest.mark.django_db(transaction=True)
def test_resending_the_subjects_events_creates_no_profile(world):
    request_complete(request=request_create(kind="erasure", identifier_type="email", identifier=EMAIL,
                                            verification_note="ok"))
    profiles = Profile.objects.count()
    for path, body in messages("-again"):
        send(world["key"], path, body)
    assert Profile.objects.count() == profiles
    assert not Profile.objects.filter(identities__value=EMAIL).exists()
    assert SuppressionHit.objects.get(source="web").count == 2
    assert found(database_text()) == []
