"""/v1/batch stores every new message once, whether or not the batch repeats a message already stored (the
PostgreSQL path tries a plain INSERT first and falls back to ON CONFLICT DO NOTHING when a row is a duplicate)."""

import base64
import json

import pytest
from django.test import Client

from ingestion.models import InboxMessage
from ingestion.services import source_create

# Outside a transaction, as under a server: the path that tries the plain INSERT first.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def source():
    source, key = source_create(name="Web", kind="http", channel="web")
    source.key = key
    return source


def send(source, messages):
    return Client().post("/v1/batch", json.dumps({"batch": messages}), content_type="application/json",
                         HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{source.key}:".encode()).decode())


def track(message_id, event="Viewed"):
    return {"type": "track", "userId": "u-1", "event": event, "messageId": message_id}


def stored_ids(source):
    return sorted(InboxMessage.objects.filter(source=source).values_list("message_id", flat=True))


def test_a_batch_sent_twice_is_stored_once(source):
    batch = [track(f"m-{i}") for i in range(5)]
    assert send(source, batch).status_code == 200
    assert send(source, batch).status_code == 200
    assert stored_ids(source) == [f"m-{i}" for i in range(5)]


def test_new_messages_beside_an_already_stored_one_are_all_stored(source):
    assert send(source, [track("m-1"), track("m-2")]).status_code == 200
    assert send(source, [track("m-0"), track("m-2", "Again"), track("m-3")]).status_code == 200
    assert stored_ids(source) == ["m-0", "m-1", "m-2", "m-3"]
    assert InboxMessage.objects.get(source=source, message_id="m-2").payload["event"] == "Viewed"  # the first kept


def test_a_message_id_repeated_inside_one_batch_is_stored_once(source):
    assert send(source, [track("m-1"), track("m-1", "Again"), track("m-2")]).status_code == 200
    assert stored_ids(source) == ["m-1", "m-2"]
    assert InboxMessage.objects.get(source=source, message_id="m-1").payload["event"] == "Viewed"


def test_the_same_message_id_in_two_sources_is_two_messages(source):
    other, key = source_create(name="App", kind="http", channel="app")
    other.key = key
    assert send(source, [track("m-1"), track("m-2")]).status_code == 200
    assert send(other, [track("m-1"), track("m-2")]).status_code == 200
    assert stored_ids(source) == stored_ids(other) == ["m-1", "m-2"]
