"""Throughput of the tracking-plan check and the transformations: the part of inbox processing they add.

    .venv/bin/python benchmarks/plans_transforms.py [--messages 10000] [--batch 500]

Builds a source with a plan (three event schemas and identify traits, flag mode, so that violations are
recorded) and a full list of transformation steps, then runs plans_check + transforms_apply over the messages in
batches, as the pipeline does. Every message has its own email, phone and name, so the normalizers' caches never
hit (the worst case). Everything is rolled back at the end. The last line is one JSON object with the figures.
"""

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from ingestion.services import source_create  # noqa: E402
from ingestion.services.plans import plans_check, tracking_plan_save  # noqa: E402
from ingestion.services.transforms import transformation_save, transforms_apply  # noqa: E402

ORDER = {"type": "object", "required": ["order_id", "total", "currency"],
         "properties": {"order_id": {"type": "string"}, "total": {"type": "number", "minimum": 0},
                        "currency": {"enum": ["EUR", "USD", "GBP"]},
                        "products": {"type": "array", "items": {"type": "object", "required": ["sku"],
                                                                "properties": {"sku": {"type": "string"},
                                                                               "price": {"type": "number"}}}}}}
VIEWED = {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"},
                                                                 "category": {"type": "string"}}}
SIGNED_UP = {"type": "object", "properties": {"plan": {"enum": ["free", "pro"]}}}
TRAITS = {"type": "object", "required": ["email"],
          "properties": {"email": {"type": "string"}, "first_name": {"type": "string"},
                         "last_name": {"type": "string"}, "phone": {"type": "string"},
                         "income": {"type": "number"}}}
STEPS = [
    {"op": "trim", "fields": ["traits.*"], "collapse": True},
    {"op": "email", "fields": ["traits.email"]},
    {"op": "phone", "fields": ["traits.phone"]},
    {"op": "name", "fields": ["traits.first_name", "traits.last_name"]},
    {"op": "country", "fields": ["traits.country"]},
    {"op": "age_band", "field": "traits.birthday", "to": "traits.age_band"},
    {"op": "postcode_region", "field": "traits.postcode", "to": "traits.region"},
    {"op": "band", "field": "traits.income", "to": "traits.income_band", "bounds": [20000, 40000, 60000, 100000]},
    {"op": "derive", "to": "traits.full_name", "fn": "concat", "args": ["traits.first_name", "traits.last_name"]},
    {"op": "derive", "to": "traits.email_domain", "fn": "email_domain", "args": ["traits.email"]},
    {"op": "map", "fields": [{"from": "properties.total", "to": "properties.total", "type": "float"}],
     "types": ["track"]},
]
FIRST = ["anna", "JAN", "lena-marie", "tom", "ömer", "sophie", "mcdonald"]
LAST = ["VAN DER BERG", "müller", "o'brien", "schmidt", "de la cruz", "weber"]
COUNTRIES = ["Germany", "DEU", "Deutschland", "Austria", "FR", "Schweiz", "Narnia"]


