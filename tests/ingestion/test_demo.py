"""The demo data: a deterministic, streamed generator with learnable behaviour, and ``manage.py seed_demo`` through
the real sources, imports and pipeline (and in bulk)."""

import hashlib
import json
import re
import subprocess
import sys
import tracemalloc
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from io import StringIO

import phonenumbers
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from consent.models import ConsentRecord
from ingestion.demo.generator import CRM_COLUMNS, Clock, demo_people, person_generate
from ingestion.demo.loaders import (
    CRM_MAPPING,
    DEMO_SOURCES,
    EMAIL_MAPPING,
    NOTE_EVENT,
    NOTES_MAPPING,
    _bulk_person,
    demo_sources_ensure,
)
from ingestion.mapping import mapping_apply
from ingestion.models import Import, InboxMessage, Source
from ingestion.services.pipeline import message_to_observation
from profiles.insights.sentiment import event_sentiment
from profiles.models import Event, Identity, Profile

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
NOW_ISO = "2025-06-01T12:00:00Z"


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def digest(people) -> str:
    sha = hashlib.sha256()
    for person in people:
        for key in ("web", "shop", "crm", "notes", "email"):
            sha.update(json.dumps(getattr(person, key), sort_keys=True, ensure_ascii=False).encode())
    return sha.hexdigest()


def auc(scores, labels) -> float:
    """The area under the ROC curve (Mann-Whitney), ties counting half."""
    ranked = sorted(zip(scores, labels, strict=True))
    positives = sum(labels)
    negatives = len(labels) - positives
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average_rank = (i + 1 + j) / 2
        rank_sum += average_rank * sum(1 for k in range(i, j) if ranked[k][1])
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


@pytest.fixture(scope="module")
def people():
    return list(demo_people(profiles=2000, seed=42, now=NOW))


# --- determinism ----------------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_data_byte_for_byte():
    first = digest(demo_people(profiles=300, seed=7, now=NOW))
    assert digest(demo_people(profiles=300, seed=7, now=NOW)) == first
    assert digest(demo_people(profiles=300, seed=8, now=NOW)) != first


def test_any_person_can_be_generated_alone_and_ids_do_not_depend_on_now():
    streamed = list(demo_people(profiles=50, seed=3, now=NOW, start=40))
    alone = person_generate(seed=3, index=45, clock=Clock.at(NOW))
    assert digest([alone]) == digest([streamed[5]])
    assert [p.index for p in streamed] == list(range(40, 50))

    later = person_generate(seed=3, index=45, clock=Clock.at(NOW + timedelta(days=30)))
    ids = [m["messageId"] for m in alone.web + alone.shop]
    assert [m["messageId"] for m in later.web + later.shop] == ids
    shift = ts(later.web[0]["timestamp"]) - ts(alone.web[0]["timestamp"])
    assert timedelta(days=29) < shift < timedelta(days=31)


def test_the_generator_draws_from_no_global_random_state():
    import random

    random.seed(1)
    before = digest(demo_people(profiles=20, seed=5, now=NOW))
    random.seed(2)
    random.random()
    assert digest(demo_people(profiles=20, seed=5, now=NOW)) == before


# --- streaming with flat memory -------------------------------------------------------------------------------------


def test_the_stream_holds_flat_memory_by_tracemalloc():
    def peak(count: int) -> int:
        tracemalloc.start()
        try:
            for _ in demo_people(profiles=count, seed=11, now=NOW):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(60), peak(600)
    # Ten times the people, about the same peak: one person at a time (a few hundred KiB at most).
    assert large < small * 2 + 256 * 1024, (small, large)
    assert large < 2 * 1024 * 1024


def test_generating_50000_people_keeps_the_process_small():
    """The full 50,000 in a child process (tracemalloc would slow it tenfold): its peak resident size stays far
    below what holding the people would take (about 2 GB)."""
    # VmHWM (this process's peak resident size; ru_maxrss would include the parent's, kept across exec).
    code = ("import re; from datetime import datetime, UTC; from ingestion.demo.generator import demo_people\n"
            "now = datetime(2025, 6, 1, tzinfo=UTC)\n"
            "n = sum(p.record_count for p in demo_people(profiles=50000, seed=1, now=now))\n"
            "status = open('/proc/self/status').read()\n"
            "print(n, re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))")
    result = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, capture_output=True, text=True,
                            check=True, timeout=540)
    records, max_rss_kib = map(int, result.stdout.split())
    assert records > 50000 * 10
    assert max_rss_kib < 100 * 1024, f"peak RSS {max_rss_kib // 1024} MiB"


