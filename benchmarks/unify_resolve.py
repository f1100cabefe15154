"""Database time to resolve an event with a known identity (the identity benchmark of benchmarks/unify.py).

On a PostgreSQL database of its own (dropped and created again): ``profiles`` people are loaded through
``observations_apply`` (an anonymous id, an email and a few traits each, in batches of 1,000). Then ``events``
single-event calls of ``observations_apply`` follow, each for a random known person, as the tracking API's
single-message path does: half are track events with the known anonymous id, half identify calls with the known
email and a changed trait (lineage and survivorship). The database time of each call is the time spent inside the
statements, timed around each on the client (``connection.execute_wrapper`` for the ORM and around the psycopg
statements of the bulk path), round trips included; the COMMIT is timed apart (commit_ms). The receivers of
``profile_changed`` (they only enqueue work for later) are muted while timing. Printed: median, p95 and mean per
event, statements per event. Run alone: ``python benchmarks/unify_resolve.py --database-url postgres://.../cdp_identity_bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def resolve_known_identity(database_url: str, *, profiles: int = 100_000, events: int = 2_000,
                           seed: int = 7) -> dict:
    import psycopg

    base, _, name = database_url.rpartition("/")
    if not name.startswith("cdp_") or "bench" not in name:
        raise SystemExit(f"the database must be one of its own whose name starts with cdp_ and contains 'bench' "
                         f"(it is dropped and created again), not {name!r}")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from profiles.services import Observation, observations
    from profiles.services import observations_apply as apply
    from profiles.signals import profile_changed

    call_command("migrate", verbosity=0)
    rng = random.Random(seed)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    for start in range(0, profiles, 1000):
        apply(observations=[Observation(
            identities=[("anonymous_id", f"anon-{i}"), ("email", f"person{i}@example.org")],
            timestamp=t0 + timedelta(seconds=i), source="web", channel="web",
            traits={"email": f"person{i}@example.org", "first_name": f"F{i % 997}", "plan": "free"},
            event_type="identify") for i in range(start, min(start + 1000, profiles))])
    load_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    spent = {"seconds": 0.0, "statements": 0, "commit": 0.0}

    def timed(execute, sql, params, many, context):
        begin = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent["seconds"] += time.perf_counter() - begin
            spent["statements"] += 1

    original = observations._pg_execute

    def pg_execute_timed(sql, params):
        begin = time.perf_counter()
        try:
            return original(sql, params)
        finally:
            spent["seconds"] += time.perf_counter() - begin
            spent["statements"] += 1

    original_commit = connection._commit

    def commit_timed():
        begin = time.perf_counter()
        try:
            return original_commit()
        finally:
            spent["commit"] += time.perf_counter() - begin

    observations._pg_execute = pg_execute_timed
    connection._commit = commit_timed
    # Receivers of profile_changed (matching, segments) only enqueue work for later: not part of resolving.
    muted, profile_changed.receivers = profile_changed.receivers, []
    profile_changed.sender_receivers_cache.clear()
    per_event: dict[str, list[float]] = {"track": [], "identify": []}
    statements: dict[str, list[int]] = {"track": [], "identify": []}
    walls, commits = [], []
    try:
        with connection.execute_wrapper(timed):
            for n in range(events):
                i = rng.randrange(profiles)
                at = t0 + timedelta(days=30, seconds=n)
                if n % 2:
                    kind, obs = "identify", Observation(
                        identities=[("email", f"person{i}@example.org")], timestamp=at, source="crm",
                        channel="crm", traits={"plan": rng.choice(["free", "pro", "team"])}, event_type="identify")
                else:
                    kind, obs = "track", Observation(
                        identities=[("anonymous_id", f"anon-{i}")], timestamp=at, source="web", channel="web",
                        event_type="track", event_name="Product Viewed", properties={"sku": f"S{n}"})
                spent["seconds"], spent["statements"], spent["commit"] = 0.0, 0, 0.0
                begin = time.perf_counter()
                apply(observations=[obs])
                walls.append(time.perf_counter() - begin)
                per_event[kind].append(spent["seconds"] * 1000)
                commits.append(spent["commit"] * 1000)
                statements[kind].append(spent["statements"])
    finally:
        observations._pg_execute = original
        connection._commit = original_commit
        profile_changed.receivers = muted
        profile_changed.sender_receivers_cache.clear()

    def figures(values):
        values = sorted(values)
        return {"median": round(statistics.median(values), 3), "p95": round(values[int(len(values) * 0.95)], 3),
                "mean": round(statistics.fmean(values), 3)}

    every = per_event["track"] + per_event["identify"]
    return {
        "profiles": profiles, "events": events, "load_seconds": round(load_seconds, 1),
        "db_ms": figures(every),
        "db_ms_track_known_anonymous_id": figures(per_event["track"]),
        "db_ms_identify_known_email_with_trait": figures(per_event["identify"]),
        "commit_ms": figures(commits),
        "statements_per_event": {k: round(statistics.fmean(v), 1) for k, v in statements.items()},
        "wall_ms_median": round(statistics.median(walls) * 1000, 3),
        "note": "db_ms: client-side time inside every statement of one observations_apply call (one event, its "
                "own transaction), round trips included; the COMMIT (WAL flush; one per batch in the pipeline) is "
                "commit_ms, apart; profile_changed receivers muted; the machine's load is load_average_1min.",
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000)
    args = parser.parse_args()
    print(json.dumps(resolve_known_identity(args.database_url, profiles=args.profiles, events=args.events)))


if __name__ == "__main__":
    main()
