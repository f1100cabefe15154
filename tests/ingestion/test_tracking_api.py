"""The Segment-compatible Tracking API: endpoints, auth, gzip, clock skew, limits, bad input, idempotency, fuzzing,
and the real segment-analytics-python library against a live server."""

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.models import InboxMessage
from ingestion.services import source_create, source_enabled_set

pytestmark = pytest.mark.django_db

CALLS = {
    "identify": {"userId": "u-1", "traits": {"email": "ada@example.com", "name": "Ada"}},
    "track": {"userId": "u-1", "event": "Order Completed", "properties": {"total": 42.5}},
    "page": {"anonymousId": "a-1", "name": "Home", "properties": {"path": "/"}},
    "screen": {"userId": "u-1", "name": "Settings"},
    "group": {"userId": "u-1", "groupId": "acme", "traits": {"name": "ACME"}},
    "alias": {"userId": "u-1", "previousId": "a-1"},
}


@pytest.fixture
def source():
    source, key = source_create(name="Web", kind="http", channel="web")
    source.key = key
    return source


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def post(path, body, *, key=None, raw=False, **headers):
    data = body if raw else json.dumps(body)
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = basic(key)
    return Client().post(path, data, content_type="application/json", **headers)


def assert_error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def stored(source, status=None):
    messages = InboxMessage.objects.filter(source=source).order_by("id")
    return list(messages.filter(status=status) if status else messages)


# --- endpoints and auth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_call_is_stored_with_its_type_and_fields(source, call):
    body = {**CALLS[call], "context": {"ip": "10.0.0.1", "traits": {"plan": "pro"}, "consent": {"ads": False}},
            "integrations": {"All": True}, "messageId": f"m-{call}"}
    response = post(f"/v1/{call}", body, key=source.key)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    [message] = stored(source)
    assert message.type == call
    assert message.message_id == f"m-{call}"
    payload = message.payload
    for name, value in CALLS[call].items():
        assert payload[name] == value
    assert payload["context"]["consent"] == {"ads": False}
    assert payload["context"]["traits"] == {"plan": "pro"}
    assert payload["integrations"] == {"All": True}
    assert payload["receivedAt"] and payload["timestamp"]


def test_trailing_slash_works_too(source):
    assert post("/v1/track/", CALLS["track"], key=source.key).status_code == 200


def test_batch_stores_every_message_and_applies_batch_context(source):
    body = {"batch": [{"type": call, **fields} for call, fields in CALLS.items()],
            "context": {"library": {"name": "test"}}, "integrations": {"All": False}}
    response = post("/v1/batch", body, key=source.key)
    assert response.status_code == 200
    messages = stored(source)
    assert sorted(m.type for m in messages) == sorted(CALLS)
    assert all(m.payload["context"]["library"] == {"name": "test"} for m in messages)
    assert all(m.payload["integrations"] == {"All": False} for m in messages)


def test_write_key_in_the_body_authenticates_and_is_not_stored(source):
    response = post("/v1/track", {**CALLS["track"], "writeKey": source.key})
    assert response.status_code == 200
    [message] = stored(source)
    assert "writeKey" not in message.payload


def test_write_key_in_a_batch_body(source):
    response = post("/v1/batch", {"writeKey": source.key, "batch": [{"type": "track", **CALLS["track"]}]})
    assert response.status_code == 200
    assert len(stored(source)) == 1


@pytest.mark.parametrize("headers", [
    {},
    {"HTTP_AUTHORIZATION": basic("not-a-key")},
    {"HTTP_AUTHORIZATION": "Bearer something"},
    {"HTTP_AUTHORIZATION": "Basic !!!not-base64"},
])
def test_missing_or_unknown_key_is_401(source, headers):
    response = Client().post("/v1/track", json.dumps(CALLS["track"]), content_type="application/json", **headers)
    error = assert_error(response, 401, "not_authenticated")
    assert "key" in error["message"].lower()
    assert response["WWW-Authenticate"].startswith("Basic")
    assert stored(source) == []