# --- what the data holds --------------------------------------------------------------------------------------------


def test_everything_lies_in_the_last_18_months_with_events_today(people):
    stamps = [ts(m["timestamp"]) for p in people for m in p.web + p.shop + p.email]
    stamps += [ts(n["created_at"]) for p in people for n in p.notes]
    assert max(stamps) <= NOW
    assert min(stamps) >= NOW - timedelta(days=560)
    today = [s for s in stamps if s.date() == NOW.date()]
    assert len(today) > 10
    assert sum(1 for s in stamps if s > NOW - timedelta(days=7)) > 200


def test_web_sessions_are_anonymous_first_and_some_log_in_later(people):
    linked = unlinked = 0
    for person in people:
        seen_anonymous = set()
        for message in person.web:
            if message["type"] == "identify":
                assert message["userId"] and message["traits"]["email"]
                if message["anonymousId"] in seen_anonymous:
                    linked += 1
            elif "userId" not in message:
                seen_anonymous.add(message["anonymousId"])
        devices = set(person.truth["anonymous_ids"])
        unlinked += len(devices - set(person.truth["linked_anonymous_ids"]))
    assert linked > 300
    assert unlinked > 300  # devices that never log in stay anonymous
    assert sum(1 for p in people if len(p.truth["anonymous_ids"]) > 1) > 500


def test_orders_have_the_segment_ecommerce_shape_and_some_carts_are_abandoned(people):
    orders = [m for p in people for m in p.shop if m.get("event") == "Order Completed"]
    assert len(orders) > 2000
    for order in orders[:200]:
        props = order["properties"]
        assert props["currency"] == "EUR" and props["order_id"] and props["total"] > 0
        assert props["products"] and {"product_id", "sku", "category", "price", "quantity"} <= set(props["products"][0])
        assert order.get("userId") or (order["anonymousId"] and order["context"]["traits"]["email"])
    abandoned = 0
    for person in people:
        order_times = [ts(m["timestamp"]) for m in person.shop if m.get("event") == "Order Completed"]
        for cart in {m["properties"]["cart_id"]: ts(m["timestamp"]) for m in person.web
                     if m.get("event") == "Product Added"}.values():
            if not any(cart <= at <= cart + timedelta(hours=24) for at in order_times):
                abandoned += 1
    assert abandoned > 200
    guests = sum(1 for o in orders if "userId" not in o)
    assert 0 < guests < len(orders) / 2


def test_crm_contacts_have_typos_national_phones_and_duplicates(people):
    rows = [(p, row) for p in people for row in p.crm]
    assert all(set(row) == set(CRM_COLUMNS) for _, row in rows)
    variants = Counter(v for p in people for c in p.truth["crm"] for v in c["variants"])
    for kind in ("umlaut_dropped", "umlaut_spelled", "transposed", "nickname", "other_email", "upper"):
        assert variants[kind] > 5, kind
    differs = [(p.truth["last_name"], row["last_name"]) for p, row in rows if row["last_name"] != p.truth["last_name"]]
    assert any("ü" in true and ("ue" in crm or "u" in crm) for true, crm in differs)
    assert sum(1 for p in people if len(p.crm) == 2) > 10  # the same person twice in the CRM
    other_email = [p for p, row in rows if row["email"] and row["email"].lower() != p.truth["email"]]
    assert len(other_email) > 20  # the shop knows another address
    phones = [row["phone"] for _, row in rows if row["phone"]]
    assert any(phone.startswith("01") and " " in phone for phone in phones)  # 0151 23456789
    assert any(phone.startswith("+49 (") for phone in phones)  # +49 (151) 234-56789


def test_people_get_unique_valid_emails_and_phone_numbers(people):
    emails = [p.truth["email"] for p in people] + [p.truth["other_email"] for p in people]
    assert len(set(emails)) == len(emails)
    phones = [p.truth["phone"] for p in people]
    assert len(set(phones)) == len(phones)
    for phone in phones:
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone)), phone


