"""The real-time path through a real broker and worker: a trait change makes a person enter a segment, and the
signed webhook request reaches the destination (segments re-check -> segment_entered -> delta -> delivery), with
nothing run in-process. Needs CELERY_BROKER_URL and PostgreSQL (the worker process shares the test database).
The latency is measured by benchmarks/activation.py, not asserted here."""

import os
import signal
import subprocess
import sys
import time
import uuid
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from activation import services
from cdp.celery import Queues
from consent.models import ConsentRecord, Purpose
from consent.services import consent_record
from profiles.models import Profile
from profiles.services import Observation, observations_apply
from segments.catalog import catalog_clear
from segments.services import segment_create
from tests.core.helpers import ROOT


def _observe(email: str, tier: str) -> Profile:
    ids = observations_apply(observations=[Observation(
        identities=[("email", email)], timestamp=timezone.now(), source="crm", channel="crm",
        traits={"email": email, "tier": tier}, event_type="identify", message_id=uuid.uuid4().hex)])
    return Profile.objects.get(pk=ids[0])


@pytest.fixture
def worker(tmp_path):
    if not os.environ.get("CELERY_BROKER_URL"):
        pytest.skip("CELERY_BROKER_URL is not set: no broker to run a real worker against")
    if connection.vendor != "postgresql":
        pytest.skip("the worker process must share the test database: PostgreSQL only")
    database = connection.settings_dict
    url = (f"postgres://{quote(database['USER'] or '', safe='')}:{quote(database['PASSWORD'] or '', safe='')}@"
           f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}")
    log = tmp_path / "worker.log"
    # the worker decrypts the destination's secrets with the test's keys and may reach the local receiver
    env = dict(os.environ, PYTHONPATH=str(ROOT), CDP_VAR_DIR=str(tmp_path), DATABASE_URL=url,
               CDP_ENCRYPTION_KEYS=",".join(settings.CDP_ENCRYPTION_KEYS),
               CDP_DESTINATION_ALLOWED_NETWORKS="127.0.0.0/8")
    command = [sys.executable, "-m", "celery", "-A", "cdp", "worker", "-Q", ",".join(q.value for q in Queues),
               "-P", "solo", "-l", "INFO", "-n", f"activation-test-{uuid.uuid4().hex[:8]}@%h",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    yield process, log
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_person_who_enters_a_segment_reaches_the_webhook_through_the_worker(worker, receiver):
    process, log = worker
    purpose = Purpose.objects.get_or_create(key="email_marketing", defaults={"name": "Email marketing"})[0]
    ann = _observe("ann@example.com", "none")
    consent_record(profile=ann, purpose=purpose, status=ConsentRecord.Status.GRANTED)
    catalog_clear()
    segment = segment_create(name="VIPs", rules={"type": "trait", "trait": "tier", "op": "equals", "value": "vip"})
    destination = services.destination_create(name="Hook", kind="webhook", config={"url": receiver.url}).destination
    services.activation_create(name="VIPs now", segment=segment, destination=destination, purpose=purpose,
                               mapping={"email": "traits.email"}, schedule="realtime")

    _observe("ann@example.com", "vip")  # committed: profile_changed goes to the broker

    deadline = time.monotonic() + 120
    while not receiver.requests:
        if process.poll() is not None:
            pytest.fail(f"the worker exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no request reached the webhook:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)
    (request,) = receiver.requests
    assert [(item["change"], item["data"]) for item in request.json["items"]] == [
        ("added", {"email": "ann@example.com"})]
