"""Sources: write keys shown once and stored hashed, the on/off switch, live stats, the UI (list, create, source
page with the live debugger, toggle) and the API (CRUD, stats, key rotation, inbound messages)."""

import base64
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ingestion import selectors
from ingestion.models import InboxCount, InboxMessage, Source
from ingestion.services import (
    inbox_reject,
    inbox_store,
    source_create,
    source_enabled_set,
    source_key_rotate,
    write_key_hash,
)
from ingestion.services.inbox import inbox_counts_rebuild
from ingestion.services.pipeline import inbox_process_batch, inbox_process_pending
from ingestion.services.plans import blocked_messages_replay, tracking_plan_save

pytestmark = pytest.mark.django_db


def track(key, **fields):
    body = {"userId": "u-1", "event": "Clicked", **fields}
    return Client().post("/v1/track", json.dumps(body), content_type="application/json",
                         HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode())


def ui_client(make_user, role):
    client = Client()
    client.force_login(make_user(role))
    return client


# --- services ---------------------------------------------------------------------------------------------------


def test_write_key_is_random_and_only_its_hash_is_stored():
    source, key = source_create(name="Web shop", kind="http")
    other, other_key = source_create(name="App", kind="http")
    assert len(key) >= 32 and key != other_key
    assert source.write_key_hash == write_key_hash(key) and key not in source.write_key_hash
    assert source.write_key_prefix == key[:8]
    assert source.slug == "web-shop"
    assert not Source.objects.filter(write_key_hash=key).exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "X", "kind": "ftp"}, "Unknown source kind"),
    ({"name": "!!!", "kind": "http"}, "letter or digit"),
    ({"name": "New", "kind": "http"}, "reserved"),
])
def test_source_create_refuses_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        source_create(**kwargs)


def test_slug_is_unique():
    source_create(name="Web", kind="http")
    with pytest.raises(ValueError, match="exists already"):
        source_create(name="Web", kind="file")


def test_switch_off_and_on_takes_effect_at_once_in_this_process():
    source, key = source_create(name="Web", kind="http")
    assert track(key).status_code == 200
    source_enabled_set(source=source, enabled=False)
    assert track(key).status_code == 403
    source_enabled_set(source=source, enabled=True)
    assert track(key).status_code == 200


def test_rotating_the_key_retires_the_old_one():
    source, old = source_create(name="Web", kind="http")
    assert track(old).status_code == 200
    new = source_key_rotate(source=source)
    assert track(old).status_code == 401
    assert track(new).status_code == 200


def test_live_stats_count_every_status_today_and_the_last_message():
    source, key = source_create(name="Web", kind="http")
    empty = selectors.source_stats(source=source)
    assert empty == {"received_today": 0, "pending": 0, "processed": 0, "rejected": 0, "total": 0,
                     "last_received_at": None}
    inbox_store(source=source, messages=[{"type": "track", "userId": "u", "event": "A"},
                                         {"type": "track", "userId": "u", "event": "B"}])
    inbox_reject(source=source, messages_with_reasons=[({"type": "track"}, "userId: missing")])
    assert inbox_process_batch(source_id=source.pk, limit=1).processed == 1  # the oldest: A
    stats = selectors.source_stats(source=source)
    assert (stats["received_today"], stats["pending"], stats["processed"], stats["rejected"], stats["total"]) == (
        3, 1, 1, 1, 3)
    assert stats["last_received_at"] == InboxMessage.objects.latest("received_at").received_at
    listed = selectors.sources_with_stats().get(pk=source.pk)
    assert (listed.pending, listed.processed, listed.rejected, listed.total) == (1, 1, 1, 3)


