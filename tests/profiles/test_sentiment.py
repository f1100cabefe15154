"""Sentiment of service notes and free-text feedback (profiles.insights.sentiment): German and English scoring with
negation, intensifiers and spelling variants, language detection, bad input; the note path (Note.sentiment and the
note event), the ingestion path (events with free text through the inbox and the pipeline), and the stock
``service_sentiment`` computed trait filled from both."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from ingestion.services import inbox_store, source_create
from ingestion.services.pipeline import inbox_process_pending
from profiles.insights.sentiment import (
    TEXT_MAX,
    Sentiment,
    event_sentiment,
    language_detect,
    sentiment_label,
    sentiment_score,
)
from profiles.models import ComputedTrait, ComputedValue, Event, Identity
from profiles.services import computed_trait_recompute, computed_traits_install, computed_values_refresh
from profiles.services.notes import note_add
from tests.profiles.people import person

# --- scoring --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "language", "label"), [
    ("Kunde ist sehr zufrieden mit der schnellen Lieferung.", "de", "positive"),
    ("Die Beratung war freundlich und kompetent, alles bestens!", "de", "positive"),
    ("Kundin verärgert: Paket beschädigt angekommen.", "de", "negative"),
    ("Kunde möchte kündigen, die Ware war defekt.", "de", "negative"),
    ("Die Versandkosten sind zu hoch.", "de", "negative"),
    ("Adresse geändert.", "de", "neutral"),
    ("Customer is very happy with the quick refund.", "en", "positive"),
    ("Parcel arrived damaged, customer frustrated.", "en", "negative"),
    ("Address updated.", "en", "neutral"),
])
def test_german_and_english_texts_get_the_expected_label(text, language, label):
    result = sentiment_score(text, language)
    assert isinstance(result, Sentiment)
    assert (result.label, result.language) == (label, language)
    assert -1 <= result.score <= 1 and sentiment_label(result.score) == label


@pytest.mark.parametrize(("plain", "negated", "language"), [
    ("Kunde ist zufrieden.", "Kunde ist nicht zufrieden.", "de"),
    ("Kundin war mit dem Service zufrieden.", "Kundin war mit dem Service keineswegs zufrieden, gar nicht.", "de"),
    ("Das gefällt mir.", "Das gefällt mir nicht.", "de"),
    ("Customer is happy.", "Customer is not happy.", "en"),
])
def test_negation_turns_the_sentiment(plain, negated, language):
    assert sentiment_score(plain, language).label == "positive"
    assert sentiment_score(negated, language).label == "negative"


def test_negation_stays_in_its_clause():
    # "nicht" belongs to "angekommen"; the praise of the next clause is not negated.
    assert sentiment_score("Das erste Paket ist nicht angekommen. Kunde trotzdem sehr freundlich.", "de").score > 0
    # VADER alone lets "not" reach "angry" across the comma (and the full stop) and reads both as positive.
    assert sentiment_score("Parcel not delivered, customer angry.", "en").label == "negative"
    assert sentiment_score("Not delivered. Customer angry.", "en").label == "negative"


def test_english_contrast_across_clauses():
    assert sentiment_score("Item broken, but the service was great!", "en").label == "positive"
    assert sentiment_score("Great product, however the delivery was late and the box was damaged.", "en").label \
        == "negative"


@pytest.mark.parametrize(("plain", "boosted", "language"), [
    ("Kunde zufrieden.", "Kunde sehr zufrieden.", "de"),
    ("Kunde verärgert.", "Kunde äußerst verärgert.", "de"),
    ("Customer happy.", "Customer extremely happy.", "en"),
])
def test_intensifiers_make_a_text_stronger(plain, boosted, language):
    assert abs(sentiment_score(boosted, language).score) > abs(sentiment_score(plain, language).score)


def test_dampeners_make_a_german_text_weaker():
    assert 0 < sentiment_score("Kunde etwas zufrieden.", "de").score < sentiment_score("Kunde zufrieden.", "de").score


def test_contrast_weighs_what_follows_aber():
    assert sentiment_score("Die Lieferung war schnell, aber die Ware ist kaputt.", "de").label == "negative"
    assert sentiment_score("Die Ware ist kaputt, aber der Service war großartig.", "de").label == "positive"


def test_case_umlauts_and_sharp_s_spellings_score_alike():
    scores = {sentiment_score(text, "de").score for text in (
        "Kunde verärgert und enttäuscht.", "kunde verärgert und enttäuscht.", "KUNDE VERÄRGERT UND ENTTÄUSCHT.",
        "Kunde veraergert und enttaeuscht.")}
    assert len(scores) == 1 and scores.pop() < -0.05
    assert sentiment_score("großartig", "de").score == sentiment_score("grossartig", "de").score > 0.05


def test_inflected_and_conjugated_german_forms_are_found():
    assert sentiment_score("Kunde hat sich beschwert.", "de").label == "negative"  # beschweren
    assert sentiment_score("Eine enttäuschte Kundin.", "de").label == "negative"  # enttäuscht
    assert sentiment_score("Die Kundin hat das Produkt gelobt.", "de").label == "positive"  # loben


@pytest.mark.parametrize(("text", "language"), [
    ("Der Kunde hat angerufen, weil das Paket nicht da ist.", "de"),
    ("Falscher Artikel geliefert, Kunde unzufrieden.", "de"),  # no stop word: the lexicons decide
    ("Grüße aus Köln", "de"),
    ("The customer called because the parcel is missing.", "en"),
    ("Parcel damaged, customer upset.", "en"),
])
def test_language_is_detected_without_a_hint(text, language):
    assert language_detect(text) == language
    assert sentiment_score(text).language == language


@pytest.mark.parametrize(("hint", "language"), [("de", "de"), ("de-AT", "de"), ("de_CH", "de"), ("German", "de"),
                                                ("en-GB", "en"), ("ENG", "en"), ("fr", "de"), (None, "de")])
def test_a_language_hint_is_used_when_it_names_german_or_english(hint, language):
    # The text is German; an unusable hint falls back to detection.
    assert sentiment_score("Kunde ist mit der Lieferung nicht zufrieden.", hint).language == language


@pytest.mark.parametrize("text", [None, "", "   ", 42, 3.5, ["a"], {"note": "x"}, b"bytes", "!!!???...", "12345",
                                  "\x00\x01\x02", "🙂" * 50, "ä" * 10_000, "sehr " * 100_000])
def test_bad_input_never_fails(text):
    result = sentiment_score(text)
    assert -1 <= result.score <= 1 and result.label in ("negative", "neutral", "positive")
    assert result.language in ("de", "en")


def test_only_the_first_characters_are_read():
    padding = "Adresse geändert. " * (TEXT_MAX // 18 + 1)
    assert sentiment_score(padding + "Kunde wütend, katastrophal, furchtbar!", "de").score == \
        sentiment_score(padding, "de").score == 0


def test_event_sentiment_reads_free_text_fields_only():
    added = event_sentiment({"note": "Kunde sehr verärgert über die Lieferung", "language": "de"})
    assert added["sentiment_label"] == "negative" and -1 <= added["sentiment"] < -0.05
    assert set(added) == {"sentiment", "sentiment_label"}
    assert event_sentiment({"feedback": "Great service, thank you!"})["sentiment_label"] == "positive"
    assert event_sentiment({"comment": "Lieferung super schnell"}, {"locale": "de-DE"})["sentiment"] > 0
    assert event_sentiment({"subject": "Complaint: terrible, awful, angry"}) is None  # a category, not free text
    assert event_sentiment({"note": "ok thanks"}) is None  # too short
    assert event_sentiment({"note": 12345678901234}) is None
    assert event_sentiment({"note": "Terrible service, never again", "sentiment": 0.9}) is None  # the sender's
    assert event_sentiment({}) is None and event_sentiment(None) is None and event_sentiment(["note"]) is None


# --- where texts arrive -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_note_keeps_its_sentiment_and_its_event_carries_it_without_the_text(make_user):
    anna = person("anna@example.de")
    note = note_add(profile=anna, text="Kundin ist nicht zufrieden, die Lieferung kam zu spät.", kind="complaint",
                    channel="call_center", author=make_user("Service"))
    note.refresh_from_db()
    assert note.sentiment is not None and note.sentiment < -0.05
    event = Event.objects.get(profile=anna, type="note")
    assert event.properties == {"kind": "complaint", "note_id": note.pk, "sentiment": note.sentiment,
                                "sentiment_label": "negative"}
    praise = note_add(profile=anna, text="Customer thanked us, very happy with the service.", kind="compliment",
                      channel="phone", author=make_user("Service", username="service-2"))
    assert praise.sentiment > 0.05


@pytest.mark.django_db
def test_the_notes_list_shows_each_notes_sentiment_as_text(client, make_user):
    anna = person("anna@example.de")
    agent = make_user("Service")
    note_add(profile=anna, text="Kunde sehr verärgert, Ware defekt.", kind="complaint", channel="phone", author=agent)
    note_add(profile=anna, text="Kunde bedankt sich, sehr zufrieden.", kind="compliment", channel="phone",
             author=agent)
    note_add(profile=anna, text="Adresse geändert.", kind="note", channel="phone", author=agent)
    client.force_login(agent)
    page = client.get(reverse("profiles:detail", args=[anna.pk])).content.decode()
    notes = page[page.index('id="notes"'):]
    for label in ("negative", "positive", "neutral"):
        assert f">Sentiment: {label}</span>" in notes


@pytest.fixture
def source(db):
    source, _ = source_create(name="Call center", kind="http", channel="call_center")
    return source


def process(source, messages):
    inbox_store(source=source, messages=messages)
    return inbox_process_pending(source_id=source.pk)


@pytest.mark.django_db
def test_ingested_events_with_free_text_get_a_sentiment(source):
    result = process(source, [
        {"type": "track", "messageId": "n1", "userId": "u-1", "event": "Call Center Note",
         "properties": {"note": "Kunde droht mit Kündigung, sehr verärgert.", "subject": "Kündigung",
                        "language": "de"}, "timestamp": "2026-05-01T10:00:00Z"},
        {"type": "track", "messageId": "n2", "userId": "u-1", "event": "Survey Answered",
         "properties": {"feedback": "Fast delivery and friendly staff, thank you!"}},
        {"type": "track", "messageId": "n3", "userId": "u-1", "event": "Review Posted",
         "properties": {"review": "Schuhe sind toll und bequem", "sentiment": -0.25}},  # the sender's stays
        {"type": "track", "messageId": "n4", "userId": "u-1", "event": "Order Completed",
         "properties": {"total": 10, "message": "ok"}},  # no free text worth scoring
        {"type": "track", "messageId": "n5", "userId": "u-1", "event": "Chat Message",
         "properties": {"message": "Das Produkt funktioniert leider nicht"}, "context": {"locale": "de-DE"}},
    ])
    assert (result.processed, result.rejected) == (5, 0)
    events = {e.message_id: e.properties for e in Event.objects.filter(profile=Identity.objects.get(
        type="user_id", value="u-1").profile)}
    assert events["n1"]["sentiment_label"] == "negative" and events["n1"]["sentiment"] < -0.05
    assert events["n1"]["note"] == "Kunde droht mit Kündigung, sehr verärgert."  # the rest as sent
    assert events["n2"]["sentiment_label"] == "positive" and events["n2"]["sentiment"] > 0.05
    assert events["n3"]["sentiment"] == -0.25 and "sentiment_label" not in events["n3"]
    assert "sentiment" not in events["n4"]
    assert events["n5"]["sentiment_label"] == "negative"


@pytest.mark.django_db
def test_service_sentiment_is_the_mean_of_notes_and_ingested_feedback(source, make_user):
    process(source, [
        {"type": "track", "messageId": "n1", "userId": "u-1", "event": "Call Center Note",
         "properties": {"note": "Customer angry, parcel lost and refund still missing.", "language": "en"}},
        {"type": "track", "messageId": "n2", "userId": "u-2", "event": "Call Center Note",
         "properties": {"note": "Kundin bedankt sich für die tolle Beratung, sehr zufrieden.", "language": "de"}},
        {"type": "track", "messageId": "n3", "userId": "u-3", "event": "Order Completed",
         "properties": {"total": 10}},
    ])
    angry, happy, silent = (Identity.objects.get(type="user_id", value=v).profile for v in ("u-1", "u-2", "u-3"))
    note_add(profile=angry, text="Kunde will kündigen, völlig enttäuscht.", kind="intent_to_cancel",
             channel="phone", author=make_user("Service"))
    computed_traits_install()  # a transactional test's flush removed the stock traits the migration made
    trait = ComputedTrait.objects.get(key="service_sentiment")
    computed_trait_recompute(trait=trait)
    values = {v.profile_id: v.value for v in ComputedValue.objects.filter(trait=trait).select_related("trait")}
    scores = [e.properties["sentiment"] for e in Event.objects.filter(profile=angry).order_by("id")
              if "sentiment" in e.properties]
    assert len(scores) == 2
    assert values[angry.pk] == pytest.approx(sum(scores) / 2) and values[angry.pk] < -0.05
    assert values[happy.pk] > 0.05
    assert silent.pk not in values
    # The incremental refresh agrees with the full run.
    ComputedValue.objects.filter(trait=trait).delete()
    computed_values_refresh(profile_ids=[angry.pk, happy.pk, silent.pk])
    assert {v.profile_id: v.value for v in ComputedValue.objects.filter(trait=trait).select_related("trait")} == \
        pytest.approx(values)


@pytest.mark.django_db(transaction=True)
def test_the_demos_call_center_notes_carry_sentiment_and_fill_service_sentiment():
    call_command("seed_demo", "--profiles", "30", "--seed", "3", "--now", "2026-11-01T12:00:00Z",
                 stdout=StringIO(), stderr=StringIO())
    notes = list(Event.objects.filter(name="Call Center Note").values_list("profile_id", "properties"))
    assert len(notes) >= 10
    assert all(-1 <= p["sentiment"] <= 1 and p["sentiment_label"] in ("negative", "neutral", "positive")
               for _, p in notes)
    by_subject = {}
    for _, properties in notes:
        by_subject.setdefault(properties["subject"], []).append(properties["sentiment"])
    negative = [x for subject in ("Kündigung", "Cancellation", "Reklamation", "Complaint")
                for x in by_subject.get(subject, [])]
    assert negative and sum(negative) / len(negative) < -0.05
    computed_traits_install()  # a transactional test's flush removed the stock traits the migration made
    trait = ComputedTrait.objects.get(key="service_sentiment")
    computed_trait_recompute(trait=trait)
    recent = set(Event.objects.filter(name="Call Center Note", timestamp__gte=trait.last_run_at - timedelta(
        days=365)).values_list("profile_id", flat=True))
    assert recent and set(ComputedValue.objects.filter(trait=trait).values_list("profile_id", flat=True)) == recent