def test_service_notes_announce_cancellation_in_german_and_english(people):
    notes = [n for p in people for n in p.notes]
    cancel = [n for n in notes if n["subject"] in ("Kündigung", "Cancellation")]
    assert {n["language"] for n in cancel} == {"de", "en"}
    assert any("kündig" in n["note"].lower() for n in cancel)
    assert any("cancel" in n["note"].lower() for n in cancel)
    assert {n["subject"] for n in notes} >= {"Reklamation", "Complaint", "Anfrage", "Enquiry", "Feedback"}
    for note in notes:
        assert "{" not in note["note"]
        assert note["contact_id"] and (note.get("email") or note.get("phone"))
    male = [n for p in people for n in p.notes if not p.truth["female"] and n["language"] == "de"]
    assert not any("Kundin" in n["note"] for n in male)


def test_email_engagement_and_consent(people):
    events = Counter(e["event"] for p in people for e in p.email)
    assert events["Email Delivered"] > events["Email Opened"] > events["Email Link Clicked"] > 0
    assert events["Email Unsubscribed"] > 20
    with_consent = [p for p in people if p.truth["consent"] is not None]
    assert 0.7 * len(people) < len(with_consent) < 0.95 * len(people)
    assert any(not p.truth["consent"]["email_marketing"] for p in with_consent)
    for person in with_consent[:100]:
        prefs = [m["context"]["consent"]["categoryPreferences"] for m in person.web]
        assert all(set(pref) == {"email_marketing", "personalization", "analytics"} for pref in prefs)
    for person in people:
        if person.email:
            assert person.truth["consent"]["email_marketing"]  # only subscribers get campaigns


def test_churners_can_be_told_apart_better_than_by_recency_alone():
    """With features known at a cutoff 120 days ago, a simple score of the signals the data promises (slowing
    orders, negative notes, unsubscribes, fading e-mail opens) predicts who orders no more clearly better than
    recency alone."""
    people = demo_people(profiles=3000, seed=42, now=NOW)
    cut = NOW - timedelta(days=120)
    negative = ("kündig", "cancel", "verärgert", "unzufrieden", "enttäuscht", "ärgerlich", "genervt",
                "disappointed", "unhappy", "angry", "upset", "frustrated", "complain")
    labels, recency, rich = [], [], []
    for person in people:
        orders = sorted(ts(m["timestamp"]) for m in person.shop if m.get("event") == "Order Completed")
        before = [o for o in orders if o < cut]
        if len(before) < 2:
            continue
        labels.append(not any(o >= cut for o in orders))
        days_since = (cut - before[-1]).days
        gaps = [(b - a).days for a, b in zip(before, before[1:], strict=False)]
        slowing = gaps[-1] / (sum(gaps) / len(gaps) + 1)
        complaints = sum(1 for n in person.notes
                         if ts(n["created_at"]) < cut and any(w in n["note"].lower() for w in negative))
        unsubscribed = any(e["event"] == "Email Unsubscribed" and ts(e["timestamp"]) < cut for e in person.email)
        recent = [e["event"] for e in person.email if cut - timedelta(days=120) <= ts(e["timestamp"]) < cut]
        opens = recent.count("Email Opened") / recent.count("Email Delivered") if "Email Delivered" in recent else .3
        per_month = len(before) / max(1, (cut - before[0]).days) * 30
        recency.append(days_since)
        rich.append(days_since / 60 + slowing + 1.5 * complaints + 2 * unsubscribed - 2 * opens - per_month)
    assert 300 < sum(labels) < len(labels) - 300
    assert auc(rich, labels) > auc(recency, labels) + 0.06
    assert auc(rich, labels) > 0.7


def test_co_purchases_make_item_to_item_recommendations_beat_popularity(people):
    histories = {}
    for person in people:
        orders = sorted((ts(m["timestamp"]), [line["product_id"] for line in m["properties"]["products"]])
                        for m in person.shop if m.get("event") == "Order Completed")
        histories[person.index] = orders
    together, popularity = defaultdict(Counter), Counter()
    for orders in histories.values():
        items = {item for _, products in orders[:-1] or orders for item in products}
        for a in items:
            popularity[a] += 1
            for b in items - {a}:
                together[a][b] += 1
    tests = hits_popular = hits_item = 0
    for orders in histories.values():
        if len(orders) < 2:
            continue
        bought = {item for _, products in orders[:-1] for item in products}
        wanted = set(orders[-1][1]) - bought
        if not wanted:
            continue
        tests += 1
        popular = [item for item, _ in popularity.most_common() if item not in bought][:5]
        scores = Counter()
        for a in bought:
            for b, count in together[a].items():
                if b not in bought:
                    scores[b] += count / popularity[b] ** 0.5
        hits_popular += bool(wanted & set(popular))
        hits_item += bool(wanted & {item for item, _ in scores.most_common(5)})
    assert tests > 300
    assert hits_item / tests > 1.5 * hits_popular / tests


