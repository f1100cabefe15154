"""Personalization API latency at a constant rate, measured on this machine: gunicorn + PostgreSQL.

    .venv/bin/python benchmarks/personalize.py [--quick] [--database-url URL] [--rate 200] [--duration 60]

1. The database given by --database-url is DROPPED and created again, migrated, and loaded with 100,000 profiles
   (an anonymous id and an email each, a user id for half of them; traits), consent decisions (personalization
   granted by about 70 %, email marketing by 50 %), four segments refreshed from their rules (gold, silver,
   Germany, intends to cancel) and eight offers (two purposes, priorities, one expired, one switched off).
2. gunicorn serves the product in production mode (DEBUG off) with the real settings and PostgreSQL.
3. A load generator in its own process sends GET /api/v1/personalize at a constant rate (open loop: each request
   is due at its own time, whatever the answers before it; its latency counts from when it was due, so a stalled
   server is not hidden by a waiting client), with an integration user's token: 80 % by a known anonymous id,
   10 % by email, 10 % by an anonymous id nobody has. At most ``--connections`` (64) requests are in flight, as a
   load balancer's pool would allow; a request that has not started or answered within 10 s of its time is given
   up and counted as an error. Target: p99 <= 50 ms at 200 requests/s on 2 cores.

The last line printed is one JSON object with the figures (p50/p95/p99/max in ms, achieved rate, errors).
``--quick`` loads 10,000 profiles and sends for 20 s, in under 2 minutes; the full scale is the default.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import Server, database_recreate, machine, manage, server_environment, sql  # noqa: E402

SCALES = {"quick": {"profiles": 10_000, "duration": 20, "warmup": 3},
          "full": {"profiles": 100_000, "duration": 60, "warmup": 5}}
TARGET = {"rate": 200, "p99_ms": 50}
GIVE_UP_SECONDS = 10
COUNTRIES = ["DE", "AT", "CH", "FR", "NL"]
MEMBERSHIPS = ["gold", "silver", "bronze", "bronze"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the data (runs in a child process with Django set up) -----------------------------------------------------------


def load_data(profiles: int) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from activation.services.offers import offer_create
    from cdp.core.roles import MARKETING
    from cdp.core.services import roles_sync
    from consent.models import ConsentRecord, Purpose
    from consent.services import purposes_install
    from profiles.models import Identity, Profile
    from segments.services import segment_create, segment_refresh

    rng = random.Random(7)
    now = timezone.now()
    purposes_install()
    purposes = {p.key: p for p in Purpose.objects.all()}
    chunk = 5_000
    for start in range(0, profiles, chunk):
        rows = []
        for i in range(start, min(start + chunk, profiles)):
            rows.append(Profile(first_seen_at=now, last_seen_at=now, traits={
                "first_name": f"Name{i}", "email": f"person{i}@example.org", "membership": MEMBERSHIPS[i % 4],
                "country": COUNTRIES[i % 5], "city": f"City{i % 300}", "customer_no": f"C-{i}",
                **({"intends_to_cancel": True} if i % 33 == 0 else {})}))
        made = Profile.objects.bulk_create(rows)
        identities, decisions = [], []
        for offset, profile in enumerate(made):
            i = start + offset
            identities += [Identity(profile=profile, type="anonymous_id", value=f"anon-{i}", source="web"),
                           Identity(profile=profile, type="email", value=f"person{i}@example.org", source="crm")]
            if i % 2:
                identities.append(Identity(profile=profile, type="user_id", value=f"user-{i}", source="shop"))
            roll = rng.random()
            status = "granted" if roll < 0.7 else ("denied" if roll < 0.9 else None)
            if status:
                decisions.append(ConsentRecord(profile=profile, purpose=purposes["personalization"], status=status,
                                               source="banner", recorded_at=now))
            if rng.random() < 0.5:
                decisions.append(ConsentRecord(profile=profile, purpose=purposes["email_marketing"],
                                               status="granted", source="banner", recorded_at=now))
        Identity.objects.bulk_create(identities)
        ConsentRecord.objects.bulk_create(decisions)
        log(f"  {start + len(made):,} profiles")
    segments = {}
    for name, rules in (
            ("Gold", {"type": "trait", "trait": "membership", "op": "equals", "value": "gold"}),
            ("Silver", {"type": "trait", "trait": "membership", "op": "equals", "value": "silver"}),
            ("Germany", {"type": "trait", "trait": "country", "op": "equals", "value": "DE"}),
            ("Intends to cancel", {"type": "trait", "trait": "intends_to_cancel", "op": "is_true"})):
        segments[name] = segment_create(name=name, rules=rules)
        segment_refresh(segment=segments[name])
    for name, segment, purpose, priority, extra in (
            ("Retention", "Intends to cancel", "personalization", 1, {}),
            ("Retention by mail", "Intends to cancel", "email_marketing", 2, {}),
            ("Gold lounge", "Gold", "personalization", 10, {}),
            ("Gold newsletter", "Gold", "email_marketing", 11, {}),
            ("Silver upgrade", "Silver", "personalization", 20, {}),
            ("German summer sale", "Germany", "email_marketing", 30, {}),
            ("Ended sale", "Germany", "personalization", 5, {"valid_until": now - dt.timedelta(days=1)}),
            ("Switched off", "Silver", "personalization", 3, {"enabled": False})):
        offer_create(name=name, segment=segments[segment], purpose=purposes[purpose], priority=priority,
                     content={"headline": name, "cta_url": "/offers"}, **extra)
    roles_sync()
    user = get_user_model().objects.create_user(username="bench-website")
    user.groups.add(Group.objects.get(name=MARKETING))
    print(Token.objects.create(user=user).key)


# --- the load (a process of its own) -------------------------------------------------------------------------------


def _paths(profiles: int, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    paths = []
    for _ in range(count):
        roll, i = rng.random(), rng.randrange(profiles)
        if roll < 0.8:
            paths.append(f"/api/v1/personalize?anonymous_id=anon-{i}")
        elif roll < 0.9:
            paths.append(f"/api/v1/personalize?email=person{i}%40example.org")
        else:
            paths.append(f"/api/v1/personalize?anonymous_id=nobody-{i}")
    return paths


async def _constant_rate(url: str, token: str, paths: list[str], rate: float, connections: int) -> dict:
    parts = urlsplit(url)
    idle: list = []
    # At most this many requests in flight (as a load balancer's pool would); a request due while all are busy
    # waits for one, and its wait counts in its latency.
    slots = asyncio.Semaphore(connections)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failures: list[str] = []

    async def exchange(reader, writer, path: str) -> tuple[int, bool]:
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}\r\nAuthorization: Token {token}\r\n"
                      f"Accept: application/json\r\n\r\n").encode())
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GIVE_UP_SECONDS)).decode("latin-1").split("\r\n")
        fields = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in head[1:])}
        await asyncio.wait_for(reader.readexactly(int(fields.get("content-length", "0"))), GIVE_UP_SECONDS)
        return int(head[0].split()[1]), fields.get("connection", "").lower() != "close"

    async def one(path: str, due: float) -> None:
        try:  # a caller gives up on an answer that has not started within GIVE_UP_SECONDS of its time
            await asyncio.wait_for(slots.acquire(), max(0.0, due + GIVE_UP_SECONDS - time.monotonic()))
        except TimeoutError:
            failures.append(f"not started within {GIVE_UP_SECONDS} s")
            return
        try:
            await attempt_twice(path, due)
        finally:
            slots.release()

    async def attempt_twice(path: str, due: float) -> None:
        for attempt in (1, 2):
            fresh = not idle
            try:
                reader, writer = idle.pop() if idle else await asyncio.open_connection(parts.hostname, parts.port)
                status, keep = await exchange(reader, writer, path)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
                if fresh or attempt == 2:  # a kept-alive connection the server closed meanwhile: one retry
                    failures.append(repr(error))
                    return
                continue
            latencies.append(time.monotonic() - due)
            statuses[status] = statuses.get(status, 0) + 1
            if keep:
                idle.append((reader, writer))
            else:
                writer.close()
            return

    tasks = []
    start = time.monotonic() + 0.1
    for n, path in enumerate(paths):
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(path, due)))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    for _, writer in idle:
        writer.close()
    return {"latencies": latencies, "statuses": statuses, "errors": len(failures), "first_errors": failures[:3],
            "elapsed": elapsed}


def _load_process(url, token, paths, rate, connections, queue) -> None:
    queue.put(asyncio.run(_constant_rate(url, token, paths, rate, connections)))


def constant_rate(url: str, token: str, *, profiles: int, rate: float, duration: float, seed: int,
                  connections: int) -> dict:
    """Send ``rate`` requests per second for ``duration`` seconds from a separate process."""
    queue = multiprocessing.Queue()
    paths = _paths(profiles, int(rate * duration), seed)
    process = multiprocessing.Process(target=_load_process, args=(url, token, paths, rate, connections, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def workers_cpu_seconds(master_pid: int) -> float:
    """User + system CPU seconds of gunicorn's worker processes (the children of the master), from /proc."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:  # the parent's pid
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else float("nan")


