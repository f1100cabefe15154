"""Notes and interactions: a note becomes an event on the timeline and traits through the golden record;
the UI form (htmx), permissions, personal data (export and erase)."""

import json

import pytest
from django.urls import reverse

from cdp.core import registry
from cdp.core.models import AuditEntry
from profiles.models import Event, Note, Profile, TraitValue
from profiles.services.notes import NoteInvalid, note_add
from profiles.signals import profile_changed
from tests.profiles.people import person

pytestmark = pytest.mark.django_db


def test_intent_to_cancel_note_becomes_an_event_and_traits(make_user, django_capture_on_commit_callbacks):
    anna = person("anna@example.de", first_name="Anna")
    agent = make_user("Service")
    sent = []
    profile_changed.connect(lambda sender, profile_ids, **kw: sent.append(profile_ids), weak=False,
                            dispatch_uid="test-notes")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            note = note_add(profile=anna, text="Wants to cancel: too expensive.", kind="intent_to_cancel",
                            channel="call_center", author=agent)
    finally:
        profile_changed.disconnect(dispatch_uid="test-notes")
    assert [anna.pk] in sent
    event = Event.objects.get(profile=anna, type="note")
    assert event.name == "Cancellation Intent Noted" and event.channel == "call_center"
    assert event.properties == {"kind": "intent_to_cancel", "note_id": note.pk, "sentiment": note.sentiment,
                                "sentiment_label": "negative"}
    anna.refresh_from_db()
    assert anna.traits["intends_to_cancel"] is True
    assert anna.traits["intends_to_cancel_at"] == note.created_at.isoformat(timespec="seconds")
    assert anna.traits["last_note_at"] == note.created_at.isoformat(timespec="seconds")
    assert anna.trait_sources["intends_to_cancel"]["source"] == "agent"
    assert TraitValue.objects.filter(profile=anna, name="intends_to_cancel", source="agent").exists()
    assert AuditEntry.objects.filter(object_type="profiles.note", object_id=str(note.pk), actor=agent).exists()


def test_plain_note_sets_last_note_at_only(make_user):
    anna = person("anna@example.de")
    note_add(profile=anna, text="Asked about delivery times.", kind="note", channel="phone",
             author=make_user("Sales"))
    anna.refresh_from_db()
    assert "last_note_at" in anna.traits and "intends_to_cancel" not in anna.traits


@pytest.mark.parametrize(("field", "kwargs"), [
    ("text", {"text": "   "}),
    ("kind", {"kind": "shouting"}),
    ("channel", {"channel": "pigeon"}),
])
def test_bad_notes_are_refused_naming_the_field(field, kwargs):
    anna = person("anna@example.de")
    arguments = {"text": "ok", "kind": "note", "channel": "phone", **kwargs}
    with pytest.raises(NoteInvalid) as error:
        note_add(profile=anna, author=None, **arguments)
    assert error.value.field == field
    assert not Note.objects.exists() and not Event.objects.filter(type="note").exists()


def test_agent_adds_a_note_in_the_ui_with_htmx(client, make_user):
    anna = person("anna@example.de")
    client.force_login(make_user("Service"))
    response = client.post(reverse("profiles:note-add", args=[anna.pk]),
                           {"kind": "intent_to_cancel", "channel": "call_center", "text": "Will cancel next month"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    trigger = json.loads(response["HX-Trigger"])
    assert trigger["toast"]["message"] == "Intends to cancel noted." and "profileChanged" in trigger
    body = response.content.decode()
    assert "Will cancel next month" in body and "<html" not in body
    assert Profile.objects.get(pk=anna.pk).traits["intends_to_cancel"] is True
    timeline = client.get(reverse("profiles:timeline", args=[anna.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "Cancellation Intent Noted" in timeline


def test_an_empty_note_shows_the_error_and_saves_nothing(client, make_user):
    anna = person("anna@example.de")
    client.force_login(make_user("Sales"))
    response = client.post(reverse("profiles:note-add", args=[anna.pk]),
                           {"kind": "note", "channel": "store", "text": "  "}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "field-errors" in response.content.decode()
    assert not Note.objects.exists()


def test_marketing_may_not_add_notes_and_sees_them_masked(client, make_user):
    anna = person("anna@example.de")
    note_add(profile=anna, text="Private remark about the customer", kind="complaint", channel="store",
             author=make_user("Service"))
    client.force_login(make_user("Marketing"))
    response = client.post(reverse("profiles:note-add", args=[anna.pk]),
                           {"kind": "note", "channel": "store", "text": "x"})
    assert response.status_code == 403
    html = client.get(reverse("profiles:detail", args=[anna.pk])).content.decode()
    assert "Complaint" in html and "Private remark" not in html and "Add note" not in html


def test_notes_are_exported_and_erased_with_the_person(make_user):
    anna = person("anna@example.de")
    note_add(profile=anna, text="Call back on Monday", kind="note", channel="phone", author=make_user("Service"))
    assert "profiles.note" in registry.covered_models()
    exported = registry.export_all(anna)["profiles"]
    assert [n["text"] for n in exported["notes"]] == ["Call back on Monday"]
    registry.erase_all(anna)
    assert not Note.objects.filter(profile_id=anna.pk).exists()