def test_frequent_buyers_spend_more_per_order(people):
    buyers = [(p.truth["orders"], p.truth["revenue"] / p.truth["orders"]) for p in people if p.truth["orders"]]
    buyers.sort()
    quarter = len(buyers) // 4
    low = sum(value for _, value in buyers[:quarter]) / quarter
    high = sum(value for _, value in buyers[-quarter:]) / quarter
    assert high > low * 1.1
    personas = Counter(p.truth["persona"] for p in people)
    assert set(personas) == {"loyal", "regular", "occasional", "churner", "browser"}


# --- bulk rows are what processing makes of the same records --------------------------------------------------------


def test_bulk_events_match_what_the_pipeline_derives():
    sources = {key: Source(slug=spec["slug"], channel=spec["channel"]) for key, spec in DEMO_SOURCES.items()}
    purposes = {"email_marketing": 1, "personalization": 2, "analytics": 3}
    checked = Counter()
    for person in demo_people(profiles=60, seed=9, now=NOW):
        _, identities, events, _ = _bulk_person(person, 1, sources, purposes, NOW)
        expected = [message_to_observation(m, source=sources["web"]) for m in person.web]
        expected += [message_to_observation(m, source=sources["shop"]) for m in person.shop]
        for key, spec in (("notes", NOTES_MAPPING), ("email", EMAIL_MAPPING)):
            expected += [message_to_observation(
                mapping_apply(spec, record, source_slug=sources[key].slug, collection="webhook"),
                source=sources[key]) for record in getattr(person, key)]
        by_id = {e[9]: e for e in events}
        for obs in expected:
            row = by_id[obs.message_id]
            stored = {**obs.properties, **(event_sentiment(obs.properties, obs.context) or {})}  # as events_insert
            assert (row[1], row[2], row[3], row[4], row[6], row[8]) == (
                obs.event_type, obs.event_name, obs.channel, stored, obs.timestamp, obs.source)
            checked[obs.channel] += 1
        for row in person.crm:
            obs = message_to_observation(mapping_apply(CRM_MAPPING, row, source_slug="crm", collection="x"),
                                         source=sources["crm"])
            assert by_id[f"crm-{row['customer_no']}"][4] == obs.properties
        assert len({(kind, value) for _, kind, value, *_ in identities}) == len(identities)
    assert set(checked) == {"web", "shop", "call_center", "email"}


# --- seed_demo ------------------------------------------------------------------------------------------------------


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, "--now", NOW_ISO, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_seed_demo_goes_through_the_sources_imports_and_pipeline():
    output = seed("--profiles", "200", "--seed", "5")
    assert "200 people" in output
    assert InboxMessage.objects.filter(status=InboxMessage.Status.PENDING).count() == 0
    assert InboxMessage.objects.filter(status=InboxMessage.Status.REJECTED).count() == 0
    assert InboxMessage.objects.filter(status=InboxMessage.Status.PROCESSED).count() > 200 * 10
    assert Profile.objects.count() >= 200
    assert set(Source.objects.values_list("slug", flat=True)) >= {s["slug"] for s in DEMO_SOURCES.values()}
    channels = set(Event.objects.values_list("channel", flat=True).distinct())
    assert channels >= {"web", "shop", "crm", "call_center", "email"}
    assert Event.objects.filter(name=NOTE_EVENT, properties__note__icontains="kündig").exists()
    assert Event.objects.filter(name="Order Completed").exists()
    crm_import = Import.objects.get(source__slug="crm")
    assert crm_import.status == Import.Status.DONE and crm_import.rows_failed == 0 and crm_import.rows_stored > 50
    # The transformations standardized what the sources sent: phones in E.164, emails lowercase, countries ISO.
    phones = list(Identity.objects.filter(type="phone").values_list("value", flat=True))
    assert phones and sum(p.startswith("+") and p[1:].isdigit() for p in phones) > 0.9 * len(phones)
    assert not Identity.objects.filter(type="email", value__regex=r"[A-Z]").exists()
    countries = Counter(Profile.objects.filter(identities__value__startswith="crm:")
                        .values_list("traits__country", flat=True))
    assert {"DE", "AT", "CH"} <= set(countries)  # from "Deutschland", "Österreich", "Schweiz", ...
    assert sum(n for country, n in countries.items() if len(country) == 2) > 0.8 * sum(countries.values())
    # A web session that logged in links its anonymous id and the user id on one profile.
    assert Profile.objects.filter(identities__type="anonymous_id").filter(identities__type="user_id").exists()

    # The same seed again stores nothing new (message ids are deterministic; the CRM export was imported).
    messages, events = InboxMessage.objects.count(), Event.objects.count()
    again = seed("--profiles", "200", "--seed", "5")
    assert re.search(r"website\s+0 stored\s+[\d,]+ already there", again)
    assert (InboxMessage.objects.count(), Event.objects.count()) == (messages, events)
    assert Import.objects.filter(source__slug="crm").count() == 1