# --- the run ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 profiles, 20 s of load: under 2 minutes")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/cdp_personalize_bench",
                        help="a PostgreSQL database that is DROPPED and created again")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--rate", type=float, default=TARGET["rate"], help="requests per second (200)")
    parser.add_argument("--duration", type=float, default=None, help="seconds of load (60; --quick 20)")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: nproc)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--connections", type=int, default=64, help="most requests in flight at once (64)")
    parser.add_argument("--load-data", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_data:
        return load_data(args.load_data)

    scale = SCALES["quick" if args.quick else "full"]
    duration = args.duration or scale["duration"]
    workers = args.workers or os.cpu_count() or 1
    env = server_environment(args)
    env["DJANGO_SETTINGS_MODULE"] = "cdp.settings"
    started = time.monotonic()
    log(f"Database {urlsplit(args.database_url).path.lstrip('/')}: recreating, migrating, loading "
        f"{scale['profiles']:,} profiles ...")
    database_recreate(args.database_url)
    manage(env, "migrate", "--noinput")
    loaded = subprocess.run([sys.executable, __file__, "--load-data", str(scale["profiles"])], env=env, cwd=ROOT,
                            capture_output=True, text=True)
    if loaded.returncode:
        raise SystemExit(f"loading the data failed:\n{loaded.stderr[-3000:]}")
    token = loaded.stdout.strip().splitlines()[-1]
    sql(env, "VACUUM ANALYZE")
    sql(env, "CHECKPOINT")  # write the load's dirty pages now, not during the measured minute
    counts = sql(env, "SELECT (SELECT count(*) FROM profiles_profile), (SELECT count(*) FROM profiles_identity), "
                      "(SELECT count(*) FROM consent_consentrecord), (SELECT count(*) FROM segments_membership "
                      "WHERE exited_at IS NULL), (SELECT count(*) FROM activation_offer)")[0]
    data = dict(zip(["profiles", "identities", "consent_records", "open_memberships", "offers"], counts, strict=True))
    log(f"Loaded in {time.monotonic() - started:.0f} s: {data}")
    result: dict = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "scale": "quick" if args.quick else "full", "machine": machine(),
                    "load_average_before": os.getloadavg(), "data": data,
                    "server": {"gunicorn_workers": workers, "threads": args.threads, "connections": args.connections,
                               "postgres": sql(env, "SHOW server_version")[0][0]},
                    "load": {"rate": args.rate, "duration_s": duration, "open_loop": True,
                             "mix": "80% known anonymous_id, 10% email, 10% unknown anonymous_id"}}
    with Server(env, workers=workers, threads=args.threads) as server:
        log(f"gunicorn at {server.url}: {workers} workers x {args.threads} threads; warming up ...")
        constant_rate(server.url, token, profiles=data["profiles"], rate=args.rate, duration=scale["warmup"], seed=1,
                      connections=args.connections)
        log(f"{args.rate:.0f} requests/s for {duration:.0f} s ...")
        cpu_before = workers_cpu_seconds(server.process.pid)
        run = constant_rate(server.url, token, profiles=data["profiles"], rate=args.rate, duration=duration, seed=2,
                           connections=args.connections)
        web_cpu = workers_cpu_seconds(server.process.pid) - cpu_before
        result["load_average_after"] = os.getloadavg()
    latencies = [value * 1000 for value in run["latencies"]]
    non_2xx = sum(n for status, n in run["statuses"].items() if status >= 300)
    result.update({
        "requests": len(latencies) + run["errors"],
        "achieved_rate": round(len(latencies) / run["elapsed"], 1),
        "statuses": {str(k): v for k, v in sorted(run["statuses"].items())},
        "errors": run["errors"] + non_2xx,
        "first_errors": run["first_errors"],
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
        # What one answer costs the web workers, whatever else the machine runs: the capacity of 2 cores is
        # about 2000 / this many answers per second (PostgreSQL's share comes on top).
        "web_cpu_ms_per_request": round(web_cpu * 1000 / len(latencies), 2) if latencies else None,
    })
    result["target_met"] = (result["p99_ms"] <= TARGET["p99_ms"] and result["errors"] == 0
                            and args.rate >= TARGET["rate"])
    result["seconds"] = round(time.monotonic() - started, 1)
    log(f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms, errors {result['errors']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
