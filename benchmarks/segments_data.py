"""The data set of benchmarks/segments.py: a retailer's profiles and a year of their events, written by SQL.

Everything is set-based (INSERT ... SELECT over generate_series) and deterministic: every random draw is a hash of
a row number and the seed (``bench.u(n, k)``, PostgreSQL's ``hashint8extended``), so one seed gives the same data
on every machine. The secondary indexes and foreign keys of the three tables are dropped before the load and put
back afterwards with the definitions the migrations gave them (as pg_dump does), then everything is vacuumed and
analyzed. A row in ``bench.dataset`` records what was built (scale, seed, generator version, the anchor time that
"the last 365 days" count back from), so that a later run reuses a data set that matches and rebuilds one that
does not.

The people: country by the demo's weights (DE 52 %, AT 14 %, CH 10 %, NL, FR, GB 8 % each), a city of that country,
first and last names of its language, an email (also stored as an email identity), tier (bronze 60 %, silver 28 %,
gold 12 %), birth date 1950-2006 (missing for 7 %), newsletter (true for 42 %), created (the last three years).
Activity is skewed: 28 % of the people have no events; the others get a log-normal share (sigma 1.3, capped at 150
times the median), so a few people have more than a thousand events and many have a handful. Each person's last
activity is some days before the anchor (skewed to recent: 30 % within 30 days) and their events spread over a span
before it (10 days to the rest of the year, 100 days for the median person); 60 % of a person's events are on their
own preferred channel (web, app, shop, email). Event names follow a shop funnel: Page Viewed 48 %, Product Viewed
26 %, Product Added 12 %, Checkout Started 7 %, Order Completed 7 % (properties revenue 5-600, skewed low, currency EUR
or CHF for Swiss people, order_id). Events are written in timestamp order (ids rise with time, as ingestion writes
them), at whole minutes.
"""

from __future__ import annotations

import json
import sys
import time

from django.db import connection

from ingestion.demo.data import CITIES, COUNTRIES, FIRST_NAMES, LAST_NAMES, NAME_GROUP

GENERATOR_VERSION = 2
TABLES = ("profiles_profile", "profiles_identity", "profiles_event")


def log(message: str) -> None:
    print(f"segments benchmark: {message}", file=sys.stderr, flush=True)


