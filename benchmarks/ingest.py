"""Ingestion throughput, measured in one run on this machine: gunicorn + PostgreSQL, the load generated locally.

    .venv/bin/python benchmarks/ingest.py [--quick] [--database-url URL] [--broker-url URL]

1. Single-event POST /v1/track (requests/s) against a bare Django view that only parses the same JSON body
   (benchmarks/ingest_urls.py; same server, same middleware), in alternating rounds. Target: >= 80 %.
2. POST /v1/batch with 100 events per request, stored durably in the inbox (events/s). Target: >= 20,000.
3. Inbox to unified profiles: everything the HTTP phases stored, processed by one worker process (the code the
   Celery task runs), then by two. Target: >= 5,000 events/s per worker process.
4. Further figures (the 1,000,000-row CSV import of the connectors) plug into EXTRA_BENCHMARKS below.

The server runs in production mode (DEBUG off) under gunicorn; tasks go to a real broker (Redis) and no worker
consumes them during the HTTP phases, so requests only store. The load comes from wrk (Debian package ``wrk``)
or, without it, from a Python load generator (processes with keep-alive connections; it takes more of the
machine's CPU, so figures are lower). The database given by --database-url is dropped and created again.

The last line printed is one JSON object with the figures. ``--quick`` runs a small scale in under 2 minutes;
the full scale is the default.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import multiprocessing
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SCALES = {
    "quick": {"duration": 4, "rounds": 1, "warmup": 1, "batch_duration": 3},
    "full": {"duration": 15, "rounds": 3, "warmup": 3, "batch_duration": 15},
}
USERS = 20_000  # distinct people in the generated traffic, each on up to 3 devices (anonymous ids)
TARGETS = {"track_vs_bare": 0.80, "batch_events_per_s": 20_000, "inbox_to_profiles_events_per_s_per_worker": 5_000}

# (name, function(args, context) -> dict): further figures merged into the result. The connectors helper adds
# the 1,000,000-row CSV import here (def bench_csv_import(args, context) -> {"csv_import_1m_rows_seconds": ...}).
EXTRA_BENCHMARKS: list = []


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the environment ---------------------------------------------------------------------------------------------


def server_environment(args) -> dict:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "benchmarks.ingest_settings",
        "CDP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "CDP_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.broker_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    })
    return env


def database_recreate(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise SystemExit(f"--database-url must name a database of [a-z0-9_], not {name!r}")
    maintenance = parts._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def manage(env, *arguments) -> str:
    result = subprocess.run([PYTHON, str(ROOT / "manage.py"), *arguments], env=env, cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(arguments)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lscpu if line.startswith("Model name")), "")
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform(), "lscpu_head": lscpu[:10]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, env, *, workers: int, threads: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        gunicorn = shutil.which("gunicorn", path=str(Path(PYTHON).parent)) or "gunicorn"
        self.command = [gunicorn, "cdp.wsgi:application", "--bind", f"127.0.0.1:{self.port}", "--workers",
                        str(workers), "--worker-class", "gthread" if threads > 1 else "sync", "--threads",
                        str(threads), "--keep-alive", "30", "--backlog", "2048", "--log-level", "warning",
                        "--chdir", str(ROOT)]
        self.env = env
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen(self.command, env=self.env, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise SystemExit("gunicorn did not start")

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


# --- load -------------------------------------------------------------------------------------------------------

# One event per request; the same body for /v1/track and the bare view. Users repeat over USERS people.
TRACK_EVENT = ('{"userId":"user-%d","anonymousId":"anon-%d-%d","event":"Product Viewed",'
               '"properties":{"sku":"SKU-%d","price":%d.99,"category":"shoes","currency":"EUR"},'
               '"context":{"ip":"10.1.2.3","library":{"name":"bench","version":"1.0"},'
               '"page":{"path":"/p/%d","url":"https://shop.example.com/p/%d"},"consent":{"analytics":true}},'
               '"timestamp":"2025-01-01T00:00:00Z","sentAt":"2025-01-01T00:00:01Z"}')
IDENTIFY_EVENT = ('{"type":"identify","userId":"user-%d","traits":{"email":"user.%d@example.com",'
                  '"phone":"+4917%08d","first_name":"Ada","last_name":"Lovelace","plan":"pro"},'
                  '"context":{"library":{"name":"bench","version":"1.0"}},"timestamp":"2025-01-01T00:00:00Z"}')
PAGE_EVENT = ('{"type":"page","anonymousId":"anon-%d-%d","userId":"user-%d","name":"Product",'
              '"properties":{"path":"/p/%d","referrer":"https://search.example.com/"},'
              '"context":{"library":{"name":"bench","version":"1.0"}},"timestamp":"2025-01-01T00:00:00Z"}')


def _event_python(kind: str, n: int, thread: int) -> str:
    user = (n * 7 + thread) % USERS
    if kind == "identify":
        return IDENTIFY_EVENT % (user, user, user)
    if kind == "page":
        return PAGE_EVENT % (user, n % 3, user, n % 5000)
    return TRACK_EVENT % (user, user, n % 3, n % 5000, n % 300, n % 5000, n % 5000)


def _batch_python(n: int, thread: int) -> str:
    events = []
    for i in range(100):
        k = n * 100 + i
        kind = "identify" if i % 10 == 0 else ("page" if i % 10 >= 7 else "track")
        body = _event_python(kind, k, thread)
        events.append(body if kind != "track" else '{"type":"track",' + body[1:])
    return '{"batch":[' + ",".join(events) + '],"sentAt":"2025-01-01T00:00:01Z"}'


def _lua(kind: str, write_key: str) -> str:
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    lua_fmt = {"track": TRACK_EVENT, "identify": IDENTIFY_EVENT, "page": PAGE_EVENT}
    track, identify, page = (json.dumps(lua_fmt[name]) for name in ("track", "identify", "page"))
    return f"""
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic {auth}"
local n = 0
local USERS = {USERS}
local function event(kind, k)
  local user = (k * 7 + tid) % USERS
  if kind == "identify" then return string.format({identify}, user, user, user) end
  if kind == "page" then return string.format({page}, user, k % 3, user, k % 5000) end
  return string.format({track}, user, user, k % 3, k % 5000, k % 300, k % 5000, k % 5000)
