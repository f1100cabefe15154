"""Each destination against its local fake server: delivered once, and on 4xx, 5xx, a slow answer or no answer a
visible error, nothing lost (a dead letter keeps the batch) and nothing sent twice (the idempotency key)."""

import json

import boto3
import pytest

from activation import services
from activation.destinations import ConfigInvalid
from activation.models import Delivery, DeliveryItem, Sync, SyncMember
from segments.services import segment_refresh
from tests.activation.fakes import free_port


def _emails(requests, key="items"):
    return sorted(item["data"]["email"] if "data" in item else item["email"]
                  for request in requests for item in request.json[key])


@pytest.fixture
def two_vips(make_person, vips):
    people = make_person("ann@example.com", first_name="Ann"), make_person("bob@example.com", first_name="Bob")
    segment_refresh(segment=vips)
    return people


# --- webhook ---------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_5xx_is_retried_with_the_same_key_and_delivered_once(receiver, webhook, two_vips, make_activation, run_sync):
    receiver.answer((503, 0))
    sync = run_sync(make_activation(webhook))

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (Delivery.Status.DELIVERED, 2, "")
    assert len(receiver.requests) == 1 and _emails(receiver.requests) == ["ann@example.com", "bob@example.com"]
    assert (sync.status, sync.sent, sync.failed) == (Sync.Status.SUCCEEDED, 2, 0)


@pytest.mark.django_db
def test_a_4xx_is_a_dead_letter_with_its_reason_and_a_resend_delivers_it(
        receiver, webhook, two_vips, make_activation, run_sync, django_capture_on_commit_callbacks):
    receiver.answer((422, 0))
    activation = make_activation(webhook)
    sync = run_sync(activation)

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DEAD and delivery.attempts == 1  # a 4xx does not pass by retrying
    assert "HTTP 422" in delivery.last_error and "refused by the fake" in delivery.last_error
    assert (sync.status, sync.sent, sync.failed) == (Sync.Status.FAILED, 0, 2)
    assert "HTTP 422" in sync.error
    assert not SyncMember.objects.exists() and receiver.requests == []
    assert DeliveryItem.objects.filter(delivery=delivery).count() == 2  # nothing lost

    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_resend(delivery=delivery)
    delivery.refresh_from_db()
    sync.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 2
    assert receiver.requests[0].headers["Idempotency-Key"] == str(delivery.idempotency_key)
    assert (sync.status, sync.sent, sync.failed) == (Sync.Status.SUCCEEDED, 2, 0)
    assert SyncMember.objects.count() == 2
    with pytest.raises(services.NotResendable):
        services.delivery_resend(delivery=delivery)


@pytest.mark.django_db
def test_a_slow_answer_times_out_and_the_retry_is_not_a_second_delivery(
        receiver, webhook, two_vips, make_activation, run_sync):
    """The receiver takes the first request but answers after the read timeout (1 s): the retry carries the same
    idempotency key, so the receiver has one delivery and one repeat it dropped."""
    receiver.answer((200, 1.5))
    sync = run_sync(make_activation(webhook))

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 2
    assert len(receiver.requests) == 1 and len(receiver.repeats) == 1
    assert receiver.repeats[0].headers["Idempotency-Key"] == receiver.requests[0].headers["Idempotency-Key"]
    assert sync.status == Sync.Status.SUCCEEDED


@pytest.mark.django_db
def test_an_unreachable_destination_ends_as_a_dead_letter_and_does_not_hold_up_another(
        receiver, webhook, two_vips, make_activation, run_sync):
    closed = services.destination_create(name="Nowhere", kind="webhook", config={
        "url": f"http://127.0.0.1:{free_port()}/hook", "connect_timeout": 0.5}).destination
    failing = run_sync(make_activation(closed))
    working = run_sync(make_activation(webhook))

    dead = Delivery.objects.get(destination=closed)
    assert dead.status == Delivery.Status.DEAD and dead.attempts == dead.max_attempts
    assert "could not connect to 127.0.0.1" in dead.last_error
    assert failing.status == Sync.Status.FAILED and failing.failed == 2
    assert working.status == Sync.Status.SUCCEEDED and len(receiver.requests) == 1
    # the people of the dead letter are not lost: the next sync of that activation sends them again
    assert not SyncMember.objects.filter(activation__destination=closed).exists()


@pytest.mark.django_db
def test_retries_wait_longer_each_time_with_jitter():
    from activation.services.deliveries import retry_delay

    assert all(0 <= retry_delay(1) <= 2 for _ in range(20))
    assert max(retry_delay(6) for _ in range(200)) > 2  # up to 64 s by the sixth attempt
    assert all(retry_delay(20) <= 300 for _ in range(20))


@pytest.mark.django_db
@pytest.mark.parametrize(("config", "field"), [
    ({"url": "ftp://example.com"}, "config.url"),
    ({}, "config.url"),
    ({"url": "https://example.com", "read_timeout": "soon"}, "config.read_timeout"),
    ({"url": "https://example.com", "read_timeout": 600}, "config.read_timeout"),
    ({"url": "https://example.com", "colour": "red"}, "config.colour"),
    ({"url": "https://user:pw@example.com"}, "config.url"),
])
def test_a_bad_webhook_configuration_names_the_field(config, field):
    with pytest.raises(ConfigInvalid) as error:
        services.destination_create(name="Hook", kind="webhook", config=config)
    assert field in error.value.errors