def dataset_current() -> dict | None:
    """What the database holds, as recorded when it was built (None: nothing recorded)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench.dataset') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT info FROM bench.dataset WHERE id = 1")
        row = cursor.fetchone()
    if row is None:
        return None
    return row[0] if isinstance(row[0], dict) else json.loads(row[0])


def dataset_matches(info: dict | None, *, profiles: int, events: int, seed: int) -> bool:
    if not info or not info.get("complete"):
        return False
    return (info.get("profiles"), info.get("events"), info.get("seed"), info.get("version")) == (
        profiles, events, seed, GENERATOR_VERSION)


def dataset_record(info: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench.dataset (id, info) VALUES (1, %s) ON CONFLICT (id) DO UPDATE "
                       "SET info = excluded.info", [json.dumps(info)])


def _functions(cursor, seed: int) -> None:
    cursor.execute("CREATE SCHEMA IF NOT EXISTS bench")
    cursor.execute("CREATE TABLE IF NOT EXISTS bench.dataset (id int PRIMARY KEY, info jsonb NOT NULL)")
    # A uniform draw in [0, 1) from row number n and stream k: 53 bits of a seeded hash.
    cursor.execute(
        "CREATE OR REPLACE FUNCTION bench.u(n bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        f"AS $$ SELECT (hashint8extended(n, {int(seed)} * 1000 + k) & 9007199254740991)::float8 "
        "/ 9007199254740992.0 $$")


def _countries(cursor) -> None:
    cursor.execute("DROP TABLE IF EXISTS bench.country")
    cursor.execute("CREATE TABLE bench.country (code text, lo float8, hi float8, cities text[], firsts text[], "
                   "lasts text[], domains text[])")
    total = sum(weight for _code, weight, *_rest in COUNTRIES)
    lo = 0.0
    for code, weight, _locale, _language, domains in COUNTRIES:
        hi = lo + weight / total
        group = NAME_GROUP[code]
        cursor.execute("INSERT INTO bench.country VALUES (%s, %s, %s, %s, %s, %s, %s)",
                       [code, lo, 1.0 if code == COUNTRIES[-1][0] else hi, [city for city, _ in CITIES[code]],
                        [name for names in FIRST_NAMES[group] for name in names], list(LAST_NAMES[group]),
                        list(domains)])
        lo = hi


def _detach(cursor) -> list[str]:
    """Drop the secondary indexes and foreign keys of the loaded tables; returns the statements that restore them.

    The statements are kept in bench.detached until they have run, so that a build that fails half-way puts the
    same indexes back the next time."""
    cursor.execute("CREATE TABLE IF NOT EXISTS bench.detached (position int PRIMARY KEY, statement text NOT NULL)")
    cursor.execute("SELECT statement FROM bench.detached ORDER BY position")
    restore = [row[0] for row in cursor.fetchall()]
    for table in TABLES:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
            "AND contype = 'f'", [table])
        for name, definition in cursor.fetchall():
            restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            cursor.execute("INSERT INTO bench.detached VALUES (%s, %s)", [len(restore), restore[-1]])
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conindid = x.indexrelid AND c.contype IN ('p', 'u', 'x'))", [table])
        for name, definition in cursor.fetchall():
            restore.append(definition)
            cursor.execute("INSERT INTO bench.detached VALUES (%s, %s)", [len(restore), restore[-1]])
            cursor.execute(f'DROP INDEX "{name}"')
    # indexes before the foreign keys (whose check then reads them)
    return sorted(restore, key=lambda statement: statement.startswith("ALTER TABLE"))


def dataset_build(*, profiles: int, events: int, seed: int) -> dict:
    """Empty the profile tables and fill them; returns the recorded info (with the seconds each step took)."""
    steps: dict[str, float] = {}
    started = time.monotonic()

    def step(name: str, begun: float) -> float:
        steps[name] = round(time.monotonic() - begun, 1)
        log(f"{name}: {steps[name]:,.1f} s")
        return time.monotonic()

    with connection.cursor() as cursor:
        cursor.execute("SET work_mem = '256MB'")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        _functions(cursor, seed)
        cursor.execute("DELETE FROM bench.dataset")
        _countries(cursor)
        cursor.execute("TRUNCATE profiles_profile, profiles_identity, profiles_event RESTART IDENTITY CASCADE")
        restore = _detach(cursor)
        cursor.execute("SELECT date_trunc('minute', now())")
        anchor = cursor.fetchone()[0]
        t = time.monotonic()

        # Who is how active: a weight per person (0 for the inactive), then each person's share of the events by
        # cumulative rounding, so that the counts add up to exactly `events`.
        cursor.execute("DROP TABLE IF EXISTS bench.plan")
        cursor.execute(
            "CREATE UNLOGGED TABLE bench.plan AS "
            "WITH a AS (SELECT g AS pid, CASE WHEN bench.u(g, 10) < 0.72 THEN round(1000 * least(exp(1.3 * "
            "sqrt(-2 * ln(1 - bench.u(g, 11))) * cos(2 * pi() * bench.u(g, 12))), 150))::bigint ELSE 0 END AS w, "
            "floor(power(bench.u(g, 13), 2) * 330)::int AS last_days, "
            "10 + floor(power(bench.u(g, 16), 2) * 355)::int AS span_days, "
            "(ARRAY['web', 'web', 'web', 'app', 'app', 'shop', 'email'])[1 + floor(bench.u(g, 14) * 7)::int] "
            "AS channel, (SELECT code FROM bench.country WHERE bench.u(g, 2) >= lo AND bench.u(g, 2) < hi) "
            "AS country "
            "FROM generate_series(1, %(profiles)s) g), "
            "c AS (SELECT *, sum(w) OVER (ORDER BY pid) AS upto, sum(w) OVER () AS total FROM a) "
            "SELECT pid, last_days, least(span_days, 365 - last_days) AS span_days, channel, country, "
            "floor((upto - w) * %(events)s::numeric / total)::bigint AS first_n, "
            "(floor(upto * %(events)s::numeric / total) - floor((upto - w) * %(events)s::numeric / total))::int "
            "AS cnt FROM c", {"profiles": profiles, "events": events})
        cursor.execute("ALTER TABLE bench.plan ADD PRIMARY KEY (pid)")
        t = step("activity plan", t)

        # Events in timestamp order; n is the event's global number (its draws). Profiles do not exist yet (the
        # foreign key is dropped): their first and last seen times are read from the events.
        cursor.execute(
            "INSERT INTO profiles_event (profile_id, type, name, channel, properties, context, timestamp, "
            "received_at, source, message_id) "
            "SELECT pid, CASE WHEN kind = 0 THEN 'page' ELSE 'track' END, "
            "(ARRAY['Page Viewed', 'Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed'])"
            "[kind + 1], channel, "
            "CASE kind WHEN 0 THEN jsonb_build_object('path', '/c/' || floor(bench.u(n, 24) * 40)::int) "
            "WHEN 4 THEN jsonb_build_object('revenue', round((5 + power(bench.u(n, 25), 2.2) * 595)::numeric, 2), "
            "'currency', CASE WHEN country = 'CH' THEN 'CHF' ELSE 'EUR' END, 'order_id', 'O-' || n) "
            "WHEN 3 THEN jsonb_build_object('cart_value', round((5 + power(bench.u(n, 25), 2.2) * 595)::numeric, 2)) "
            "ELSE jsonb_build_object('sku', 'SKU-' || lpad(floor(power(bench.u(n, 24), 1.5) * 5000)::int::text, 5, "
            "'0')) END, '{}'::jsonb, ts, ts, 'bench', '' "
            "FROM (SELECT p.pid, n, p.country, "
            "CASE WHEN bench.u(n, 20) < 0.48 THEN 0 WHEN bench.u(n, 20) < 0.74 THEN 1 WHEN bench.u(n, 20) < 0.86 "
            "THEN 2 WHEN bench.u(n, 20) < 0.93 THEN 3 ELSE 4 END AS kind, "
            "CASE WHEN bench.u(n, 21) < 0.6 THEN p.channel ELSE (ARRAY['web', 'app', 'shop', 'email'])"
            "[1 + floor(bench.u(n, 22) * 4)::int] END AS channel, "
            "%(anchor)s::timestamptz - interval '1 minute' * (p.last_days * 1440 "
            "+ floor(bench.u(n, 23) * p.span_days * 1440)) AS ts "
            "FROM bench.plan p "
            "CROSS JOIN LATERAL generate_series(p.first_n + 1, p.first_n + p.cnt) n) e ORDER BY ts",
            {"anchor": anchor})
        t = step("events", t)

        cursor.execute(
            "INSERT INTO profiles_profile (id, created_at, updated_at, first_seen_at, last_seen_at, traits, "
            "trait_sources) "
            "SELECT g, created, created, least(created, s.first_at), s.last_at, jsonb_strip_nulls(jsonb_build_object("
            "'email', lower(translate(first || '.' || last || '.' || g, ' äöüßéèëçÖÄÜ', '-aouseeecoau')) || '@' "
            "|| c.domains[1 + floor(bench.u(g, 6) * cardinality(c.domains))::int], "
            "'first_name', first, 'last_name', last, 'country', c.code, "
            "'city', c.cities[1 + floor(power(bench.u(g, 5), 1.6) * cardinality(c.cities))::int], "
            "'tier', CASE WHEN bench.u(g, 7) < 0.60 THEN 'bronze' WHEN bench.u(g, 7) < 0.88 THEN 'silver' "
            "ELSE 'gold' END, "
            "'birth_date', CASE WHEN bench.u(g, 8) >= 0.07 THEN to_char(date '1950-01-01' "
            "+ floor(bench.u(g, 9) * 20440)::int, 'YYYY-MM-DD') END, "
            "'newsletter', bench.u(g, 15) < 0.42, "
            "'created', to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))), '{}'::jsonb "
            "FROM (SELECT g, %(anchor)s::timestamptz - interval '1 minute' * floor(bench.u(g, 1) * 1576800) "
            "AS created, bench.u(g, 2) AS uc FROM generate_series(1, %(profiles)s) g) p "
            "JOIN bench.country c ON p.uc >= c.lo AND p.uc < c.hi "
            "LEFT JOIN (SELECT profile_id, min(timestamp) AS first_at, max(timestamp) AS last_at FROM profiles_event "
            "GROUP BY profile_id) s ON s.profile_id = p.g "
            "CROSS JOIN LATERAL (SELECT c.firsts[1 + floor(bench.u(g, 3) * cardinality(c.firsts))::int] AS first, "
            "c.lasts[1 + floor(bench.u(g, 4) * cardinality(c.lasts))::int] AS last) n",
            {"profiles": profiles, "anchor": anchor})
        cursor.execute("SELECT setval(pg_get_serial_sequence('profiles_profile', 'id'), %s)", [profiles])
        t = step("profiles", t)

        cursor.execute(
            "INSERT INTO profiles_identity (profile_id, type, value, raw_value, source, first_seen_at, "
            "last_seen_at, flagged) SELECT id, 'email', traits->>'email', traits->>'email', 'bench', created_at, "
            "created_at, false FROM profiles_profile")
        t = step("identities", t)



        cursor.execute("SET max_parallel_maintenance_workers = 2")
        for statement in restore:
            cursor.execute(statement)
        cursor.execute("DELETE FROM bench.detached")
        t = step("indexes and foreign keys", t)
        cursor.execute("DROP TABLE bench.plan")

    info = {"profiles": profiles, "events": events, "seed": seed, "version": GENERATOR_VERSION,
            "anchor": anchor.isoformat(), "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": steps, "complete": True}
    info["build_seconds"]["total_before_vacuum"] = round(time.monotonic() - started, 1)
    dataset_record(info)
    return info


def vacuum_analyze() -> float:
    """VACUUM (ANALYZE) the loaded tables: visibility map and hint bits set, statistics fresh (as a steady-state
    database has them)."""
    started = time.monotonic()
    with connection.cursor() as cursor:
        for table in (*TABLES, "profiles_computedvalue"):
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
            if cursor.fetchone()[0]:
                cursor.execute(f"VACUUM (ANALYZE) {table}")
    return round(time.monotonic() - started, 1)
