"""Inbox processing: messages to profiles in bulk, idempotency, rejection reasons, the SKIP LOCKED claim with
concurrent workers (PostgreSQL), the sweep, enqueue on commit and the profile_changed signal."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import close_old_connections, connection, transaction
from django.db.models import Count
from django.utils import timezone

from cdp.celery import BEAT_SCHEDULE
from ingestion import tasks
from ingestion.models import InboxMessage, Source
from ingestion.services import inbox_store, source_create
from ingestion.services.pipeline import _claim, inbox_process_batch, inbox_process_pending
from profiles.models import Event, Identity, Profile
from profiles.services import Observation, observations_apply
from profiles.signals import profile_changed

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                   reason="SKIP LOCKED and concurrent writers need PostgreSQL (DATABASE_URL)")


@pytest.fixture
def source():
    source, _ = source_create(name="Web", kind="http", channel="web")
    return source


def process(source, messages):
    inbox_store(source=source, messages=messages)
    return inbox_process_pending(source_id=source.pk)


def profile_of(identity_type, value):
    return Identity.objects.get(type=identity_type, value=value).profile


def statuses(source):
    return dict(InboxMessage.objects.filter(source=source).values_list("message_id", "status"))


# --- messages to profiles ---------------------------------------------------------------------------------------


def test_identify_creates_a_profile_with_identities_and_traits(source):
    result = process(source, [{"type": "identify", "messageId": "m1", "userId": "u-1", "anonymousId": "a-1",
                               "traits": {"email": " Ada@Example.COM ", "phone": "+44 20 7946 0000",
                                          "name": "Ada"},
                               "context": {"externalIds": [{"id": "C-9", "type": "crm", "collection": "users",
                                                            "encoding": "none"}]},
                               "timestamp": "2024-05-01T10:00:00Z"}])
    assert (result.processed, result.rejected) == (1, 0)
    profile = profile_of("user_id", "u-1")
    assert set(profile.identities.values_list("type", "value")) == {
        ("user_id", "u-1"), ("anonymous_id", "a-1"), ("email", "ada@example.com"), ("phone", "+442079460000"),
        ("record", "crm:C-9")}
    assert profile.traits["name"] == "Ada"
    assert profile.first_seen_at == profile.last_seen_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    [event] = profile.events.all()
    assert (event.type, event.source, event.channel, event.message_id) == ("identify", "web", "web", "m1")
    assert event.properties["name"] == "Ada"


def test_every_call_type_lands_on_the_same_person(source):
    process(source, [
        {"type": "identify", "userId": "u-1", "traits": {"email": "ada@example.com"}},
        {"type": "track", "userId": "u-1", "event": "Order Completed", "properties": {"total": 10},
         "context": {"consent": {"marketing": False}}},
        {"type": "page", "userId": "u-1", "name": "Home", "properties": {"path": "/"}},
        {"type": "screen", "userId": "u-1", "name": "Settings"},
        {"type": "group", "userId": "u-1", "groupId": "acme", "traits": {"name": "ACME Inc", "email": "x@acme.io"}},
        {"type": "track", "anonymousId": "a-7", "event": "Viewed", "context": {"traits": {"email": "ADA@example.com"}}},
    ])
    profile = profile_of("user_id", "u-1")
    assert profile_of("anonymous_id", "a-7") == profile  # found by the email in context.traits
    events = {e.type + ":" + e.name: e for e in profile.events.all()}
    assert set(events) == {"identify:", "track:Order Completed", "page:Home", "screen:Settings", "group:acme",
                           "track:Viewed"}
    assert events["track:Order Completed"].context["consent"] == {"marketing": False}
    assert events["group:acme"].properties == {"groupId": "acme", "traits": {"name": "ACME Inc",
                                                                             "email": "x@acme.io"}}
    # A group's traits describe the group, not the person.
    assert "name" not in profile.traits
    assert not Identity.objects.filter(value="x@acme.io").exists()


def test_alias_links_the_previous_id(source):
    process(source, [{"type": "track", "anonymousId": "anon-1", "event": "Browsed"}])
    process(source, [{"type": "alias", "userId": "u-1", "previousId": "anon-1"}])
    profile = profile_of("anonymous_id", "anon-1")
    assert profile_of("user_id", "u-1") == profile
    assert not profile.events.filter(type="alias").exists()
    # An unknown previousId is linked as an anonymous id (a profile carries one user id: the identity rules).
    process(source, [{"type": "alias", "userId": "u-2", "previousId": "old-2"}])
    assert profile_of("anonymous_id", "old-2") == profile_of("user_id", "u-2")
    assert not Identity.objects.filter(type="user_id", value="old-2").exists()


def test_traits_most_recent_wins_and_none_removes(source):
    process(source, [
        {"type": "identify", "userId": "u", "traits": {"plan": "pro", "city": "Oslo"},
         "timestamp": "2024-01-02T00:00Z"},
        {"type": "identify", "userId": "u", "traits": {"plan": "free"}, "timestamp": "2024-01-01T00:00Z"},
    ])
    assert profile_of("user_id", "u").traits == {"plan": "pro", "city": "Oslo"}
    process(source, [{"type": "identify", "userId": "u", "traits": {"city": None}, "timestamp": "2024-02-01T00:00Z"}])
    profile = profile_of("user_id", "u")
    assert profile.traits == {"plan": "pro"}
    assert profile.first_seen_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert profile.last_seen_at == datetime(2024, 2, 1, tzinfo=UTC)


def test_an_email_flagged_invalid_by_transformations_is_kept_but_never_identifies(source):
    process(source, [{"type": "identify", "userId": "u-1", "traits": {"email": "n/a"},
                      "context": {"cdp": {"invalid": ["traits.email"]}}},
                     {"type": "identify", "userId": "u-2", "traits": {"email": "n/a"},
                      "context": {"cdp": {"invalid": ["traits.email"]}}}])
    assert profile_of("user_id", "u-1") != profile_of("user_id", "u-2")
    assert profile_of("user_id", "u-1").traits["email"] == "n/a"
    # Kept raw and flagged (issue 4), never used to resolve: the second profile does not join the first.
    assert not Identity.objects.filter(type="email", flagged=False).exists()
    assert Identity.objects.get(type="email", flagged=True).raw_value == "n/a"


def test_channel_comes_from_the_source():
    shop, _ = source_create(name="Shop", kind="http", channel="shop")
    process(shop, [{"type": "track", "userId": "u", "event": "Order Completed"}])
    assert Event.objects.get().channel == "shop"


def test_a_batch_resolves_within_itself_and_against_the_database(source):
    process(source, [{"type": "identify", "userId": "known", "traits": {"email": "k@example.com"}}])
    messages = [{"type": "track", "userId": f"new-{i % 50}", "event": "E", "messageId": f"n{i}"} for i in range(300)]
    messages += [{"type": "track", "anonymousId": f"anon-{i}", "event": "E",
                  "context": {"traits": {"email": "k@example.com"}}} for i in range(20)]
    result = process(source, messages)
    assert result.processed == 320
    assert Profile.objects.count() == 51
    assert Identity.objects.filter(type="user_id").count() == 51
    assert profile_of("user_id", "new-7").events.count() == 6
    assert profile_of("anonymous_id", "anon-3") == profile_of("user_id", "known")


# --- idempotency and rejections ---------------------------------------------------------------------------------


def test_processing_is_idempotent_by_source_and_message_id(source):
    message = {"type": "track", "userId": "u", "event": "Once", "messageId": "m-1"}
    process(source, [dict(message)])
    process(source, [dict(message)])  # sent again: a duplicate in the inbox, nothing to process
    assert inbox_process_pending().claimed == 0
    assert Event.objects.filter(message_id="m-1").count() == 1
    other, _ = source_create(name="Other", kind="http")
    process(other, [dict(message)])  # the same id from another source is another message
    assert Event.objects.filter(message_id="m-1").count() == 2


@pytest.mark.parametrize(("message", "reason"), [
    ({"type": "track", "event": "No one"}, "no identity"),
    ({"type": "track", "userId": "u"}, "event"),
    ({"type": "launch", "userId": "u"}, "type must be one of"),
    ({"type": "track", "userId": "u", "event": "E", "timestamp": "soon"}, "timestamp"),
    ({"type": "track", "userId": {"id": 1}, "event": "E"}, "userId must be a string"),
    ({"type": "track", "userId": "x" * 300, "event": "E"}, "longer than 255"),
    ({"type": "identify", "userId": "u", "traits": ["a"]}, "traits must be an object"),
    ({"type": "identify", "userId": "u", "context": {"externalIds": [{"id": "1"}]}}, "context.externalIds.0"),
    ({"type": "group", "userId": "u"}, "groupId"),
    ({"type": "alias", "userId": "u"}, "previousId"),
])
def test_a_message_that_cannot_be_processed_is_rejected_with_its_reason(source, message, reason):
    good = {"type": "track", "userId": "ok", "event": "Fine", "messageId": "good"}
    result = process(source, [{**message, "messageId": "bad"}, good])
    assert (result.processed, result.rejected) == (1, 1)
    bad = InboxMessage.objects.get(source=source, message_id="bad")
    assert bad.status == "rejected" and reason in bad.reason
    assert bad.processed_at and bad.attempts == 1
    assert statuses(source)["good"] == "processed"


def test_every_message_ends_processed_or_rejected(source):
    messages = [{"type": "track", "userId": f"u{i}", "event": "E"} if i % 3 else {"type": "track", "event": "E"}
                for i in range(250)]
    inbox_store(source=source, messages=messages)
    result = inbox_process_pending(limit=40)
    counts = dict(InboxMessage.objects.filter(source=source).values_list("status").annotate(n=Count("id"))
                  .values_list("status", "n"))
    assert counts == {"processed": 166, "rejected": 84}
    assert (result.claimed, result.processed, result.rejected) == (250, 166, 84)


# --- tasks: enqueue on commit, sweep, signal ---------------------------------------------------------------------


def test_storing_enqueues_processing_on_commit(source, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        inbox_store(source=source, messages=[{"type": "track", "userId": "u", "event": "E"}])
    assert callbacks  # processing was enqueued for after the commit (eager here: it ran)
    assert set(statuses(source).values()) == {"processed"}


def test_sweep_reenqueues_messages_pending_too_long(source):
    inbox_store(source=source, messages=[{"type": "track", "userId": "u", "event": "Old", "messageId": "old"},
                                         {"type": "track", "userId": "u", "event": "New", "messageId": "new"}])
    InboxMessage.objects.filter(message_id="old").update(received_at=timezone.now() - timedelta(minutes=5))
    assert tasks.inbox_sweep() == [source.pk]  # eager: the enqueued task processed the source
    assert statuses(source) == {"old": "processed", "new": "processed"}
    assert tasks.inbox_sweep() == []


def test_sweep_is_on_the_beat_schedule_and_tasks_route_to_ingestion():
    from cdp.celery import app

    entry = next(e for e in BEAT_SCHEDULE.values() if e["task"] == "ingestion.tasks.inbox_sweep")
    assert entry["schedule"] <= 300
    assert app.amqp.router.route({}, "ingestion.tasks.inbox_process")["queue"].name == "ingestion"


def test_inbox_process_task_takes_ids_and_is_idempotent(source):
    inbox_store(source=source, messages=[{"type": "track", "userId": "u", "event": "E"}])
    assert tasks.inbox_process(source_id=source.pk) == {"claimed": 1, "processed": 1, "rejected": 0}
    assert tasks.inbox_process(source_id=source.pk) == {"claimed": 0, "processed": 0, "rejected": 0}
    assert Event.objects.count() == 1


def test_profile_changed_is_sent_on_commit_with_the_profile_ids(source, django_capture_on_commit_callbacks):
    received = []

    def receiver(sender, profile_ids, **kwargs):
        received.append(profile_ids)

    profile_changed.connect(receiver)
    try:
        inbox_store(source=source, messages=[{"type": "track", "userId": "a", "event": "E"},
                                             {"type": "track", "userId": "b", "event": "E"},
                                             {"type": "track", "userId": "a", "event": "E"}])
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            inbox_process_pending()
        assert received == []  # nothing before the commit
        for callback in callbacks:
            callback()
    finally:
        profile_changed.disconnect(receiver)
    ids = sorted(Profile.objects.values_list("id", flat=True))
    assert received == [ids]


def test_observations_apply_keeps_its_interface():
    at = timezone.now()
    ids = observations_apply(observations=[
        Observation(identities=[("email", "x@example.com")], timestamp=at, traits={"a": 1}, event_type="track",
                    event_name="E"),
        Observation(identities=[("email", "x@example.com"), ("user_id", "x")], timestamp=at, traits={"b": 2}),
    ])
    assert ids[0] == ids[1]
    assert Profile.objects.get(pk=ids[0]).traits == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="no identity"):
        observations_apply(observations=[Observation(identities=[], timestamp=at)])


# --- concurrency (PostgreSQL) -----------------------------------------------------------------------------------


def _pending(source, messages):
    """Pending inbox rows without the processing that inbox_store enqueues on commit (which, with eager tasks
    and autocommit, would run at once): these tests want the workers to find them."""
    InboxMessage.objects.bulk_create([InboxMessage(source=source, message_id=m["messageId"], type=m["type"],
                                                   payload=m) for m in messages])


def _in_thread(target, *args):
    errors = []

    def run():
        try:
            target(*args)
        except BaseException as error:  # reported to the test below
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_skip_locked_claims_never_overlap():
    source, _ = source_create(name="Web", kind="http")
    _pending(source, [{"type": "track", "userId": f"u{i}", "event": "E", "messageId": f"m{i}"} for i in range(30)])
    first_claimed = threading.Event()
    second_done = threading.Event()
    claims = {}

    def worker_a():
        with transaction.atomic():
            claims["a"] = [row[0] for row in _claim(source_id=None, limit=10)]
            first_claimed.set()
            second_done.wait(10)  # hold the row locks while the other worker claims

    def worker_b():
        first_claimed.wait(10)
        with transaction.atomic():
            claims["b"] = [row[0] for row in _claim(source_id=None, limit=10)]
        second_done.set()

    threads = [_in_thread(worker_a), _in_thread(worker_b)]
    for thread, errors in threads:
        thread.join(20)
        assert not errors, errors
    assert len(claims["a"]) == len(claims["b"]) == 10
    assert not set(claims["a"]) & set(claims["b"])


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_process_everything_exactly_once():
    source, _ = source_create(name="Web", kind="http")
    # Overlapping people across the batches, so that both workers create and find the same identities.
    _pending(source, [{"type": "track", "userId": f"u{i % 97}", "event": "E", "messageId": f"m{i}"}
                      for i in range(2000)])
    start = threading.Barrier(2)
    done = {}

    def worker(name):
        start.wait(10)
        done[name] = inbox_process_pending(limit=50)

    threads = [_in_thread(worker, name) for name in ("a", "b")]
    for thread, errors in threads:
        thread.join(120)
        assert not errors, errors
    assert done["a"].claimed + done["b"].claimed == 2000
    assert done["a"].claimed and done["b"].claimed  # both took part
    assert InboxMessage.objects.filter(status="processed").count() == 2000
    assert Event.objects.count() == 2000
    assert Event.objects.values("message_id").distinct().count() == 2000
    assert Identity.objects.filter(type="user_id").count() == 97
    assert Profile.objects.count() == 97


def test_claims_take_the_oldest_first_on_either_path(source):
    inbox_store(source=source, messages=[{"type": "track", "userId": "u", "event": f"E{i}"} for i in range(5)])
    with transaction.atomic():
        rows = _claim(source_id=source.pk, limit=3)
    assert [row[3]["event"] for row in rows] == ["E0", "E1", "E2"]
    assert inbox_process_batch(source_id=source.pk, limit=3).claimed == 3
    assert inbox_process_batch(source_id=source.pk, limit=3).claimed == 2


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_stores_share_one_insert_and_each_gets_its_own_answer():
    from django.db import DataError

    from ingestion.services.inbox import GroupInsert

    source, _ = source_create(name="Web", kind="http")
    group = GroupInsert()
    now = timezone.now()
    start = threading.Barrier(8)
    answers = {}

    def row(message_id, text='{"type": "track"}'):
        return (source.pk, message_id, "track", text, now, "pending", "", None)

    def store(n):
        start.wait(10)
        rows = [row(f"m{n}-{i}") for i in range(3)] + [row("shared")]  # "shared" is in every call
        if n == 7:
            rows = [row("bad", text="{not json")]
        try:
            answers[n] = group.insert(rows)
        except DataError as error:
            answers[n] = error

    threads = [_in_thread(store, n) for n in range(8)]
    for thread, errors in threads:
        thread.join(60)
        assert not errors, errors
    assert isinstance(answers.pop(7), DataError)  # the bad row fails alone ...
    assert sorted(answers.values()) == [3] * 6 + [4]  # ... and "shared" counts as new exactly once
    stored = set(InboxMessage.objects.filter(source=source).values_list("message_id", flat=True))
    assert stored == {f"m{n}-{i}" for n in range(7) for i in range(3)} | {"shared"}


def test_messages_stored_while_their_source_was_deleted_are_dropped_with_it(source):
    """The inbox keeps no database constraint on its source (it would cost a lookup per stored row): a message that
    arrives while its source is being deleted is dropped by processing, as the source's other messages were."""
    other, _ = source_create(name="App", kind="http")
    inbox_store(source=source, messages=[{"type": "track", "userId": "u-1", "event": "Kept"}])
    inbox_store(source=other, messages=[{"type": "track", "userId": "u-2", "event": "Late"}])
    other_id = other.pk
    Source.objects.filter(pk=other_id).delete()  # its messages go with it (Django's cascade) ...
    assert not InboxMessage.objects.filter(source_id=other_id).exists()
    # ... and one stored by a request that looked the source up just before the delete stays behind.
    InboxMessage.objects.create(source_id=other_id, message_id="late", type="track",
                                payload={"type": "track", "userId": "u-2", "event": "Late"})
    result = inbox_process_pending()
    assert (result.claimed, result.processed, result.rejected, result.dropped) == (2, 1, 0, 1)
    assert not InboxMessage.objects.filter(source_id=other_id).exists()
    assert statuses(source) == {InboxMessage.objects.get(source=source).message_id: "processed"}
