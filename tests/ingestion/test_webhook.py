"""Webhook sources: POST any JSON to /v1/webhook/<slug>, authenticated by the source's write key (HTTP Basic or
?key=), mapped by the source's field mapping; bad records named by field and kept as rejected, valid ones stored."""

import base64
import gzip
import json

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.models import InboxMessage
from ingestion.services import connectors, source_create

MAPPING = {"type": "track", "event": "Order Paid", "event_from": None, "fields": [
    {"from": "customer.email", "to": "userId", "type": "string"},
    {"from": "order.id", "to": "externalId", "type": "string"},
    {"from": "order.total", "to": "properties.total", "type": "float"},
    {"from": "order.paid_at", "to": "timestamp", "type": "datetime"},
]}
ORDER = {"order": {"id": "o-1", "total": "19.90", "paid_at": "2025-03-01T10:00:00Z"},
         "customer": {"email": "ann@example.com"}}



@pytest.fixture
def hook(db):
    source, key = source_create(name="Shop webhooks", kind="webhook", slug="shop-hooks")
    connectors.webhook_settings_save(source=source, mapping=MAPPING)
    return source, key


def post(client, body, *, key=None, basic=None, slug="shop-hooks", raw=None, **headers):
    url = f"/v1/webhook/{slug}" + (f"?key={key}" if key else "")
    if basic:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{basic}:".encode()).decode()
    data = raw if raw is not None else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", **headers)


def messages(source, status="pending"):
    return list(InboxMessage.objects.filter(source=source, status=status).order_by("id"))


def test_one_object_with_basic_auth_is_mapped_and_stored(client, hook):
    source, key = hook
    response = post(client, ORDER, basic=key)
    assert response.status_code == 200
    assert response.json() == {"success": True, "stored": 1, "duplicates": 0}
    [message] = messages(source)
    payload = message.payload
    assert payload["type"] == "track" and payload["event"] == "Order Paid"
    assert payload["userId"] == "ann@example.com" and payload["properties"] == {"total": 19.9}
    assert payload["timestamp"] == "2025-03-01T10:00:00Z"
    assert payload["context"]["externalIds"] == [
        {"id": "o-1", "type": "shop-hooks", "collection": "webhook", "encoding": "none"}]
    assert message.message_id.startswith(f"wh-{source.pk}-")


def test_the_key_in_the_url_works_for_senders_that_only_take_a_url(client, hook):
    source, key = hook
    assert post(client, ORDER, key=key).status_code == 200
    assert len(messages(source)) == 1


def test_a_retried_delivery_is_stored_once(client, hook):
    source, key = hook
    assert post(client, ORDER, key=key).json()["stored"] == 1
    assert post(client, ORDER, key=key).json() == {"success": True, "stored": 0, "duplicates": 1}
    assert len(messages(source)) == 1


def test_an_array_with_bad_records_names_each_field_and_keeps_the_valid_ones(client, hook):
    source, key = hook
    body = [ORDER,
            {"order": {"id": "o-2", "total": "lots"}, "customer": {"email": "bob@example.com"}},
            {"order": {"id": "o-3", "total": 5}},
            {"order": {"id": "o-4", "total": 7, "paid_at": "yesterday"}, "customer": {"email": "cy@example.com"}},
            "not an object",
            {"order": {"id": "o-5", "total": 1}, "customer": {"email": "dee@example.com"}}]
    response = post(client, body, basic=key)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "3 of 6 records are not valid and were rejected; the other 3 were accepted."
    fields = error["fields"]
    assert "expected a number" in fields["1.order.total"][0]
    assert "no value for userId, anonymousId or externalId" not in json.dumps(fields)  # o-3 has an externalId
    assert set(fields) == {"1.order.total", "3.order.paid_at", "4"}
    stored = sorted(m.payload["context"]["externalIds"][0]["id"] for m in messages(source))
    assert stored == ["o-1", "o-3", "o-5"]
    rejected = messages(source, "rejected")
    assert len(rejected) == 3
    assert any("webhook record 1 (field order.total): expected a number" in m.reason for m in rejected)


def test_records_at_a_path_of_the_body(client, hook):
    source, key = hook
    connectors.webhook_settings_save(source=source, mapping=MAPPING, records_path="data.items")
    response = post(client, {"data": {"items": [ORDER, {**ORDER, "order": {"id": "o-9", "total": 3}}]}}, key=key)
    assert response.status_code == 200 and response.json()["stored"] == 2
    response = post(client, {"data": {}}, key=key)
    assert response.status_code == 400
    assert "no list or object at 'data.items'" in response.json()["error"]["message"]


@pytest.mark.parametrize(("auth", "status", "code"), [
    ({}, 401, "not_authenticated"),
    ({"key": "wrong-key"}, 401, "not_authenticated"),
    ({"basic": "wrong-key"}, 401, "not_authenticated"),
])
def test_unknown_or_missing_keys_answer_401(client, hook, auth, status, code):
    response = post(client, ORDER, **auth)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not InboxMessage.objects.exists()


def test_another_sources_key_is_refused(client, hook, db):
    _, other_key = source_create(name="Other hooks", kind="webhook", slug="other-hooks")
    assert post(client, ORDER, key=other_key).status_code == 401