def test_unknown_key_in_the_body_is_401(source):
    assert_error(post("/v1/track", {**CALLS["track"], "writeKey": "nope"}), 401)


def test_disabled_source_is_403_and_enabled_again_accepts(source):
    source_enabled_set(source=source, enabled=False)
    assert_error(post("/v1/track", CALLS["track"], key=source.key), 403, "source_disabled")
    assert_error(post("/v1/batch", {"writeKey": source.key, "batch": [{"type": "track", **CALLS["track"]}]}), 403)
    assert stored(source) == []
    source_enabled_set(source=source, enabled=True)
    assert post("/v1/track", CALLS["track"], key=source.key).status_code == 200


def test_only_post_is_allowed_and_preflight_answers(source):
    response = Client().get("/v1/track")
    assert_error(response, 405)
    assert "POST" in response["Allow"]
    preflight = Client().options("/v1/track")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]


def test_cors_headers_go_to_browsers_only(source):
    browser = post("/v1/track", CALLS["track"], key=source.key, HTTP_ORIGIN="https://shop.example.com")
    assert browser["Access-Control-Allow-Origin"] == "*"
    server = post("/v1/track", CALLS["track"], key=source.key)
    assert "Access-Control-Allow-Origin" not in server
    error = post("/v1/track", {}, key="nope", HTTP_ORIGIN="https://shop.example.com")
    assert error.status_code == 401 and error["Access-Control-Allow-Origin"] == "*"


def test_no_session_or_csrf_is_needed(source):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/v1/track", json.dumps(CALLS["track"]), content_type="application/json",
                           HTTP_AUTHORIZATION=basic(source.key))
    assert response.status_code == 200
    assert "sessionid" not in response.cookies


# --- gzip, skew --------------------------------------------------------------------------------------------------