def make_messages(count: int, rng: random.Random, users: int | None = None) -> list[dict]:
    """``users`` people send the messages (each has their own email and phone); all different when None."""
    messages = []
    for n in range(count):
        roll = rng.random()
        i = n % users if users else n
        user = f"user-{i}"
        if roll < 0.3:
            messages.append({"type": "identify", "userId": user, "messageId": f"m{n}", "traits": {
                "email": f"  User.{i}@Example{i % 97}.COM " if i % 50 else f"broken-{i}@",
                "phone": f"0170 {1000000 + i}" if i % 40 else "12",
                "first_name": rng.choice(FIRST), "last_name": rng.choice(LAST), "country": rng.choice(COUNTRIES),
                "birthday": f"{rng.randint(1940, 2010)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "postcode": f"{rng.randint(1000, 99999):05d}", "income": rng.randint(8000, 150000)}})
        elif roll < 0.6:
            total = round(rng.uniform(5, 500), 2) if i % 20 else "free"
            messages.append({"type": "track", "event": "Order Completed", "userId": user, "messageId": f"m{n}",
                             "properties": {"order_id": f"o{i}", "total": total, "currency": "EUR",
                                            "products": [{"sku": f"sku-{i % 300}", "price": 9.99}] * 2},
                             "context": {"traits": {"email": f"user.{i}@example.com"}}})
        elif roll < 0.95:
            messages.append({"type": "track", "event": "Product Viewed", "anonymousId": f"anon-{i}",
                             "messageId": f"m{n}", "properties": {"sku": f"sku-{i % 300}", "category": "shoes"}})
        else:
            messages.append({"type": "track", "event": "Unplanned Thing", "anonymousId": f"anon-{i}",
                             "messageId": f"m{n}", "properties": {}})
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--users", type=int, default=None,
                        help="people sending the messages (default: a new person, email and phone per message)")
    args = parser.parse_args()
    rng = random.Random(7)
    messages = make_messages(args.messages, rng, args.users)
    batches = [messages[i:i + args.batch] for i in range(0, len(messages), args.batch)]
    figures = {}
    with transaction.atomic():
        source, _ = source_create(name="Benchmark plans", kind="http", slug="benchmark-plans-transforms",
                                  settings={"default_region": "DE"})
        tracking_plan_save(source=source, mode="flag", unplanned="flag", identify_schema=TRAITS,
                           events={"Order Completed": ORDER, "Product Viewed": VIEWED, "Signed Up": SIGNED_UP})
        transformation_save(source=source, steps=STEPS)
        # Warm up once per process: the plan's validators are compiled, the country-name index is built.
        plans_check(source=source, messages=make_messages(10, random.Random(1)))
        transforms_apply(source=source, messages=make_messages(10, random.Random(1)))
        timings = {"plans_check": 0.0, "transforms_apply": 0.0}
        cpu = {"plans_check": 0.0, "transforms_apply": 0.0}
        flagged = 0
        for batch in batches:
            start, start_cpu = time.perf_counter(), time.process_time()
            verdicts = plans_check(source=source, messages=batch)
            middle, middle_cpu = time.perf_counter(), time.process_time()
            transforms_apply(source=source, messages=batch)
            end, end_cpu = time.perf_counter(), time.process_time()
            timings["plans_check"] += middle - start
            timings["transforms_apply"] += end - middle
            cpu["plans_check"] += middle_cpu - start_cpu
            cpu["transforms_apply"] += end_cpu - middle_cpu
            flagged += sum(v.action != "allow" for v in verdicts)
        transaction.set_rollback(True)
    total = timings["plans_check"] + timings["transforms_apply"]
    figures = {
        "benchmark": "plans_check + transforms_apply",
        "messages": len(messages), "batch": args.batch, "users": args.users or len(messages), "flagged": flagged,
        "database": connection.vendor, "python": platform.python_version(), "machine": platform.machine(),
        "plans_check_s": round(timings["plans_check"], 3),
        "transforms_apply_s": round(timings["transforms_apply"], 3),
        "plans_check_per_s": round(len(messages) / timings["plans_check"]),
        "transforms_apply_per_s": round(len(messages) / timings["transforms_apply"]),
        "combined_per_s": round(len(messages) / total),
        # per second of this process's CPU (steadier than wall time on a busy machine; excludes DB server time)
        "plans_check_per_cpu_s": round(len(messages) / cpu["plans_check"]),
        "transforms_apply_per_cpu_s": round(len(messages) / cpu["transforms_apply"]),
        "combined_per_cpu_s": round(len(messages) / (cpu["plans_check"] + cpu["transforms_apply"])),
        "load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
    }
    print(f"plans_check      {figures['plans_check_per_s']:>8} messages/s")
    print(f"transforms_apply {figures['transforms_apply_per_s']:>8} messages/s")
    print(f"together         {figures['combined_per_s']:>8} messages/s ({flagged} flagged), "
          f"{figures['combined_per_cpu_s']} per CPU second")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