# --- generic audience API --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_audience_api_adds_and_removes_members_in_batches_with_its_token(
        receiver, make_person, vips, make_activation, run_sync):
    destination = services.destination_create(name="Ads", kind="audience_api", config={
        "add_url": receiver.url + "/members/add", "remove_url": receiver.url + "/members/remove",
        "test_url": receiver.url + "/ping", "batch_size": 2}, secrets={"token": "t0ken"}).destination
    people = [make_person(f"p{i}@example.com") for i in range(3)]
    segment_refresh(segment=vips)
    activation = make_activation(destination)
    sync = run_sync(activation)
    assert (sync.added, sync.deliveries_total, sync.sent) == (3, 2, 3)
    assert [r.path for r in receiver.requests] == ["/members/add", "/members/add"]
    assert {r.headers["Authorization"] for r in receiver.requests} == {"Bearer t0ken"}
    assert _emails(receiver.requests, "members") == ["p0@example.com", "p1@example.com", "p2@example.com"]

    receiver.requests.clear()
    make_person("p0@example.com", tier="basic")
    from tests.activation.conftest import recheck

    recheck(*people)
    run_sync(activation)
    assert [(r.path, _emails([r], "members")) for r in receiver.requests] == [
        ("/members/remove", ["p0@example.com"])]

    assert services.destination_test(destination=destination) == (True, "HTTP 200")
    assert "t0ken" not in json.dumps(destination.config)


# --- file export ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_a_file_export_writes_one_file_per_batch_named_by_its_key(
        settings, tmp_path, two_vips, make_activation, run_sync, file_format):
    settings.VAR_DIR = tmp_path
    destination = services.destination_create(name="Files", kind="file", config={
        "storage": "local", "format": file_format, "directory": "crm/daily"}).destination
    run_sync(make_activation(destination))

    delivery = Delivery.objects.get()
    (written,) = list((tmp_path / "exports" / "crm" / "daily").rglob(f"*.{file_format}"))
    assert str(delivery.idempotency_key) in written.name
    text = written.read_text()
    if file_format == "csv":
        assert text.splitlines()[0] == "change,profile_id,customer,email,first_name"
        assert "added," in text and f"{two_vips[0].pk},ann@example.com,Ann" in text
    else:
        rows = [json.loads(line) for line in text.splitlines()]
        assert sorted(r["email"] for r in rows) == ["ann@example.com", "bob@example.com"]
    # a retry of the same delivery rewrites the same file, it adds none
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.PENDING)
    services.delivery_attempt(delivery_id=delivery.pk)
    assert len(list((tmp_path / "exports").rglob(f"*.{file_format}"))) == 1


@pytest.mark.django_db
def test_a_csv_cell_that_a_spreadsheet_would_run_is_quoted(settings, tmp_path, make_person, vips, make_activation,
                                                           run_sync):
    settings.VAR_DIR = tmp_path
    make_person("eve@example.com", first_name="=HYPERLINK(\"http://x\")")
    segment_refresh(segment=vips)
    destination = services.destination_create(name="Files", kind="file", config={"directory": "out"}).destination
    run_sync(make_activation(destination))
    (written,) = list((tmp_path / "exports").rglob("*.csv"))
    assert "'=HYPERLINK" in written.read_text()


@pytest.mark.django_db
@pytest.mark.parametrize(("config", "field"), [
    ({"storage": "local", "directory": "../etc"}, "config.directory"),
    ({"storage": "local", "directory": "/srv/exports"}, "config.directory"),
    ({"storage": "s3"}, "config.bucket"),
    ({"storage": "tape", "directory": "x"}, "config.storage"),
])
def test_a_bad_file_configuration_names_the_field(config, field):
    with pytest.raises(ConfigInvalid) as error:
        services.destination_create(name="Files", kind="file", config=config)
    assert field in error.value.errors


@pytest.mark.django_db
def test_an_s3_export_goes_to_the_bucket_and_an_unreachable_store_is_a_dead_letter(
        s3_endpoint, two_vips, make_activation, run_sync):
    keys = {"access_key_id": "testing", "secret_access_key": "testing"}
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="cdp-exports")
    destination = services.destination_create(name="S3", kind="file", config={
        "storage": "s3", "format": "jsonl", "bucket": "cdp-exports", "prefix": "audiences",
        "endpoint_url": s3_endpoint}, secrets=keys).destination
    assert services.destination_test(destination=destination)[0]
    sync = run_sync(make_activation(destination))
    assert sync.status == Sync.Status.SUCCEEDED

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    (obj,) = s3.list_objects_v2(Bucket="cdp-exports", Prefix="audiences/")["Contents"]
    body = s3.get_object(Bucket="cdp-exports", Key=obj["Key"])["Body"].read().decode()
    assert sorted(json.loads(line)["email"] for line in body.splitlines()) == ["ann@example.com",
                                                                               "bob@example.com"]

    nowhere = services.destination_create(name="S3 down", kind="file", config={
        "storage": "s3", "bucket": "cdp-exports", "endpoint_url": f"http://127.0.0.1:{free_port()}",
        "connect_timeout": 0.5}, secrets=keys).destination
    failed = run_sync(make_activation(nowhere))
    dead = Delivery.objects.get(destination=nowhere)
    assert (failed.status, dead.status) == (Sync.Status.FAILED, Delivery.Status.DEAD)
    assert "could not connect to the storage" in dead.last_error

    missing = services.destination_create(name="S3 no bucket", kind="file", config={
        "storage": "s3", "bucket": "no-such-bucket", "endpoint_url": s3_endpoint}, secrets=keys).destination
    run_sync(make_activation(missing))
    dead = Delivery.objects.get(destination=missing)
    assert dead.status == Delivery.Status.DEAD and dead.attempts == 1 and "NoSuchBucket" in dead.last_error