def test_gzip_body(source):
    body = gzip.compress(json.dumps({"batch": [{"type": "track", **CALLS["track"]}] * 3}).encode())
    response = post("/v1/batch", body, key=source.key, raw=True, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    assert len(stored(source)) == 3


def test_bad_gzip_is_400_and_unknown_encoding_415(source):
    assert_error(post("/v1/track", b"not gzip at all", key=source.key, raw=True, HTTP_CONTENT_ENCODING="gzip"),
                 400, "invalid_encoding")
    assert_error(post("/v1/track", b"{}", key=source.key, raw=True, HTTP_CONTENT_ENCODING="br"), 415)


def test_clock_skew_is_corrected_from_sent_at(source):
    client_now = datetime(2020, 1, 1, 12, 0, 0, tzinfo=UTC)  # the client's clock is years behind
    body = {**CALLS["track"], "timestamp": (client_now - timedelta(minutes=5)).isoformat(),
            "sentAt": client_now.isoformat()}
    before = datetime.now(UTC)
    assert post("/v1/track", body, key=source.key).status_code == 200
    after = datetime.now(UTC)
    payload = stored(source)[0].payload
    timestamp = datetime.fromisoformat(payload["timestamp"])
    received = datetime.fromisoformat(payload["receivedAt"])
    assert before - timedelta(milliseconds=1) <= received <= after + timedelta(milliseconds=1)
    assert abs((received - timestamp) - timedelta(minutes=5)) < timedelta(milliseconds=2)
    assert payload["originalTimestamp"] == body["timestamp"]


def test_batch_sent_at_corrects_each_message(source):
    client_now = datetime(2030, 6, 1, tzinfo=UTC)  # the client's clock is ahead
    batch = [{"type": "track", **CALLS["track"], "timestamp": (client_now - timedelta(seconds=s)).isoformat()}
             for s in (10, 20)]
    post("/v1/batch", {"batch": batch, "sentAt": client_now.isoformat()}, key=source.key)
    for message, seconds in zip(stored(source), (10, 20), strict=True):
        gap = datetime.fromisoformat(message.payload["receivedAt"]) - datetime.fromisoformat(
            message.payload["timestamp"])
        assert abs(gap - timedelta(seconds=seconds)) < timedelta(milliseconds=2)


def test_extreme_dates_are_named_not_a_crash(source):
    error = assert_error(post("/v1/track", {**CALLS["track"], "timestamp": "0001-01-01T00:00:00+01:00"},
                              key=source.key), 400)
    assert "timestamp" in error["fields"]
    error = assert_error(post("/v1/track", {**CALLS["track"], "timestamp": "0001-01-01T00:00:00Z",
                                            "sentAt": "9999-12-31T00:00:00Z"}, key=source.key), 400)
    assert "sentAt" in error["fields"]


def test_without_sent_at_the_timestamp_is_kept_and_without_one_it_is_received_at(source):
    post("/v1/batch", {"batch": [{"type": "track", **CALLS["track"], "timestamp": "2024-03-01T10:00:00Z"},
                                 {"type": "track", **CALLS["track"]}]}, key=source.key)
    first, second = stored(source)
    assert datetime.fromisoformat(first.payload["timestamp"]) == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert second.payload["timestamp"] == second.payload["receivedAt"]


# --- limits -----------------------------------------------------------------------------------------------------


def test_event_over_32_kb_is_413_and_counted(source):
    body = {**CALLS["track"], "properties": {"blob": "x" * (33 * 1024)}}
    error = assert_error(post("/v1/track", body, key=source.key), 413, "too_large")
    assert "32 KB" in error["message"]
    [message] = stored(source)
    assert message.status == "rejected" and "32 KB" in message.reason


def test_batch_over_500_kb_is_413(source):
    batch = [{"type": "track", **CALLS["track"], "properties": {"blob": "x" * 20_000}} for _ in range(30)]
    error = assert_error(post("/v1/batch", {"batch": batch}, key=source.key), 413)
    assert "500 KB" in error["message"]
    assert stored(source, "pending") == []
    assert len(stored(source, "rejected")) == 1


def test_gzip_bomb_is_stopped_at_the_limit(source):
    body = gzip.compress(b'{"batch": ["' + b"a" * (5 * 1024 * 1024) + b'"]}')
    assert len(body) < 100 * 1024
    assert_error(post("/v1/batch", body, key=source.key, raw=True, HTTP_CONTENT_ENCODING="gzip"), 413)


def test_oversize_event_in_a_batch_names_its_index_and_the_others_are_kept(source):
    batch = [{"type": "track", **CALLS["track"]},
             {"type": "track", **CALLS["track"], "properties": {"blob": "x" * (40 * 1024)}},
             {"type": "identify", **CALLS["identify"]}]
    error = assert_error(post("/v1/batch", {"batch": batch}, key=source.key), 400, "invalid")
    assert list(error["fields"]) == ["batch.1"]
    assert "32 KB" in error["fields"]["batch.1"][0]
    assert [m.type for m in stored(source, "pending")] == ["track", "identify"]
    [rejected] = stored(source, "rejected")
    assert "blob" not in json.dumps(rejected.payload)  # the oversize body itself is not kept


# --- bad input --------------------------------------------------------------------------------------------------


def test_malformed_json_is_400_and_counted_as_rejected(source):
    error = assert_error(post("/v1/track", b'{"userId": "u-1", ', key=source.key, raw=True), 400, "invalid_json")
    assert "JSON" in error["message"]
    [message] = stored(source)
    assert message.status == "rejected" and "JSON" in message.reason


@pytest.mark.parametrize("body", [b"NaN", b'{"userId": Infinity}', b'{"userId": 1e999}', b"\xff\xfe", b""])
def test_non_json_values_are_invalid_json(source, body):
    assert_error(post("/v1/track", body, key=source.key, raw=True), 400, "invalid_json")


def test_body_that_is_not_an_object_is_400(source):
    assert_error(post("/v1/track", [1, 2], key=source.key), 400, "invalid")
    assert_error(post("/v1/batch", {"batch": {"type": "track"}}, key=source.key), 400, "invalid")
    error = assert_error(post("/v1/batch", {"batch": []}, key=source.key), 400)
    assert "batch" in error["fields"]


@pytest.mark.parametrize(("call", "body", "field"), [
    ("track", {"event": "X"}, "userId"),
    ("track", {"userId": "", "anonymousId": "", "event": "X"}, "userId"),
    ("track", {"userId": "u"}, "event"),
    ("track", {"userId": "u", "event": ""}, "event"),
    ("track", {"userId": ["u"], "event": "X"}, "userId"),
    ("track", {"anonymousId": {"a": 1}, "event": "X"}, "anonymousId"),
    ("track", {"userId": "u", "event": "X", "properties": [1]}, "properties"),
    ("identify", {"userId": "u", "traits": "ada@example.com"}, "traits"),
    ("identify", {"userId": "u", "context": {"traits": [1]}}, "context.traits"),
    ("identify", {"userId": "u", "context": {"consent": "yes"}}, "context.consent"),
    ("identify", {"userId": "u", "context": "web"}, "context"),
    ("identify", {"userId": "u", "integrations": 1}, "integrations"),
    ("identify", {"userId": "u", "timestamp": "yesterday"}, "timestamp"),
    ("identify", {"userId": "u", "sentAt": 12}, "sentAt"),
    ("identify", {"userId": "u", "messageId": {"id": 1}}, "messageId"),
    ("identify", {"userId": "u" * 300}, "userId"),
    ("group", {"userId": "u"}, "groupId"),
    ("alias", {"userId": "u"}, "previousId"),
    ("alias", {"anonymousId": "a", "previousId": "p"}, "userId"),
    ("page", {"userId": "u", "name": 5}, "name"),
])
def test_wrong_fields_are_named(source, call, body, field):
    error = assert_error(post(f"/v1/{call}", body, key=source.key), 400, "invalid")
    assert field in error["fields"], error
    [message] = stored(source)
    assert message.status == "rejected" and field in message.reason


def test_bad_messages_in_a_batch_are_named_and_the_valid_ones_kept(source):
    batch = [
        {"type": "track", **CALLS["track"], "messageId": "good-1"},
        {"type": "track", "event": "No id"},
        "not a message",
        {"type": "launch", "userId": "u"},
        {"type": "identify", **CALLS["identify"], "messageId": "good-2"},
        {"type": "track", "userId": "u", "event": "Bad", "properties": "x"},
    ]
    error = assert_error(post("/v1/batch", {"batch": batch}, key=source.key), 400, "invalid")
    assert set(error["fields"]) == {"batch.1.userId", "batch.2", "batch.3.type", "batch.5.properties"}
    assert "4 of 6" in error["message"]
    assert [m.message_id for m in stored(source, "pending")] == ["good-1", "good-2"]
    rejected = stored(source, "rejected")
    assert len(rejected) == 4
    assert all(m.reason for m in rejected)


def test_nul_characters_cannot_be_stored_and_are_rejected_alongside_valid_ones(source):
    body = '{"batch": [{"type": "track", "userId": "u", "event": "ok"}, ' \
           '{"type": "track", "userId": "u\\u0000x", "event": "nul"}, ' \
           '{"type": "track", "userId": "u", "event": "lone \\ud800 surrogate"}]}'
    error = assert_error(post("/v1/batch", body.encode(), key=source.key, raw=True), 400)
    assert set(error["fields"]) == {"batch.1", "batch.2"}
    assert [m.payload["event"] for m in stored(source, "pending")] == ["ok"]
    assert len(stored(source, "rejected")) == 2


def test_valid_surrogate_pairs_are_fine(source):
    body = '{"userId": "u", "event": "smile \\ud83d\\ude00"}'
    assert post("/v1/track", body.encode(), key=source.key, raw=True).status_code == 200
    assert stored(source)[0].payload["event"] == "smile \U0001F600"


def test_too_many_messages_in_one_batch(source):
    error = assert_error(post("/v1/batch", {"batch": [1] * 10_001}, key=source.key), 400)
    assert "10000" in error["fields"]["batch"][0]
    assert InboxMessage.objects.filter(source=source).count() == 1  # one summary, not 10,001 rows


# --- idempotency -------------------------------------------------------------------------------------------------


def test_same_message_id_is_stored_once(source):
    body = {**CALLS["track"], "messageId": "once"}
    assert post("/v1/track", body, key=source.key).status_code == 200
    assert post("/v1/track", body, key=source.key).status_code == 200
    assert post("/v1/batch", {"batch": [{"type": "track", **body}] * 2}, key=source.key).status_code == 200
    assert [m.message_id for m in stored(source)] == ["once"]


def test_messages_without_id_get_one(source):
    post("/v1/batch", {"batch": [{"type": "track", **CALLS["track"]}] * 2}, key=source.key)
    ids = [m.message_id for m in stored(source)]
    assert len(set(ids)) == 2 and all(ids)
    assert all(m.payload["messageId"] == m.message_id for m in stored(source))


def test_generated_ids_are_uuids_and_differ_in_forked_processes():
    # gunicorn and Celery fork their workers from one parent: a generator state copied into each child would give
    # every worker the same ids, and the inbox would take one worker's messages for duplicates of another's.
    import multiprocessing

    from ingestion.services.inbox import new_message_id

    with multiprocessing.get_context("fork").Pool(2) as pool:
        children = pool.starmap(_new_message_ids, [(200,), (200,)])
    ids = [*children[0], *children[1], *_new_message_ids(200)]
    assert len(set(ids)) == 600
    assert all(uuid.UUID(message_id).version == 7 and str(uuid.UUID(message_id)) == message_id for message_id in ids)
    assert new_message_id() not in ids


def test_generated_ids_are_ordered_by_time():
    # Time-ordered ids go to the end of the inbox's unique index (RFC 9562 version 7: milliseconds first).
    import time

    from ingestion.services.inbox import new_message_id

    earlier = _new_message_ids(50)
    time.sleep(0.002)
    later = _new_message_ids(50)
    assert max(earlier) < min(later)
    assert abs(int(uuid.UUID(later[0]).hex[:12], 16) - time.time() * 1000) < 5000
    assert len(set(earlier + later + [new_message_id()])) == 101


def _new_message_ids(count: int) -> list[str]:
    from ingestion.services.inbox import new_message_id

    return [new_message_id() for _ in range(count)]


def test_a_corrected_message_with_the_id_of_a_rejected_one_is_accepted(source):
    post("/v1/track", {"userId": "u", "messageId": "fix-me"}, key=source.key)  # no event: rejected
    assert post("/v1/track", {"userId": "u", "event": "Fixed", "messageId": "fix-me"},
                key=source.key).status_code == 200
    assert [m.message_id for m in stored(source, "pending")] == ["fix-me"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="kills a PostgreSQL backend (DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_a_dead_kept_alive_database_connection_is_replaced_without_losing_the_message():
    import psycopg

    source, key = source_create(name="Web", kind="http")
    assert post("/v1/track", CALLS["track"], key=key).status_code == 200
    backend = connection.connection.info.backend_pid
    db = connection.settings_dict
    with psycopg.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432,
                         autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend])
    assert post("/v1/track", CALLS["track"], key=key).status_code == 200
    assert InboxMessage.objects.filter(source=source).count() == 2


