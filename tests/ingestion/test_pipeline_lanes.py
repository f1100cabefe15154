"""Inbox processing with lanes (PostgreSQL): the next batch is claimed and prepared in a second thread, on its own
connection, while the current one is applied; batches still commit one by one, in claim order."""

import threading

import pytest
from django.db import connection, transaction

from ingestion.models import InboxMessage
from ingestion.services import pipeline, source_create
from ingestion.services.pipeline import inbox_process_pending
from profiles.models import Event, Identity, Profile

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                   reason="lanes run on PostgreSQL only (DATABASE_URL)")


@pytest.fixture
def two_lanes(settings):
    settings.INGESTION_PIPELINE_LANES = 2


def _store(source, count, people=37):
    """Pending messages, without the processing inbox_store enqueues on commit (eager in tests)."""
    messages = [{"type": "identify" if i % 5 == 0 else "track", "userId": f"u{i % people}",
                 "anonymousId": f"a{i % people}-{i % 3}", "event": "E", "messageId": f"m{i}", "traits": {"seq": i},
                 "timestamp": f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z"} for i in range(count)]
    InboxMessage.objects.bulk_create([InboxMessage(source=source, message_id=m["messageId"], type=m["type"],
                                                   payload=m) for m in messages])


def _recording(monkeypatch):
    """Record, per batch, the lane that applied it and the order of the commits (by the batch's first inbox id)."""
    applied, committed = [], []
    original = pipeline._batch_apply

    def batch_apply(batch):
        first = batch.rows[0][0]
        applied.append((threading.current_thread().name, first))
        transaction.on_commit(lambda: committed.append(first))
        return original(batch)

    monkeypatch.setattr(pipeline, "_batch_apply", batch_apply)
    return applied, committed


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_lanes_process_everything_once_and_commit_in_claim_order(two_lanes, monkeypatch):
    source, _ = source_create(name="Web", kind="http")
    _store(source, 600)
    applied, committed = _recording(monkeypatch)

    result = inbox_process_pending(limit=25)

    assert (result.claimed, result.processed, result.rejected) == (600, 600, 0)
    assert len(committed) == 24
    assert committed == sorted(committed)  # claim order: a later claim takes later messages
    assert {lane for lane, _ in applied} == {"MainThread", "inbox-lane-1"}  # both lanes took batches
    assert InboxMessage.objects.filter(status="processed").count() == 600
    assert Event.objects.values("message_id").distinct().count() == Event.objects.count() == 600
    assert Profile.objects.count() == Identity.objects.filter(type="user_id").count() == 37
    # The traits end as one batch after the other would leave them: the newest observation of each person wins.
    last = {f"u{i % 37}": i for i in range(600) if i % 5 == 0}
    for identity in Identity.objects.filter(type="user_id").select_related("profile"):
        if identity.value in last:
            assert identity.profile.traits["seq"] == last[identity.value]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_stops_the_lanes_and_its_messages_stay_pending(two_lanes, monkeypatch):
    source, _ = source_create(name="Web", kind="http")
    _store(source, 200)
    calls = {"n": 0}
    original = pipeline._statuses_write

    def statuses_write(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the database went away")
        return original(**kwargs)

    monkeypatch.setattr(pipeline, "_statuses_write", statuses_write)
    with pytest.raises(RuntimeError, match="went away"):
        inbox_process_pending(limit=20)

    processed = InboxMessage.objects.filter(status="processed").count()
    pending = InboxMessage.objects.filter(status="pending").count()
    assert processed + pending == 200
    assert processed == 40  # the two batches before the failing one; nothing after it was committed
    assert Event.objects.count() == processed
    # The rest is picked up by the next run (the sweep or the next task).
    monkeypatch.setattr(pipeline, "_statuses_write", original)
    assert inbox_process_pending(limit=20).processed == 160
    assert InboxMessage.objects.filter(status="processed").count() == 200


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_lanes_stop_at_max_batches_and_deadline(two_lanes):
    source, _ = source_create(name="Web", kind="http")
    _store(source, 100)
    assert inbox_process_pending(limit=10, max_batches=3).claimed == 30
    assert inbox_process_pending(limit=10, deadline=0).claimed == 0  # already passed: nothing is claimed
    assert InboxMessage.objects.filter(status="pending").count() == 70


@pytest.mark.django_db
def test_inside_a_transaction_batches_run_one_after_the_other(two_lanes, monkeypatch):
    # A caller's transaction (and the test's) is not visible to another connection: no lane thread then.
    monkeypatch.setattr(pipeline._Lanes, "run", lambda *a, **k: pytest.fail("lanes inside a transaction"))
    source, _ = source_create(name="Web", kind="http")
    _store(source, 30)
    assert inbox_process_pending(limit=10).processed == 30


def test_lanes_default_to_two_on_postgresql_only(settings):
    assert pipeline.lanes() == (2 if connection.vendor == "postgresql" else 1)
    settings.INGESTION_PIPELINE_LANES = 1
    assert pipeline.lanes() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_run_that_finds_one_small_batch_starts_no_second_lane(two_lanes, monkeypatch):
    source, _ = source_create(name="Web", kind="http")
    _store(source, 5)
    applied, committed = _recording(monkeypatch)
    assert inbox_process_pending(limit=10).processed == 5
    assert applied == [("MainThread", applied[0][1])]
