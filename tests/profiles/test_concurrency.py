"""Two workers resolving the same new identity at once never create two profiles: parallel PROCESSES on
PostgreSQL, each with its own connection, released at the same instant.

How it holds: identities are unique by (type, value). ``observations_apply`` inserts a batch's new identities
with ON CONFLICT DO NOTHING and compares the count; a batch that lost a race rolls back to its savepoint (its new
profiles go with it) and resolves again, now finding the winner's identities (see profiles/services/observations.py).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from profiles.models import Event, Identity, Merge, Profile

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="concurrent writers in separate processes need PostgreSQL (set DATABASE_URL)"),
]
ROOT = Path(settings.BASE_DIR)

WORKER = r"""
import json, os, sys, time
from datetime import datetime, UTC
import django
django.setup()
from profiles.services import Observation, observations_apply
start, worker, batches = float(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
while time.time() < start:
    time.sleep(0.0005)
out = []
for batch in batches:
    out.append(observations_apply(observations=[
        Observation(identities=[tuple(i) for i in item], timestamp=datetime.now(UTC), source=f"w{worker}",
                    traits={"worker": worker}, event_type="track", event_name="Raced") for item in batch]))
print(json.dumps(out))
"""


def run_workers(batches_per_worker: list[list]) -> list:
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "cdp.settings"}
    start = time.time() + 3.0  # every process is up and imported by then
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(start), str(n), json.dumps(batches)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n, batches in enumerate(batches_per_worker)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_parallel_processes_resolving_the_same_new_identities_create_one_profile_each():
    workers = 6
    people = [[["email", f"p{i}@example.org"]] for i in range(200)]
    # Every worker sends every person, in its own order and batch sizes: maximal overlap.
    batches = []
    for n in range(workers):
        order = people[n % 2::2] + people[(n + 1) % 2::2] if n % 3 else list(reversed(people))
        size = 10 + 15 * n
        batches.append([order[i:i + size] for i in range(0, len(order), size)])
    results = run_workers(batches)
    assert Profile.objects.count() == len(people)
    assert Identity.objects.count() == len(people)
    assert Event.objects.count() == workers * len(people)  # nothing lost
    by_person = {}
    for worker_batches, order_batches in zip(results, batches, strict=True):
        for ids, batch in zip(worker_batches, order_batches, strict=True):
            for pid, item in zip(ids, batch, strict=True):
                by_person.setdefault(item[0][1], set()).add(pid)
    assert all(len(ids) == 1 for ids in by_person.values())


def test_parallel_identify_and_alias_of_the_same_person_end_in_one_live_profile():
    # Worker 0 sees the device and the email, worker 1 the user id with the same device, worker 2 the email with
    # the user id: whichever order they commit in, links are found and the profiles merge (journaled).
    batches = [
        [[[["anonymous_id", f"dev-{i}"], ["email", f"s{i}@example.org"]] for i in range(60)]],
        [[[["user_id", f"u-{i}"], ["anonymous_id", f"dev-{i}"]] for i in range(60)]],
        [[[["user_id", f"u-{i}"], ["email", f"s{i}@example.org"]] for i in range(60)]],
    ]
    run_workers(batches)
    live = Profile.objects.filter(merged_into=None)
    assert live.count() == 60
    for i in (0, 29, 59):
        owners = set(Identity.objects.filter(value__in=[f"dev-{i}", f"s{i}@example.org", f"u-{i}"])
                     .values_list("profile_id", flat=True))
        assert len(owners) == 1
    assert Event.objects.count() == 180
    assert Event.objects.filter(profile__merged_into__isnull=False).count() == 0
    assert Merge.objects.count() == Profile.objects.count() - 60