# --- fuzzing ------------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
FIELDS = ["type", "userId", "anonymousId", "event", "name", "traits", "properties", "context", "timestamp",
          "sentAt", "originalTimestamp", "messageId", "integrations", "groupId", "previousId", "writeKey"]
date_times = st.builds(lambda moment, hours: moment.replace(tzinfo=timezone(timedelta(hours=hours))).isoformat(),
                       st.datetimes(), st.integers(min_value=-12, max_value=14))
messages = st.dictionaries(st.sampled_from(FIELDS), json_values | date_times | st.sampled_from(
    ["u-1", "track", "identify", "2024-01-01T00:00:00Z", "", {"traits": {"email": "x"}}]), max_size=8)
ENDPOINTS = ["identify", "track", "page", "screen", "group", "alias", "batch"]
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


def _check_answer(response):
    assert response.status_code in (200, 400, 401, 413), response.content
    body = response.json()
    if response.status_code == 200:
        assert body == {"success": True}
    else:
        assert set(body) == {"error"}
        assert body["error"]["status"] == response.status_code
        assert isinstance(body["error"]["message"], str)
        assert all(isinstance(k, str) and isinstance(v, list) for k, v in body["error"].get("fields", {}).items())


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), body=json_values | messages)
def test_fuzz_random_json_bodies(source, endpoint, body):
    _check_answer(post(f"/v1/{endpoint}", body, key=source.key))


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS[:-1]), message=messages)
def test_fuzz_random_messages(source, endpoint, message):
    _check_answer(post(f"/v1/{endpoint}", message, key=source.key))


