"""Consent from the tracking API's context (changed decisions only) and retention runs over every registered
category."""

from datetime import timedelta

import pytest
from django.db.models import QuerySet
from django.utils import timezone

from cdp.core import retention
from cdp.core.models import AuditEntry
from cdp.core.services import audit_record
from consent.models import ConsentCategory, ConsentRecord, RetentionRun
from consent.services import (
    PolicyInvalid,
    consent_from_context,
    consent_observations_apply,
    retention_policy_save,
    retention_run,
)
from ingestion.models import InboxMessage
from ingestion.services import inbox_store, source_create
from profiles.models import Event
from profiles.services import Observation

pytestmark = pytest.mark.django_db


def statuses(person):
    return list(ConsentRecord.objects.filter(profile=person).order_by("recorded_at", "id")
                .values_list("purpose__key", "status"))


def test_category_preferences_record_only_changed_decisions(person, purposes):
    now = timezone.now()
    prefs = {"marketing": True, "analytics": False, "unknown_category": True, "personalization": "yes"}
    created = consent_from_context(profile_id=person.pk, preferences=prefs, source="web", at=now, proof={})
    assert statuses(person) == [("email_marketing", "granted"), ("analytics", "denied")]
    assert len(created) == 2
    assert consent_from_context(profile_id=person.pk, preferences=prefs, source="web",
                                at=now + timedelta(minutes=1)) == []
    consent_from_context(profile_id=person.pk, preferences={"marketing": False, "analytics": False}, source="web",
                         at=now + timedelta(minutes=2))
    assert statuses(person)[-1] == ("email_marketing", "withdrawn") and len(statuses(person)) == 3
    # An older message does not override a newer decision.
    assert consent_from_context(profile_id=person.pk, preferences={"marketing": True}, source="web",
                                at=now - timedelta(days=1)) == []


def test_the_category_mapping_is_configurable(person, purposes):
    ConsentCategory.objects.create(category="C0004", purpose=purposes["personalization"])
    consent_from_context(profile_id=person.pk, preferences={"C0004": True}, source="web", at=timezone.now())
    assert statuses(person) == [("personalization", "granted")]


def test_a_batch_of_observations_records_one_decision_per_change(person, purposes):
    now = timezone.now()
    context = {"consent": {"categoryPreferences": {"email_marketing": True}}}
    observations = [Observation(identities=[("user_id", "u-4711")], timestamp=now + timedelta(seconds=i),
                                context=context, source="web", message_id=f"m{i}") for i in range(5)]
    records = consent_observations_apply(observations=observations, profile_ids=[person.pk] * 5)
    assert len(records) == 1 and records[0].proof["messageId"] == "m0"


def test_a_retention_run_deletes_old_data_of_every_registered_category_in_batches(person):
    old = timezone.now() - timedelta(days=400)
    Event.objects.filter(profile=person).update(timestamp=old)
    source, _ = source_create(name="Web", kind="http", slug="web")
    inbox_store(source=source, messages=[{"type": "track", "userId": "u-1", "event": "A", "messageId": f"m{i}"}
                                         for i in range(3)])
    InboxMessage.objects.update(received_at=old, status=InboxMessage.Status.PROCESSED)
    inbox_store(source=source, messages=[{"type": "track", "userId": "u-1", "event": "B", "messageId": "new"}])
    InboxMessage.objects.filter(message_id="new").update(status=InboxMessage.Status.PROCESSED)
    old_entries = [audit_record(actor=None, action="view", object_type="profiles.profile").pk for _ in range(3)]
    QuerySet.update(AuditEntry.objects.filter(pk__in=old_entries), at=old)  # the log itself is append-only
    recent = audit_record(actor=None, action="view", object_type="profiles.profile")
    for category in ("events", "inbox_messages", "audit_entries"):
        retention_policy_save(category=category, days=365)
    run = retention_run(trigger="manual", batch_size=2)
    assert run.status == RetentionRun.Status.DONE
    by_category = {entry["category"]: entry["deleted"] for entry in run.deleted}
    assert (by_category["events"], by_category["inbox_messages"], by_category["audit_entries"]) == (1, 3, 3)
    assert run.total == sum(by_category.values())
    assert not Event.objects.exists()
    assert list(InboxMessage.objects.values_list("message_id", flat=True)) == ["new"]
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [recent.pk]


def test_policies_are_checked(person):
    assert {h.category for h in retention.handlers()} >= {"events", "inbox_messages", "audit_entries"}
    with pytest.raises(PolicyInvalid) as error:
        retention_policy_save(category="tea_leaves", days=3)
    assert error.value.field == "category"
    with pytest.raises(PolicyInvalid) as error:
        retention_policy_save(category="audit_entries", days=3, scope="x")
    assert error.value.field == "scope"
    with pytest.raises(PolicyInvalid) as error:
        retention_policy_save(category="events", days=0)
    assert error.value.field == "days"


def test_the_pipeline_records_the_consent_a_tracking_message_carries(db):
    """context.consent.categoryPreferences, through the tracking API and the inbox, becomes consent records of the
    profile the message resolved to; the same choices again record nothing new, a change records the change."""
    import base64
    import json

    from django.test import Client

    from consent.models import ConsentRecord
    from consent.selectors import consent_state
    from consent.services import purposes_install
    from ingestion.services import source_create
    from ingestion.services.pipeline import inbox_process_pending
    from profiles.models import Profile

    purposes_install()
    _, key = source_create(name="Web", kind="http", slug="web", channel="web")
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()

    def page(message_id: str, preferences: dict) -> None:
        body = {"anonymousId": "device-1", "messageId": message_id, "name": "Home",
                "context": {"consent": {"categoryPreferences": preferences}}}
        answer = Client().post("/v1/page", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth)
        assert answer.status_code == 200, answer.content
        inbox_process_pending()

    page("m1", {"marketing": True, "analytics": True})
    profile = Profile.objects.get(identities__value="device-1")
    assert consent_state(profile=profile) == {"email_marketing": "granted", "analytics": "granted"}
    page("m2", {"marketing": True, "analytics": True})
    assert ConsentRecord.objects.filter(profile=profile).count() == 2
    page("m3", {"marketing": False, "analytics": True})
    assert consent_state(profile=profile)["email_marketing"] == "withdrawn"
    assert ConsentRecord.objects.filter(profile=profile).count() == 3
