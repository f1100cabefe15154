"""Profile search speed on PostgreSQL (pg_trgm): what the profile list and the API list do for a query.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp_bench_search .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp_bench_search .venv/bin/python benchmarks/search.py
    ... benchmarks/search.py --quick        # 100,000 profiles

Fills the database (once) up to N profiles with German-style names (the demo data's name lists), an email, a
mobile number and a user id each (three identities per profile), written by SQL (generate_series) with the
trigram indexes dropped and rebuilt afterwards, then times searches through ProfileFilter exactly as the profile
list runs them (the first page of 50 and the count): exact emails, phone numbers in national format, user ids,
last names, misspelled last names, first + last names. Prints the median, p95 and maximum per kind, and, as its
last line, one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from ingestion.demo.data import FIRST_NAMES, LAST_NAMES  # noqa: E402
from profiles.filters import ProfileFilter  # noqa: E402
from profiles.models import Profile  # noqa: E402
from profiles.search import fold  # noqa: E402

TRGM_INDEXES = {
    "profile_search_text_trgm": "CREATE INDEX profile_search_text_trgm ON profiles_profile "
                                "USING gin (search_text gin_trgm_ops)",
    "identity_value_trgm": "CREATE INDEX identity_value_trgm ON profiles_identity USING gin (value gin_trgm_ops)",
}


def _names():
    firsts = [name for group in FIRST_NAMES["de"] for name in group]
    lasts = list(LAST_NAMES["de"])
    return firsts, lasts


def fill(target: int, chunk: int = 200_000) -> float:
    """Add profiles up to ``target``; returns the seconds it took (0 when nothing was needed)."""
    have = Profile.objects.count()
    if have >= target:
        return 0.0
    firsts, lasts = _names()
    started = time.monotonic()
    with connection.cursor() as cursor:
        for name in TRGM_INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
        cursor.execute("SELECT coalesce(max(id), 0) FROM profiles_profile")
        base = cursor.fetchone()[0]
        for start in range(have, target, chunk):
            stop = min(start + chunk, target)
            cursor.execute(
                "INSERT INTO profiles_profile (created_at, updated_at, first_seen_at, last_seen_at, traits, "
                "trait_sources) "
                "SELECT now(), now(), now() - (g %% 700) * interval '1 day', now() - (g %% 60) * interval '1 day', "
                "jsonb_build_object('first_name', f[1 + ((g::bigint * 7919) %% cardinality(f))::int], "
                "'last_name', l[1 + ((g::bigint * 104729) %% cardinality(l))::int], "
                "'email', fa[1 + ((g::bigint * 7919) %% cardinality(f))::int] || '.' "
                "|| la[1 + ((g::bigint * 104729) %% cardinality(l))::int] "
                "|| g || '@example.org', 'phone', '+49151' || lpad(g::text, 8, '0'), 'bench_n', g), '{}'::jsonb "
                "FROM generate_series(%s, %s) AS g, (SELECT %s::text[] AS f, %s::text[] AS l, %s::text[] AS fa, "
                "%s::text[] AS la) AS names",
                [start, stop - 1, firsts, lasts, [fold(n).replace(" ", "") for n in firsts],
                 [fold(n).replace(" ", "") for n in lasts]])
            cursor.execute(
                "INSERT INTO profiles_identity (profile_id, type, value, source, first_seen_at, last_seen_at, "
                "flagged, raw_value) "
                "SELECT p.id, t.type, CASE t.type WHEN 'email' THEN p.traits->>'email' "
                "WHEN 'phone' THEN p.traits->>'phone' ELSE 'U-' || (p.traits->>'bench_n') END, 'bench', now(), "
                "now(), false, '' FROM profiles_profile p, (VALUES ('email'), ('phone'), ('user_id')) AS t(type) "
                "WHERE p.id > %s AND (p.traits->>'bench_n')::int BETWEEN %s AND %s",
                [base, start, stop - 1])
            print(f"search benchmark: {stop:,}/{target:,} profiles, {time.monotonic() - started:,.0f} s",
                  file=sys.stderr, flush=True)
        for sql in TRGM_INDEXES.values():
            cursor.execute(sql)
        cursor.execute("ANALYZE profiles_profile")
        cursor.execute("ANALYZE profiles_identity")
    return time.monotonic() - started


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1:]


def queries(rng: random.Random, count: int) -> dict[str, list[str]]:
    ids = list(Profile.objects.order_by("?").values_list("traits", flat=True)[:count])
    return {
        "email": [t["email"].upper() for t in ids],
        "phone_national": ["0" + t["phone"][3:6] + " " + t["phone"][6:] for t in ids],
        "user_id": [f"u-{t['bench_n']}" for t in ids],
        "last_name": [t["last_name"] for t in ids],
        "last_name_typo": [_typo(t["last_name"], rng) for t in ids],
        "full_name": [f"{t['first_name']} {t['last_name']}" for t in ids],
    }


def run(query: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    rows = ProfileFilter({"q": query}, queryset=Profile.objects.filter(merged_into__isnull=True)).qs
    first_page = list(rows[:50])
    total = rows.count()
    return (time.perf_counter() - started) * 1000, len(first_page), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 profiles instead of 1,000,000")
    parser.add_argument("--profiles", type=int, default=0)
    parser.add_argument("--queries", type=int, default=30, help="queries per kind")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("benchmarks/search.py measures the PostgreSQL path: set DATABASE_URL to a PostgreSQL database.")
    target = args.profiles or (100_000 if args.quick else 1_000_000)
    fill_seconds = fill(target)
    rng = random.Random(7)
    figures: dict[str, dict] = {}
    for kind, items in queries(rng, args.queries).items():
        run(items[0])  # warm the cache for this kind
        times, found = [], 0
        for query in items:
            ms, page, _total = run(query)
            times.append(ms)
            found += page > 0
        times.sort()
        figures[kind] = {"median_ms": round(statistics.median(times), 1),
                         "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1), "max_ms": round(times[-1], 1),
                         "found": f"{found}/{len(items)}"}
        print(f"{kind:16} median {figures[kind]['median_ms']:7.1f} ms  p95 {figures[kind]['p95_ms']:7.1f} ms  "
              f"max {figures[kind]['max_ms']:7.1f} ms  found {figures[kind]['found']}")
    result = {"profiles": Profile.objects.count(), "fill_seconds": round(fill_seconds, 1),
              "cpus": os.cpu_count(), "machine": platform.machine(), "postgresql": connection.pg_version,
              "searches": figures}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