@pytest.mark.django_db(transaction=True)
def test_seed_demo_if_empty_does_nothing_the_second_time():
    seed("--profiles", "20", "--if-empty")
    counts = (Profile.objects.count(), Event.objects.count(), InboxMessage.objects.count())
    assert counts[0] > 0
    output = seed("--profiles", "20", "--if-empty", "--seed", "99")
    assert "nothing to do" in output
    assert (Profile.objects.count(), Event.objects.count(), InboxMessage.objects.count()) == counts


@pytest.mark.django_db(transaction=True)
def test_seed_demo_bulk_writes_profiles_identities_events_and_consent():
    output = seed("--profiles", "120", "--bulk", "--chunk", "50", "--seed", "12")
    assert "Bulk-loaded 120 profiles" in output
    people = list(demo_people(profiles=120, seed=12, now=NOW))
    assert Profile.objects.count() == 120
    assert Event.objects.count() == sum(p.record_count for p in people)
    assert InboxMessage.objects.count() == 0
    for person in people[:20]:
        profile = Identity.objects.get(type="email", value=person.truth["email"]).profile
        devices = {m["anonymousId"] for m in person.web}
        assert devices == set(person.truth["anonymous_ids"])
        assert set(profile.identities.filter(type="anonymous_id").values_list("value", flat=True)) == devices
        assert profile.traits["last_name"] == person.truth["last_name"]
        assert profile.events.count() == person.record_count
    notes = Event.objects.filter(name="Call Center Note")
    assert notes.count() == sum(len(p.notes) for p in people) > 0
    assert all(isinstance(e.properties.get("sentiment"), float) for e in notes)  # as the pipeline scores them
    consenting = sum(1 for p in people if p.truth["consent"] is not None)
    assert ConsentRecord.objects.filter(purpose__key="analytics").count() == consenting
    assert ConsentRecord.objects.filter(status="withdrawn").count() == sum(
        1 for p in people if p.truth["unsubscribed"] and p.truth["consent"]["email_marketing"])
    with pytest.raises(CommandError, match="loaded already"):
        seed("--profiles", "120", "--bulk", "--seed", "12")
    assert Profile.objects.count() == 120


@pytest.mark.django_db
def test_demo_sources_are_created_once_with_mappings_and_transformations():
    first = demo_sources_ensure()
    again = demo_sources_ensure()
    assert {key: s.pk for key, s in first.items()} == {key: s.pk for key, s in again.items()}
    assert Source.objects.count() == 5
    assert first["notes"].settings["webhook"]["mapping"]["event"] == NOTE_EVENT
    assert first["crm"].kind == "file" and first["web"].kind == "http" and first["email"].kind == "webhook"


@pytest.mark.django_db
def test_seed_demo_rejects_bad_arguments():
    with pytest.raises(CommandError, match="--profiles"):
        seed("--profiles", "0")
    with pytest.raises(CommandError, match="--now"):
        call_command("seed_demo", "--now", "yesterday", stdout=StringIO(), stderr=StringIO())
