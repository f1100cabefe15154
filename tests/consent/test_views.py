"""The privacy UI: requests (list with deadlines, form, detail with actions, export), consent on the profile page,
retention, the dashboard."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from cdp.core.models import AuditEntry
from consent.models import ConsentRecord, DataSubjectRequest, RetentionPolicy, RetentionRun
from consent.services import consent_record, request_create
from profiles.models import Event, Profile

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(client, make_user):
    user = make_user("Privacy", "dpo")
    client.force_login(user)
    return user


def no_inline_code(html: str) -> None:
    assert not re.search(r'<script(?![^>]*\b(src=|type="application/json"))[^>]*>', html), "inline <script>"
    assert not re.search(r"\son[a-z]+=|\sstyle=|<style", html), "inline style or handler"


def test_the_request_list_shows_deadlines_and_htmx_gets_the_results(client, officer, person):
    late = request_create(kind="access", identifier_type="email", identifier="jonas.weber@example.de",
                          received_at=timezone.now() - timedelta(days=40))
    page = client.get("/consent/requests/")
    html = page.content.decode()
    assert page.status_code == 200 and f"Access (Art. 15) #{late.pk}" in html and "overdue" in html
    no_inline_code(html)
    partial = client.get("/consent/requests/", {"kind": "erasure"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and f"#{late.pk}" not in partial


def test_opening_a_request_for_an_unknown_person_shows_the_error_on_the_field(client, officer, person):
    answer = client.post("/consent/requests/new/", {"kind": "erasure", "identifier_type": "email",
                                                    "identifier": "nobody@example.de"})
    assert answer.status_code == 400 and "No person is known" in answer.content.decode()
    assert not DataSubjectRequest.objects.exists()
    created = client.post("/consent/requests/new/", {"kind": "erasure", "identifier_type": "phone",
                                                     "identifier": "+49 170 1234567", "verification_note": "ok"})
    item = DataSubjectRequest.objects.get()
    assert created.status_code == 302 and created["Location"] == f"/consent/requests/{item.pk}/"


def test_the_detail_is_audited_and_its_actions_carry_out_the_request(client, officer, person):
    item = request_create(kind="erasure", identifier_type="email", identifier="jonas.weber@example.de")
    page = client.get(f"/consent/requests/{item.pk}/")
    assert "jonas.weber@example.de" in page.content.decode()
    no_inline_code(page.content.decode())
    assert AuditEntry.objects.filter(action="view", object_type="consent.datasubjectrequest", actor=officer).exists()
    client.post(f"/consent/requests/{item.pk}/complete/")
    assert Profile.objects.filter(pk=person.pk).exists(), "not verified yet"
    client.post(f"/consent/requests/{item.pk}/verify/", {"verification_note": "Passport seen"})
    client.post(f"/consent/requests/{item.pk}/complete/")
    assert not Profile.objects.filter(pk=person.pk).exists()
    html = client.get(f"/consent/requests/{item.pk}/").content.decode()
    assert "jonas.weber" not in html and "Completed" in html


def test_the_access_export_downloads_as_a_zip(client, officer, person):
    item = request_create(kind="access", identifier_type="user_id", identifier="u-4711", verification_note="ok")
    answer = client.get(f"/consent/requests/{item.pk}/export/")
    assert answer["Content-Type"] == "application/zip" and answer.content[:2] == b"PK"
    assert AuditEntry.objects.filter(action="export", profile_id=person.pk).exists()


def test_an_agent_records_a_decision_on_the_profile_page_and_the_panel_shows_the_history(client, make_user, person,
                                                                                          purposes):
    agent = make_user("Service", "agent")
    client.force_login(agent)
    answer = client.post(f"/consent/profiles/{person.pk}/decide/", {"purpose": "email_marketing",
                                                                   "status": "granted", "text_version": "v3"},
                         HTTP_HX_REQUEST="true")
    assert answer.status_code == 204 and "profileChanged" in answer["HX-Trigger"]
    record = ConsentRecord.objects.get()
    assert record.source == "agent" and record.proof["text_version"] == "v3"
    bad = client.post(f"/consent/profiles/{person.pk}/decide/", {"purpose": "telepathy", "status": "granted"},
                      HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and ConsentRecord.objects.count() == 1
    consent_record(profile=person, purpose=purposes["email_marketing"], status="withdrawn", source="email")
    html = client.get(f"/profiles/{person.pk}/").content.decode()
    assert "History (2)" in html and "withdrawn" in html and "Record decision" in html
    marketing = make_user("Marketing", "marketer")
    client.force_login(marketing)
    assert "Record decision" not in client.get(f"/profiles/{person.pk}/").content.decode()
    assert client.post(f"/consent/profiles/{person.pk}/decide/", {"purpose": "email_marketing",
                                                                 "status": "granted"}).status_code == 403


def test_retention_policies_and_a_run_from_the_ui(client, officer, person):
    old = timezone.now() - timedelta(days=100)
    Event.objects.filter(profile=person).update(timestamp=old)
    page = client.get("/consent/retention/")
    no_inline_code(page.content.decode())
    assert client.post("/consent/retention/", {"category": "events", "scope": "track", "days": "90",
                                               "enabled": "on"}).status_code == 302
    clash = client.post("/consent/retention/", {"category": "events", "scope": "track", "days": "30"})
    assert clash.status_code == 400 and "already a policy" in clash.content.decode()
    client.post("/consent/retention/run/")
    run = RetentionRun.objects.get()
    assert run.trigger == "manual" and run.status == "done" and run.total == 1
    assert not Event.objects.filter(profile=person).exists()
    assert RetentionPolicy.objects.count() == 1
    assert "manual" in client.get("/consent/retention/runs/", HTTP_HX_REQUEST="true").content.decode()


def test_the_privacy_dashboard(client, officer, person, purposes):
    consent_record(profile=person, purpose=purposes["analytics"], status="granted", source="web")
    request_create(kind="objection", identifier_type="email", identifier="jonas.weber@example.de")
    html = client.get("/consent/").content.decode()
    no_inline_code(html)
    assert "Open requests" in html and "Objection (Art. 21)" in html and "consent-rates-data" in html
    assert "Suppressed identifiers" in html and "Retention runs" in html
    assert re.search(r"<title>[^<]*Privacy[^<]*</title>", html)