def test_a_disabled_source_answers_403_and_a_non_webhook_source_404(client, hook):
    source, key = hook
    source.enabled = False
    source.save()
    assert post(client, ORDER, key=key).status_code == 403
    _, http_key = source_create(name="Web", kind="http", slug="web")
    assert post(client, ORDER, key=http_key, slug="web").status_code == 404


def test_bad_bodies_get_clear_errors_and_are_kept_as_rejected(client, hook):
    source, key = hook
    response = post(client, None, key=key, raw="{not json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    response = post(client, None, key=key, raw="42")
    assert response.status_code == 400 and "JSON object or an array" in response.json()["error"]["message"]
    too_big = json.dumps({"blob": "x" * (connectors.WEBHOOK_MAX_BODY_BYTES + 10)})
    assert post(client, None, key=key, raw=too_big).status_code == 413
    assert len(messages(source, "rejected")) == 3
    assert client.get(f"/v1/webhook/shop-hooks?key={key}").status_code == 405


def test_gzip_bodies_are_accepted(client, hook):
    source, key = hook
    response = post(client, None, key=key, raw=gzip.compress(json.dumps([ORDER]).encode()),
                    HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200 and response.json()["stored"] == 1


def test_without_a_mapping_records_are_kept_as_rejected_with_the_reason(client, db):
    source, key = source_create(name="New hooks", kind="webhook", slug="new-hooks")
    response = post(client, ORDER, key=key, slug="new-hooks")
    assert response.status_code == 400
    assert "no field mapping yet" in json.dumps(response.json())
    [rejected] = messages(source, "rejected")
    assert rejected.payload == ORDER


def test_stored_webhook_messages_are_processed_into_profiles(client, hook, eager_tasks,
                                                            django_capture_on_commit_callbacks):
    from profiles.models import Identity

    source, key = hook
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, ORDER, key=key).status_code == 200
    [message] = InboxMessage.objects.filter(source=source)
    assert message.status == "processed", message.reason
    identity = Identity.objects.get(type="record", value="shop-hooks:o-1")
    assert identity.profile.events.get().name == "Order Paid"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                         lambda children: st.lists(children, max_size=4)
                         | st.dictionaries(st.sampled_from(["order", "customer", "id", "total", "email", "x"]),
                                           children, max_size=4), max_leaves=12))
def test_fuzz_any_json_gets_a_clear_answer_and_every_record_is_counted(client, hook, body):
    source, key = hook
    before = InboxMessage.objects.filter(source=source).count()
    response = post(client, body, key=key)
    assert response.status_code in (200, 400), response.content
    answer = response.json()
    if response.status_code == 200:
        assert answer["success"] is True
    else:
        assert answer["error"]["message"]
    if isinstance(body, list | dict):
        records = body if isinstance(body, list) else [body]
        # Every record ends stored (or a duplicate of a stored one) or rejected: nothing silently dropped.
        added = InboxMessage.objects.filter(source=source).count() - before
        duplicates = answer.get("duplicates", 0) if response.status_code == 200 else None
        if duplicates is not None:
            assert added + duplicates == len(records)
        else:
            assert added <= len(records)


# --- the settings page ---------------------------------------------------------------------------------------------

def test_settings_page_shows_the_url_and_saves_a_mapping(client, make_user, hook):
    source, _ = hook
    client.force_login(make_user("Admin"))
    url = reverse("ingestion:webhook-settings", args=[source.slug])
    html = client.get(url).content.decode()
    assert "http://testserver/v1/webhook/shop-hooks?key=WRITE_KEY" in html
    assert 'value="customer.email"' in html  # the current mapping in the editor

    form = {"rows": "2", "message_type": "identify", "event": "", "event_from": "", "records_path": "",
            "from_0": "id", "to_0": "externalId", "name_0": "", "type_0": "string",
            "from_1": "contact.mail", "to_1": "traits", "name_1": "email", "type_1": "", "action": "save"}
    response = client.post(url, form)
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.settings["webhook"]["mapping"]["fields"] == [
        {"from": "id", "to": "externalId", "type": "string"}, {"from": "contact.mail", "to": "traits.email"}]

    bad = dict(form, to_0="traits", name_0="")
    response = client.post(url, bad)
    assert response.status_code == 400
    assert "needs a name after" in response.content.decode()


def test_settings_page_tries_a_sample_without_saving(client, make_user, hook):
    source, _ = hook
    client.force_login(make_user("Admin"))
    url = reverse("ingestion:webhook-settings", args=[source.slug])
    form = {"rows": "0", "message_type": "identify", "event": "", "event_from": "", "records_path": "",
            "sample": json.dumps([{"id": "c-1", "email": "ann@example.com", "address": {"city": "Berlin"}}]),
            "action": "try"}
    response = client.post(url, form, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert 'value="address.city"' in html and "&quot;email&quot;: &quot;ann@example.com&quot;" in html
    source.refresh_from_db()
    assert source.settings["webhook"]["mapping"] == MAPPING  # unchanged

    response = client.post(url, dict(form, sample="{nope"), HTTP_HX_REQUEST="true")
    assert "The sample is not valid JSON" in response.content.decode()


def test_marketing_can_read_but_not_change_the_settings(client, make_user, hook):
    source, _ = hook
    client.force_login(make_user("Marketing"))
    url = reverse("ingestion:webhook-settings", args=[source.slug])
    assert client.get(url).status_code == 200
    assert client.post(url, {"action": "save"}).status_code == 403