def test_live_stats_are_kept_counts_that_follow_every_status_change():
    source, _key = source_create(name="Web", kind="http")
    other, _ = source_create(name="App", kind="http")
    yesterday = timezone.now() - timedelta(days=1)
    inbox_store(source=source, messages=[{"type": "track", "userId": "u", "event": "Old"}], received_at=yesterday)
    inbox_store(source=source, messages=[{"type": "track", "userId": "u", "event": f"E{i}"} for i in range(4)])
    inbox_store(source=other, messages=[{"type": "track", "userId": "v", "event": "X"}])
    tracking_plan_save(source=source, unplanned="block", events={"E0": {"type": "object"}})
    result = inbox_process_pending(source_id=source.pk)
    assert (result.processed, result.rejected) == (1, 4)  # E0 is planned; Old, E1-E3 are blocked
    # The kept counts, not a count of inbox rows: the rows are what they say, by day received.
    assert {(c.day, c.processed, c.rejected) for c in InboxCount.objects.filter(source=source)
            if c.processed or c.rejected} == {(timezone.localdate(yesterday), 0, 1), (timezone.localdate(), 1, 3)}
    stats = selectors.source_stats(source=source)
    assert (stats["received_today"], stats["pending"], stats["processed"], stats["rejected"], stats["total"]) == (
        4, 0, 1, 4, 5)
    assert selectors.source_stats(source=other)["pending"] == 1

    # A replay takes the blocked messages out of "rejected" until they are processed again.
    tracking_plan_save(source=source, unplanned="allow", events={"E0": {"type": "object"}})
    assert blocked_messages_replay(source=source) == 4
    stats = selectors.source_stats(source=source)
    assert (stats["pending"], stats["processed"], stats["rejected"], stats["total"]) == (4, 1, 0, 5)
    inbox_process_pending(source_id=source.pk)
    stats = selectors.source_stats(source=source)
    assert (stats["received_today"], stats["pending"], stats["processed"], stats["rejected"], stats["total"]) == (
        4, 0, 5, 0, 5)

    # Counting the rows again gives the same figures; a change made outside the services is repaired by it.
    InboxMessage.objects.filter(source=source, payload__event="E3").update(status="rejected", reason="by hand")
    assert selectors.source_stats(source=source)["rejected"] == 0
    inbox_counts_rebuild(source=source)
    stats = selectors.source_stats(source=source)
    assert (stats["received_today"], stats["processed"], stats["rejected"], stats["total"]) == (4, 4, 1, 5)
    assert selectors.source_stats(source=other)["pending"] == 1


def test_create_source_command_prints_the_key_on_its_last_line(capsys):
    call_command("create_source", "--kind", "http", "Web shop")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert Source.objects.get(write_key_hash=write_key_hash(key)).slug == "web-shop"
    assert track(key).status_code == 200


# --- UI ---------------------------------------------------------------------------------------------------------


def test_source_list_links_to_source_pages_and_shows_counts(make_user):
    source, key = source_create(name="Web shop", kind="http")
    track(key)
    page = ui_client(make_user, "Marketing").get(reverse("ingestion:source-list"))
    assert page.status_code == 200
    html = page.content.decode()
    assert reverse("ingestion:source-detail", args=[source.slug]) in html
    assert "Web shop" in html
    assert reverse("ingestion:source-create") not in html  # Marketing may look, not add