@FUZZ
@given(batch=st.lists(messages | json_values, min_size=1, max_size=6),
       extra=st.dictionaries(st.sampled_from(["context", "integrations", "sentAt"]), json_values, max_size=3))
def test_fuzz_random_batches_account_for_every_message(source, batch, extra):
    for item in batch:
        if isinstance(item, dict):
            item["messageId"] = str(uuid.uuid4())  # unique, so that no message is a duplicate
    before = InboxMessage.objects.filter(source=source).count()
    response = post("/v1/batch", {"batch": batch, **extra}, key=source.key)
    _check_answer(response)
    fields = response.json().get("error", {}).get("fields", {})
    if response.status_code == 200 or (fields and all(name.startswith("batch.") for name in fields)):
        # Every message is accounted for: stored for processing, or rejected with its reason.
        assert InboxMessage.objects.filter(source=source).count() == before + len(batch)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_fuzz_random_bytes(source, raw):
    _check_answer(post("/v1/batch", raw, key=source.key, raw=True))
    _check_answer(post("/v1/track", raw, key=source.key, raw=True, HTTP_CONTENT_ENCODING="gzip"))


# --- the real Segment library against a live server ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_segment_analytics_python_works_unchanged(live_server, compress):
    from segment.analytics import Client as SegmentClient
    from segment.analytics import request as segment_request

    from profiles.models import Identity

    source, key = source_create(name="Python backend", kind="http", channel="app")
    errors = []
    client = SegmentClient(write_key=key, host=live_server.url, gzip=compress, max_retries=1,
                           on_error=lambda error, batch: errors.append(error))
    client.identify("user-42", {"email": "Grace@Example.com", "name": "Grace"})
    client.track("user-42", "Order Completed", {"total": 99.5, "currency": "EUR"},
                 context={"consent": {"marketing": True}})
    client.page("user-42", "Docs", "Install", {"url": "https://example.com/docs/install"})
    client.screen(anonymous_id="device-7", name="Home")
    client.alias("device-7", "user-42")
    client.flush()
    client.join()
    # The library keeps its HTTP connection alive in a module-level session: closed here, the live server's thread
    # for it ends, and with it that thread's database connection (else still open when the test database is dropped).
    segment_request._session.close()
    assert errors == []

    messages = list(InboxMessage.objects.filter(source=source).order_by("id"))
    assert sorted(m.type for m in messages) == ["alias", "identify", "page", "screen", "track"]
    assert {m.status for m in messages} == {"processed"}, [(m.type, m.reason) for m in messages]
    profile = Identity.objects.get(type="user_id", value="user-42").profile
    assert profile.identities.filter(type="email", value="grace@example.com").exists()
    assert profile.traits["name"] == "Grace"
    events = {e.type: e for e in profile.events.all()}
    assert events["track"].name == "Order Completed" and events["track"].properties["total"] == 99.5
    assert events["track"].context["consent"] == {"marketing": True}
    assert events["track"].channel == "app"
    assert events["page"].name == "Install"
    # alias(previousId="device-7", userId="user-42") joins the device's profile to the user's (Segment's
    # semantics), so the screen seen on that device is on the user's timeline too.
    assert set(events) == {"identify", "track", "page", "screen"}
    assert profile.identities.filter(type="anonymous_id", value="device-7").exists()
