"""The 1,000,000-row CSV import: time and peak memory of ``manage.py import_file`` on PostgreSQL.

    .venv/bin/python benchmarks/ingest_import.py [--rows N] [--database-url URL] [--broker-url URL]

benchmarks/ingest.py calls ``bench(args, context)`` (or ``bench_csv_import(rows, env=...)``) with its own server
environment; run alone, this script drops and creates the database given by --database-url and uses production
settings like ingest.py does.

What is measured: a generated CSV file (10 columns, a customer export; 1 row in 10,000 has a bad value, so the
error report is exercised) is imported by ``manage.py import_file`` with a mapping file, in its own process, the
way an operator runs it: the file is copied under MEDIA_ROOT/imports/, streamed, every row mapped and stored in
the inbox in batches of 1,000 (one INSERT each). Processing the stored messages into profiles is not part of it
(tasks go to the broker and no worker consumes them here; benchmarks/ingest.py measures processing separately).
The process's resident memory (VmRSS) is sampled every half second and its peak (VmHWM) read at the end: flat
memory means the peak does not grow with the file. Target: 1,000,000 rows in under 5 minutes.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TARGET_SECONDS = 300
COLUMNS = ["customer_id", "email", "first_name", "last_name", "phone", "city", "country", "signed_up", "orders",
           "lifetime_value"]
MAPPING = {"type": "identify", "event": None, "event_from": None, "fields": [
    {"from": "customer_id", "to": "externalId", "type": "string"},
    {"from": "email", "to": "traits.email", "type": "string"},
    {"from": "first_name", "to": "traits.first_name", "type": "string"},
    {"from": "last_name", "to": "traits.last_name", "type": "string"},
    {"from": "phone", "to": "traits.phone", "type": "string"},
    {"from": "city", "to": "traits.city", "type": "string"},
    {"from": "country", "to": "traits.country", "type": "string"},
    {"from": "signed_up", "to": "traits.signed_up", "type": "date"},
    {"from": "orders", "to": "traits.orders", "type": "integer"},
    {"from": "lifetime_value", "to": "traits.lifetime_value", "type": "float"},
]}
FIRST = ["Ada", "Grace", "Alan", "Linus", "Ken", "Barbara", "Edsger", "Margaret", "Tim", "Radia"]
LAST = ["Lovelace", "Hopper", "Turing", "Torvalds", "Thompson", "Liskov", "Dijkstra", "Hamilton", "Lee", "Perlman"]
CITIES = [("Berlin", "DE"), ("Paris", "FR"), ("Wien", "AT"), ("Zürich", "CH"), ("Madrid", "ES"), ("Oslo", "NO")]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def csv_generate(path: Path, rows: int) -> int:
    """A customer export of ``rows`` rows; 1 in 10,000 has an order count that is not a number."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(rows):
            city, country = CITIES[i % len(CITIES)]
            writer.writerow([f"C{i:08d}", f"customer.{i}@example.com", FIRST[i % 10], LAST[(i // 10) % 10],
                             f"+49151{i:08d}", city, country, f"20{10 + i % 15}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                             "n/a" if i % 10_000 == 9_999 else i % 40, f"{(i % 5000) / 7:.2f}"])
    return path.stat().st_size


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB (empty when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {key: int(value) for key, value in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.M)}


def manage(env: dict, *arguments: str) -> str:
    result = subprocess.run([PYTHON, str(ROOT / "manage.py"), *arguments], env=env, cwd=ROOT, check=True,
                            capture_output=True, text=True)
    return result.stdout


def bench_csv_import(rows: int = 1_000_000, *, env: dict | None = None) -> dict:
    """Generate a CSV file of ``rows`` rows and import it with manage.py import_file in ``env`` (a production
    environment with PostgreSQL and a broker). Returns the figures."""
    env = dict(env or os.environ)
    workdir = Path(tempfile.mkdtemp(prefix="cdp-csv-bench-"))
    path = workdir / "customers.csv"
    log(f"Generating a CSV file of {rows:,} rows ...")
    size = csv_generate(path, rows)
    (workdir / "mapping.json").write_text(json.dumps(MAPPING))
    slug = f"bench-csv-{secrets.token_hex(3)}"
    manage(env, "create_source", "--kind", "file", "--slug", slug, "CSV import benchmark")

    log(f"Importing {size / 1e6:,.0f} MB with manage.py import_file ...")
    command = [PYTHON, str(ROOT / "manage.py"), "import_file", "--source", slug, str(path),
               "--mapping", str(workdir / "mapping.json"), "--quiet"]
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    samples: list[tuple[float, int]] = []
    peak_kb = 0
    while process.poll() is None:
        status = _status(process.pid)
        if status:
            samples.append((time.monotonic() - started, status.get("VmRSS", 0)))
            peak_kb = max(peak_kb, status.get("VmHWM", 0))
        time.sleep(0.5)
    seconds = time.monotonic() - started
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"import_file failed ({process.returncode}): {stderr.strip()[-2000:]}")
    summary = stdout.strip().splitlines()[-1]
    counts = {name: value for value, name in re.findall(r"([\d,]+) (rows read|stored|already there|failed)", summary)}
    number = {name: int(counts.get(name, "0").replace(",", "")) for name in
              ("rows read", "stored", "already there", "failed")}
    # Memory over the run: the resident size at 10 %, 50 % and 90 % of the time, and the peak.
    by_fraction = {}
    for fraction in (0.1, 0.5, 0.9):
        at = [rss for t, rss in samples if t >= fraction * seconds]
        by_fraction[f"{int(fraction * 100)}%"] = round(at[0] / 1024, 1) if at else None
    for name in (path, workdir / "mapping.json"):
        name.unlink(missing_ok=True)
    workdir.rmdir()
    # The import kept its copy of the file (and its error report) under MEDIA_ROOT/imports/<slug>/: not needed.
    var_dir = Path(env.get("CDP_VAR_DIR") or ROOT / "var")
    shutil.rmtree(var_dir / "media" / "imports" / slug, ignore_errors=True)
    result = {
        "csv_import_rows": rows,
        "csv_import_file_mb": round(size / 1e6, 1),
        "csv_import_seconds": round(seconds, 1),
        "csv_import_rows_per_s": round(rows / seconds),
        "csv_import_rows_stored": number["stored"],
        "csv_import_rows_failed": number["failed"],
        "csv_import_peak_rss_mb": round(peak_kb / 1024, 1),
        "csv_import_rss_mb_over_time": by_fraction,
        "csv_import_summary": summary,
    }
    if rows == 1_000_000:
        result["csv_import_1m_rows_seconds"] = result["csv_import_seconds"]
        result["csv_import_1m_rows_under_5_minutes"] = seconds < TARGET_SECONDS
    log(f"{rows:,} rows in {seconds:,.1f} s ({rows / seconds:,.0f} rows/s), peak RSS {peak_kb / 1024:,.0f} MB")
    return result


def bench(args, context: dict) -> dict:
    """benchmarks/ingest.py's hook: 1,000,000 rows (100,000 with --quick) in its server environment."""
    return bench_csv_import(100_000 if getattr(args, "quick", False) else 1_000_000, env=context["env"])


def _environment(database_url: str, broker_url: str) -> dict:
    env = dict(os.environ)
    env.update({"CDP_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(64), "DATABASE_URL": database_url,
                "CDP_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                "CELERY_BROKER_URL": broker_url, "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING",
                "SECURE_SSL_REDIRECT": "false", "SECURE_HSTS_SECONDS": "0", "PYTHONPATH": str(ROOT),
                "CDP_VAR_DIR": env.get("CDP_VAR_DIR") or tempfile.mkdtemp(prefix="cdp-csv-bench-var-")})
    return env


def _database_recreate(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise SystemExit(f"--database-url must name a database of [a-z0-9_], not {name!r}")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/cdp_connectors_bench")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/6")
    args = parser.parse_args()
    rows = 100_000 if args.quick else args.rows
    _database_recreate(args.database_url)
    env = _environment(args.database_url, args.broker_url)
    manage(env, "migrate", "--noinput", "-v0")
    result = {"machine": {"nproc": os.cpu_count(), "python": sys.version.split()[0]}}
    result.update(bench_csv_import(rows, env=env))
    # The import queued processing tasks for the inbox; nothing consumes them here. Clear this run's queue.
    try:
        import redis

        redis.Redis.from_url(args.broker_url).delete("ingestion")
    except Exception as error:  # noqa: BLE001 - a leftover queue is harmless; say so
        log(f"Could not clear the ingestion queue on {args.broker_url}: {error}")
    if env["CDP_VAR_DIR"].startswith(str(Path(tempfile.gettempdir()) / "cdp-csv-bench-var-")):
        shutil.rmtree(env["CDP_VAR_DIR"], ignore_errors=True)  # the var dir this run made
    print(json.dumps(result))


if __name__ == "__main__":
    main()
