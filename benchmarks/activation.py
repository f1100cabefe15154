"""Real-time activation latency: from a profile change that makes someone enter a segment to the webhook request
at the destination, through the real path with a Celery worker and Redis.

    .venv/bin/python benchmarks/activation.py            # 100 trials
    .venv/bin/python benchmarks/activation.py --quick    # 20 trials (well under 2 minutes)

The path measured: ``observations_apply`` (the pipeline's bulk profiles service) commits a trait change and sends
``profile_changed`` -> the segments task re-checks the profile (segments queue) and sends ``segment_entered`` ->
activation's ``segment_members_changed`` computes the delta of that profile for each real-time activation and
queues a delivery -> ``delivery_send`` POSTs the signed batch to the webhook. The webhook is a local HTTP receiver
in this process, which notes the arrival time; the clock starts just before the change is applied.

A worker (``celery -A cdp worker``, prefork, 2 processes, every queue) runs in a subprocess against PostgreSQL
(database cdp_bench_activation, created and migrated when missing) and Redis db 6 (emptied at the start). Trials
run one after another, each waiting for its request. The last line printed is one JSON object with the figures;
the target is p95 <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE = "postgres://postgres@127.0.0.1:5432/cdp_bench_activation"
BROKER = "redis://127.0.0.1:6379/6"
RECEIVER_PORT = 8060
TARGET_P95_MS = 5000


def log(message: str) -> None:
    print(f"activation benchmark: {message}", file=sys.stderr, flush=True)


def database_ensure(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"cdp_[a-z0-9_]*bench[a-z0-9_]*", name):
        raise SystemExit(f"the database must be one of the benchmark's own (cdp_..bench..), not {name!r}")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f"CREATE DATABASE {name}")


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lscpu if line.startswith("Model name")), "")
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "load_1m": round(os.getloadavg()[0], 2)}


class Arrivals:
    def __init__(self):
        self.seen: dict[str, float] = {}
        self.event = threading.Condition()

    def wait_for(self, email: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.event:
            while email not in self.seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.event.wait(left)
            return self.seen[email]


def receiver_start(arrivals: Arrivals, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            at = time.monotonic()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with arrivals.event:
                for item in json.loads(body).get("items", []):
                    if item.get("change") == "added":
                        arrivals.seen.setdefault(item["data"].get("email"), at)
                arrivals.event.notify_all()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 trials")
    parser.add_argument("--trials", type=int)
    parser.add_argument("--database-url", default=DATABASE)
    parser.add_argument("--broker-url", default=BROKER)
    parser.add_argument("--port", type=int, default=RECEIVER_PORT, help="the local webhook receiver's port")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one trial's request")
    args = parser.parse_args()
    trials = args.trials or (20 if args.quick else 100)
    database_ensure(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["CELERY_BROKER_URL"] = args.broker_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    os.environ.setdefault("CDP_DESTINATION_ALLOWED_NETWORKS", "127.0.0.0/8")  # the local receiver (and the worker)
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from activation.models import Activation, Destination
    from activation.services import activation_create, destination_create
    from cdp.celery import Queues, app
    from consent.models import ConsentRecord, Purpose
    from consent.services import consent_record, purposes_install
    from profiles.models import Profile
    from profiles.services import Observation, observations_apply
    from segments.catalog import catalog_clear
    from segments.models import Segment
    from segments.services import segment_create

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(args.broker_url).flushdb()
    purposes_install()
    purpose = Purpose.objects.get(key="email_marketing")
    run = uuid.uuid4().hex[:8]

    def observe(email: str, tier: str) -> int:
        return observations_apply(observations=[Observation(
            identities=[("email", email)], timestamp=timezone.now(), source="bench", channel="crm",
            traits={"email": email, "tier": tier}, event_type="identify",
            message_id=f"bench-{uuid.uuid4().hex}")])[0]

    # The set-up: people outside the segment, with consent; the segment; a real-time activation to the receiver.
    emails = [f"rt-{run}-{i}@bench.example" for i in range(trials)]
    for email in emails:
        profile = Profile.objects.get(pk=observe(email, "none"))
        consent_record(profile=profile, purpose=purpose, status=ConsentRecord.Status.GRANTED)
    Activation.objects.filter(name="bench-activation realtime").delete()
    Destination.objects.filter(name="bench-activation receiver", activations__isnull=True).delete()
    catalog_clear()
    segment = Segment.objects.filter(slug="bench-activation-vips").first() or segment_create(
        name="bench-activation VIPs", rules={"type": "trait", "trait": "tier", "op": "equals", "value": "vip"})
    if segment.slug != "bench-activation-vips":
        Segment.objects.filter(pk=segment.pk).update(slug="bench-activation-vips")
    destination = destination_create(name="bench-activation receiver", kind="webhook",
                                     config={"url": f"http://127.0.0.1:{args.port}/hook"}).destination
    activation_create(name="bench-activation realtime", segment=segment, destination=destination, purpose=purpose,
                      mapping={"email": "traits.email", "tier": "traits.tier"}, schedule="realtime")

    arrivals = Arrivals()
    server = receiver_start(arrivals, args.port)
    workdir = Path(tempfile.mkdtemp(prefix="cdp-bench-activation-"))
    worker_log = workdir / "worker.log"
    # the worker decrypts the destination's signing secret with this process's keys
    env = dict(os.environ, PYTHONPATH=str(ROOT), CDP_VAR_DIR=str(workdir),
               CDP_ENCRYPTION_KEYS=",".join(settings.CDP_ENCRYPTION_KEYS))
    command = [sys.executable, "-m", "celery", "-A", "cdp", "worker", "-Q", ",".join(q.value for q in Queues),
               "-c", "2", "-l", "WARNING", "-n", f"bench-activation-{run}@%h", "--without-gossip",
               "--without-mingle", "--without-heartbeat"]
    with open(worker_log, "w") as output:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        app.tasks["cdp.ping"].delay("ready").get(timeout=60)
        # The set-up queued a re-check per person; trials start once the queues are empty (a trial must not wait
        # behind the set-up's backlog), and the tasks still running have had time to finish.
        broker = redis.Redis.from_url(args.broker_url)
        while sum(broker.llen(queue.value) for queue in Queues):
            time.sleep(0.5)
        time.sleep(3)
        log(f"worker ready; {trials} trials")
        latencies = []
        missed = 0
        for email in emails:
            began = time.monotonic()
            observe(email, "vip")  # commits, then profile_changed goes to the broker
            arrived = arrivals.wait_for(email, args.timeout)
            if arrived is None:
                missed += 1
                log(f"no request for {email} within {args.timeout:g} s")
                continue
            latencies.append((arrived - began) * 1000)
            time.sleep(0.05)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.shutdown()
        if missed:
            log(f"worker log (end):\n{worker_log.read_text()[-4000:]}")
        shutil.rmtree(workdir, ignore_errors=True)
    values = sorted(latencies)
    result = {
        "benchmark": "activation realtime", "trials": trials, "missed": missed,
        "latency_ms": {"median": round(statistics.median(values), 1),
                       "p95": round(values[int(0.95 * (len(values) - 1))], 1),
                       "min": round(values[0], 1), "max": round(values[-1], 1)} if values else None,
        "target_p95_ms": TARGET_P95_MS,
        "met": bool(values) and not missed and values[int(0.95 * (len(values) - 1))] <= TARGET_P95_MS,
        "worker": "prefork -c 2, every queue", "database": "PostgreSQL", "broker": "Redis",
        "machine": machine(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