def test_create_form_shows_the_write_key_once(make_user):
    client = ui_client(make_user, "Admin")
    assert client.get(reverse("ingestion:source-create")).status_code == 200
    response = client.post(reverse("ingestion:source-create"), {"name": "Call center", "kind": "http",
                                                                "channel": "call_center"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    source = Source.objects.get(slug="call-center")
    html = response.content.decode()
    key = html.split('id="write-key" class="input mono" type="text" value="')[1].split('"')[0]
    assert source.write_key_hash == write_key_hash(key)
    assert track(key).status_code == 200
    # The source page never shows it again.
    assert key not in client.get(reverse("ingestion:source-detail", args=[source.slug])).content.decode()


def test_create_form_shows_errors(make_user):
    client = ui_client(make_user, "Admin")
    source_create(name="Web", kind="http")
    response = client.post(reverse("ingestion:source-create"), {"name": "Web", "kind": "http"})
    assert response.status_code == 200
    assert "exists already" in response.content.decode()
    response = client.post(reverse("ingestion:source-create"), {"name": "", "kind": "nope"})
    assert "This field is required" in response.content.decode()
    assert Source.objects.count() == 1


def test_only_those_who_may_add_sources_create_them(make_user):
    response = ui_client(make_user, "Marketing").post(reverse("ingestion:source-create"),
                                                      {"name": "Web", "kind": "http"})
    assert response.status_code == 403
    assert not Source.objects.exists()


def test_source_page_shows_stats_and_the_live_debugger(make_user):
    source, key = source_create(name="Web", kind="http")
    track(key, messageId="good-one")
    Client().post("/v1/track", json.dumps({"event": "No id"}), content_type="application/json",
                  HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode())
    client = ui_client(make_user, "Admin")
    page = client.get(reverse("ingestion:source-detail", args=[source.slug]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="source-live"' in html and 'hx-trigger="every 3s"' in html
    assert "good-one" in html and "A userId or an anonymousId is required." in html
    assert 'data-metric="received_today"' in html
    # The polled partial alone: stats and messages, not the whole page.
    live = client.get(reverse("ingestion:source-live", args=[source.slug]), HTTP_HX_REQUEST="true")
    assert live.status_code == 200
    live_html = live.content.decode()
    assert live_html.lstrip().startswith('<div id="source-live"') and "<html" not in live_html
    assert "good-one" in live_html
    rejected_only = client.get(reverse("ingestion:source-live", args=[source.slug]) + "?status=rejected",
                               HTTP_HX_REQUEST="true").content.decode()
    assert "good-one" not in rejected_only and "A userId or an anonymousId" in rejected_only


def test_debugger_masks_personal_data_for_roles_without_pii(make_user):
    source, key = source_create(name="Web", kind="http")
    Client().post("/v1/identify", json.dumps({"userId": "u-secret", "traits": {"email": "ada@example.com"}}),
                  content_type="application/json",
                  HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode())
    url = reverse("ingestion:source-detail", args=[source.slug])
    masked = ui_client(make_user, "Marketing").get(url).content.decode()
    assert "ada@example.com" not in masked and "u-secret" not in masked
    assert "a•••@e•••.com" in masked
    full = ui_client(make_user, "Privacy").get(url).content.decode()
    assert "ada@example.com" in full


def test_source_page_has_slots_for_violations_and_imports(make_user):
    source, _ = source_create(name="Web", kind="http")
    response = ui_client(make_user, "Admin").get(reverse("ingestion:source-detail", args=[source.slug]))
    for flag, template in {"violations_slot": "ingestion/_source_violations.html",
                           "imports_slot": "ingestion/_source_imports.html"}.items():
        assert flag in response.context
        assert response.context[flag] == (template in [t.name for t in response.templates])


def test_toggle_switches_with_htmx_and_a_toast(make_user):
    source, key = source_create(name="Web", kind="http")
    client = ui_client(make_user, "Admin")
    url = reverse("ingestion:source-toggle", args=[source.slug])
    response = client.post(url, {"enabled": "false"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'id="source-toggle"' in response.content.decode() and "Switch on" in response.content.decode()
    trigger = json.loads(response["HX-Trigger"])
    assert trigger["toast"]["level"] == "success" and "off" in trigger["toast"]["message"]
    assert trigger["sourceChanged"] == {"slug": source.slug}
    source.refresh_from_db()
    assert not source.enabled
    assert track(key).status_code == 403
    plain = client.post(url, {"enabled": "true"})
    assert plain.status_code == 302
    source.refresh_from_db()
    assert source.enabled


def test_toggle_needs_change_permission_and_post(make_user):
    source, _ = source_create(name="Web", kind="http")
    url = reverse("ingestion:source-toggle", args=[source.slug])
    assert ui_client(make_user, "Marketing").post(url, {"enabled": "false"}).status_code == 403
    assert ui_client(make_user, "Admin").get(url).status_code == 405
    source.refresh_from_db()
    assert source.enabled


# --- API --------------------------------------------------------------------------------------------------------


def test_api_create_returns_the_write_key_once(api_as):
    client = api_as("Admin")
    response = client.post("/api/v1/sources/", {"name": "Shop", "kind": "http", "channel": "shop"}, format="json")
    assert response.status_code == 201, response.content
    key = response.json()["write_key"]
    assert track(key).status_code == 200
    detail = client.get(f"/api/v1/sources/{response.json()['id']}/").json()
    assert "write_key" not in detail and detail["write_key_prefix"] == key[:8]
    assert detail["pending"] == 1


def test_api_create_errors_name_the_field(api_as):
    client = api_as("Admin")
    source_create(name="Shop", kind="http")
    response = client.post("/api/v1/sources/", {"name": "Shop2", "kind": "ftp", "slug": "shop"}, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"kind", "slug"}


def test_api_update_switch_and_delete(api_as):
    client = api_as("Admin")
    source, key = source_create(name="Shop", kind="http")
    response = client.patch(f"/api/v1/sources/{source.pk}/", {"enabled": False, "name": "Shop (old)",
                                                              "slug": "ignored", "kind": "file"}, format="json")
    assert response.status_code == 200
    source.refresh_from_db()
    assert (source.enabled, source.name, source.slug, source.kind) == (False, "Shop (old)", "shop", "http")
    assert track(key).status_code == 403
    assert client.delete(f"/api/v1/sources/{source.pk}/").status_code == 204
    assert not Source.objects.exists()


def test_api_stats_and_rotate_key(api_as):
    client = api_as("Admin")
    source, old = source_create(name="Shop", kind="http")
    track(old)
    stats = client.get(f"/api/v1/sources/{source.pk}/stats/").json()
    assert stats["pending"] == 1 and stats["received_today"] == 1
    new = client.post(f"/api/v1/sources/{source.pk}/rotate-key/").json()["write_key"]
    assert track(old).status_code == 401 and track(new).status_code == 200


def test_api_sources_permissions(api_as):
    source, _ = source_create(name="Shop", kind="http")
    marketing = api_as("Marketing")
    assert marketing.get("/api/v1/sources/").status_code == 200
    assert marketing.post("/api/v1/sources/", {"name": "X", "kind": "http"}, format="json").status_code == 403
    assert marketing.patch(f"/api/v1/sources/{source.pk}/", {"enabled": False}, format="json").status_code == 403
    assert api_as("Sales").get("/api/v1/sources/").status_code == 403


def test_api_inbox_messages_filters_and_masking(api_as):
    web, web_key = source_create(name="Web", kind="http")
    shop, shop_key = source_create(name="Shop", kind="http")
    Client().post("/v1/identify", json.dumps({"userId": "u-9", "traits": {"email": "ada@example.com"}}),
                  content_type="application/json",
                  HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{web_key}:".encode()).decode())
    track(web_key, event="")  # rejected
    track(shop_key)
    privacy = api_as("Privacy")
    rows = privacy.get("/api/v1/inbox-messages/?source=web").json()["results"]
    assert {r["status"] for r in rows} == {"pending", "rejected"} and len(rows) == 2
    rejected = privacy.get("/api/v1/inbox-messages/?source=web&status=rejected").json()["results"]
    assert len(rejected) == 1 and "event" in rejected[0]["reason"]
    assert privacy.get("/api/v1/inbox-messages/?type=identify").json()["results"][0]["payload"]["traits"] == {
        "email": "ada@example.com"}
    masked = api_as("Marketing").get("/api/v1/inbox-messages/?type=identify").json()["results"][0]["payload"]
    assert masked["traits"]["email"] != "ada@example.com" and masked["userId"] != "u-9"
    assert api_as("Admin").post("/api/v1/inbox-messages/", {}, format="json").status_code == 405  # read-only