end
request = function()
  n = n + 1
  local body
  if "{kind}" == "batch" then
    local events = {{}}
    for i = 0, 99 do
      local k = n * 100 + i
      local m = i % 10
      if m == 0 then events[#events + 1] = event("identify", k)
      elseif m >= 7 then events[#events + 1] = event("page", k)
      else events[#events + 1] = '{{"type":"track",' .. string.sub(event("track", k), 2) end
    end
    body = '{{"batch":[' .. table.concat(events, ",") .. '],"sentAt":"2025-01-01T00:00:01Z"}}'
  else
    body = event("track", n)
  end
  return wrk.format(nil, nil, nil, body)
end
"""


def run_wrk(url: str, kind: str, write_key: str, *, duration: float, connections: int, threads: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(kind, write_key))
    try:
        out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
                              "--timeout", "10s", "-s", script.name, url], capture_output=True, text=True,
                             check=True).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    socket_errors = sum(map(int, m.groups())) if (m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)) else 0
    latency = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    return {"rps": rps, "requests": total, "non_2xx": non_2xx, "socket_errors": socket_errors,
            "latency_avg": latency.group(1) if latency else None, "latency_max": latency.group(3) if latency else None}


def _python_load_worker(url, kind, write_key, duration, thread, queue):
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json",
               "Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    done = bad = n = 0
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        n += 1
        body = _batch_python(n, thread) if kind == "batch" else _event_python("track", n, thread)
        try:
            conn.request("POST", parts.path, body, headers)
            response = conn.getresponse()
            response.read()
            done += 1
            bad += response.status >= 300
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    queue.put((done, bad))


def run_python_load(url: str, kind: str, write_key: str, *, duration: float, connections: int, threads: int) -> dict:
    queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_python_load_worker, args=(url, kind, write_key, duration, i, queue))
               for i in range(connections)]
    start = time.monotonic()
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - start
    total, bad = sum(r[0] for r in results), sum(r[1] for r in results)
    return {"rps": total / elapsed, "requests": total, "non_2xx": bad, "socket_errors": 0, "latency_avg": None,
            "latency_max": None}


# --- inbox to profiles ----------------------------------------------------------------------------------------------


def process_worker() -> None:
    """One worker process: drain the inbox with the pipeline the Celery task runs; print its figures."""
    import django

    django.setup()
    from ingestion.services.pipeline import inbox_process_pending

    start, cpu = time.monotonic(), time.process_time()
    result = inbox_process_pending()
    print(json.dumps({"claimed": result.claimed, "processed": result.processed, "rejected": result.rejected,
                      "seconds": time.monotonic() - start, "cpu_seconds": time.process_time() - cpu}))


def run_processing(env, workers: int) -> dict:
    start = time.monotonic()
    procs = [subprocess.Popen([PYTHON, __file__, "--process-worker"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              text=True) for _ in range(workers)]
    results = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
    elapsed = time.monotonic() - start
    claimed = sum(r["claimed"] for r in results)
    busy = max(r["seconds"] for r in results)
    return {"workers": workers, "messages": claimed, "processed": sum(r["processed"] for r in results),
            "rejected": sum(r["rejected"] for r in results), "seconds": round(busy, 2),
            "wall_seconds_with_startup": round(elapsed, 2),
            "events_per_s": round(claimed / busy) if busy else 0,
            "events_per_s_per_worker": round(claimed / busy / workers) if busy else 0,
            "worker_cpu_seconds": [round(r["cpu_seconds"], 2) for r in results]}


def _ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def server_pids(env, server) -> dict[str, list[int]]:
    """The gunicorn workers and this database's PostgreSQL backends (other databases' work is not ours)."""
    workers = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == server.process.pid:
                        workers.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    backends = [row[0] for row in sql(env, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")]
    return {"web": workers, "db": backends}


class ServerCPU:
    """CPU seconds the server spent during a load (gunicorn workers, and this database's client backends; the WAL
    writer and autovacuum aside): per request it is a figure that other work on a shared machine disturbs less than
    requests/s (though contention for the cores inflates it too)."""

    def __init__(self, env, server):
        self.env, self.server = env, server

    def __enter__(self):
        self.before = {pid: _ticks(pid) for pids in server_pids(self.env, self.server).values() for pid in pids}
        return self

    def __exit__(self, *exc):
        pids = server_pids(self.env, self.server)
        tick = os.sysconf("SC_CLK_TCK")
        self.seconds = {kind: sum(_ticks(pid) - self.before.get(pid, 0) for pid in group) / tick
                        for kind, group in pids.items()}


def _cpu_total(rounds: list[dict]) -> float:
    return sum(sum(r["cpu_us_per_request"].values()) for r in rounds) / len(rounds)


def sql(env, query: str, *params):
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def broker_purge(url: str) -> None:
    import redis

    redis.Redis.from_url(url).delete("ingestion")


# --- the run ----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small scale, under 2 minutes")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/cdp_tracking_bench",
                        help="a PostgreSQL database that is DROPPED and created again")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/4")
    # Many threads per worker: a durable single-event call waits for its commit (about 5 ms on this machine's
    # disk), and the tracking API's concurrent stores in one process share one INSERT and one commit.
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: nproc)")
    parser.add_argument("--threads", type=int, default=16, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--connections", type=int, default=64, help="concurrent client connections")
    parser.add_argument("--only-batch", action="store_true",
                        help="only the /v1/batch phase (its warm-up, then the measured load); no target is judged")
    parser.add_argument("--process-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.process_worker:
        return process_worker()

    scale = SCALES["quick" if args.quick else "full"]
    workers = args.workers or os.cpu_count() or 1
    env = server_environment(args)
    load = run_wrk if shutil.which("wrk") else run_python_load
    started = time.monotonic()
    log(f"Database {urlsplit(args.database_url).path.lstrip('/')}: recreating and migrating ...")
    database_recreate(args.database_url)
    manage(env, "migrate", "--noinput")
    write_key = manage(env, "create_source", "--kind", "http", "--channel", "web", "Benchmark web").strip() \
        .splitlines()[-1]
    broker_purge(args.broker_url)
    result: dict = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "load_average_at_start":
                    os.getloadavg(), "scale": "quick" if args.quick
                    else "full", "machine": machine(),
                    "server": {"gunicorn_workers": workers, "threads": args.threads, "connections": args.connections,
                               "load_generator": "wrk" if load is run_wrk else "python",
                               "postgres": sql(env, "SHOW server_version")[0][0]}}
    options = {"connections": args.connections, "threads": 2}
    with Server(env, workers=workers, threads=args.threads) as server:
        log(f"gunicorn at {server.url}: {workers} workers x {args.threads} threads; load: {load.__name__}")
        for kind, path in (("bare", "/bench/bare"), ("track", "/v1/track"), ("batch", "/v1/batch")):
            if args.only_batch and kind != "batch":
                continue
            load(server.url + path, "batch" if kind == "batch" else "track", write_key, duration=scale["warmup"],
                 **options)
        time.sleep(2)  # requests still in flight when a warm-up load stops are stored before the count
        before = sql(env, "SELECT count(*) FROM ingestion_inboxmessage")[0][0]
        rounds = {"bare": [], "track": []}
        for round_number in range(0 if args.only_batch else scale["rounds"]):
            for kind, path in (("bare", "/bench/bare"), ("track", "/v1/track")):
                with ServerCPU(env, server) as cpu:
                    figures = load(server.url + path, "track", write_key, duration=scale["duration"], **options)
                figures["cpu_us_per_request"] = {name: round(1e6 * seconds / max(figures["requests"], 1))
                                                 for name, seconds in cpu.seconds.items()}
                rounds[kind].append(figures)
                log(f"round {round_number + 1} {kind}: {figures['rps']:.0f} requests/s "
                    f"(non-2xx {figures['non_2xx']}, socket errors {figures['socket_errors']})")
        time.sleep(2)
        stored_track = sql(env, "SELECT count(*) FROM ingestion_inboxmessage")[0][0] - before
        with ServerCPU(env, server) as cpu:
            batch = load(server.url + "/v1/batch", "batch", write_key, duration=scale["batch_duration"], **options)
        batch_cpu = {name: round(1e6 * seconds / max(batch["requests"] * 100, 1), 1)
                     for name, seconds in cpu.seconds.items()}
        log(f"batch: {batch['rps']:.0f} requests/s = {batch['rps'] * 100:.0f} events/s (non-2xx {batch['non_2xx']})")
    stored_total = sql(env, "SELECT count(*) FROM ingestion_inboxmessage")[0][0]
    stored_batch = stored_total - before - stored_track
    broker_purge(args.broker_url)
    if args.only_batch:
        result.update({"batch_requests_per_s": round(batch["rps"], 1), "batch_events_per_s": round(batch["rps"] * 100),
                       "batch_errors": batch["non_2xx"] + batch["socket_errors"], "batch_events_stored": stored_batch,
                       "batch_latency_avg": batch["latency_avg"], "batch_cpu_us_per_event": batch_cpu,
                       "seconds": round(time.monotonic() - started, 1), "load_average_at_end": os.getloadavg()})
        print(json.dumps(result))
        return

    bare_rps = sum(r["rps"] for r in rounds["bare"]) / len(rounds["bare"])
    track_rps = sum(r["rps"] for r in rounds["track"]) / len(rounds["track"])
    track_ok = sum(r["requests"] - r["non_2xx"] for r in rounds["track"])
    result.update({
        "bare_view_requests_per_s": round(bare_rps),
        "single_track_requests_per_s": round(track_rps),
        "track_vs_bare": round(track_rps / bare_rps, 3),
        "track_rounds": [{"bare": round(b["rps"]), "track": round(t["rps"]), "track_latency_avg": t["latency_avg"],
                          "bare_cpu_us": b["cpu_us_per_request"], "track_cpu_us": t["cpu_us_per_request"]}
                         for b, t in zip(rounds["bare"], rounds["track"], strict=True)],
        # The server CPU a request costs (web workers + its database backends), the mean of the rounds: their ratio is
        # the throughput ratio a CPU-bound, otherwise idle machine would show, whatever else ran meanwhile.
        "track_vs_bare_by_cpu": round(_cpu_total(rounds["bare"]) / _cpu_total(rounds["track"]), 3),
        "track_errors": sum(r["non_2xx"] + r["socket_errors"] for r in rounds["track"]),
        "track_requests_ok": track_ok,
        "track_messages_stored": stored_track,
        "batch_requests_per_s": round(batch["rps"], 1),
        "batch_events_per_s": round(batch["rps"] * 100),
        "batch_errors": batch["non_2xx"] + batch["socket_errors"],
        "batch_events_stored": stored_batch,
        "batch_latency_avg": batch["latency_avg"],
        "batch_cpu_us_per_event": batch_cpu,
    })

    log(f"Processing {stored_total:,} inbox messages with 1 worker process ...")
    one = run_processing(env, 1)
    log(f"1 worker: {one['events_per_s']:,} events/s ({one['messages']:,} messages in {one['seconds']} s)")
    result["inbox_to_profiles"] = {"one_worker": one}
    result["inbox_to_profiles_events_per_s_per_worker"] = one["events_per_s_per_worker"]
    counts = sql(env, "SELECT (SELECT count(*) FROM profiles_profile), (SELECT count(*) FROM profiles_identity), "
                      "(SELECT count(*) FROM profiles_event), (SELECT count(*) FROM ingestion_inboxmessage "
                      "WHERE status = 'pending')")[0]
    result["profiles"] = dict(zip(["profiles", "identities", "events", "still_pending"], counts, strict=True))
    if not args.quick:
        # Two worker processes on a fresh copy of the same load: how processing scales on 2 cores.
        sql(env, "TRUNCATE profiles_event, profiles_identity, profiles_profile, ingestion_inboxcount CASCADE")
        sql(env, "UPDATE ingestion_inboxmessage SET status = 'pending', reason = '', processed_at = NULL "
                 "WHERE status <> 'pending'")
        two = run_processing(env, 2)
        log(f"2 workers: {two['events_per_s']:,} events/s together")
        result["inbox_to_profiles"]["two_workers"] = two

    for name, bench in EXTRA_BENCHMARKS:
        log(f"{name} ...")
        result.update(bench(args, {"env": env, "write_key": write_key}))

    result["targets"] = {
        "track_vs_bare >= 0.80": result["track_vs_bare"] >= TARGETS["track_vs_bare"],
        "batch >= 20,000 events/s": result["batch_events_per_s"] >= TARGETS["batch_events_per_s"],
        "inbox to profiles >= 5,000 events/s per worker":
            result["inbox_to_profiles_events_per_s_per_worker"]
            >= TARGETS["inbox_to_profiles_events_per_s_per_worker"],
    }
    result["seconds"] = round(time.monotonic() - started, 1)
    result["load_average_at_end"] = os.getloadavg()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
