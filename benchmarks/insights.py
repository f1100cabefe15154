"""Insight models on the demo data: quality on the held-out time split beside naive baselines, and the time to
train and score, measured on this machine with PostgreSQL.

    .venv/bin/python benchmarks/insights.py [--quick] [--database-url URL] [--keep]

1. The database given by --database-url is DROPPED and created again, migrated and loaded with the demo data
   (``seed_demo --bulk``: 100,000 people, about 18 months of web sessions, orders, CRM rows, call-center notes and
   e-mail engagement, driven by personas some of whom churn). ``--keep`` reuses a database loaded before.
2. Each insight model runs as the nightly job runs it (``insight_run``), one after another: recommendations,
   lifetime value, churn. Each run evaluates itself on a time split and records its metrics:
   - churn: AUC on the customers at now - 90 days with what they did since (trained on the 90 days before that),
     beside the naive baseline, recency alone (days since the last order);
   - lifetime value: BG/NBD + Gamma-Gamma fitted on the history before a holdout (12 months, or half the history
     when it is shorter), the predicted revenue and orders of the holdout per customer against what happened
     (MAE, RMSE, error of the total), beside the historical average (revenue per day since the first order);
   - recommendations: hit rate and precision at 10 on the last 30 days' new purchases, beside popularity.
3. Times: training (reading the data, fitting, evaluating) and scoring (scoring every customer and writing the
   values), per model, in seconds.

The last line printed is one JSON object with the figures. ``--quick`` loads 5,000 people, in under 2 minutes; the
full scale (100,000) is the default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import database_recreate, machine, manage  # noqa: E402

SCALES = {"quick": {"profiles": 5_000}, "full": {"profiles": 100_000}}
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/cdp_bench_insights"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load(env: dict, profiles: int, jobs: int) -> float:
    begin = time.monotonic()
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "seed_demo", "--bulk", "--profiles", str(profiles), "--jobs", str(jobs))
    return time.monotonic() - begin


def run_models() -> dict:
    import django

    django.setup()
    from django.utils import timezone

    from profiles.insights.features import customers_at
    from profiles.models import Event, InsightModel, Profile
    from profiles.services.insights import insight_run

    figures = {"profiles": Profile.objects.filter(merged_into__isnull=True).count(),
               "events": Event.objects.count(), "customers": len(customers_at(timezone.now()))}
    for kind in (InsightModel.Kind.RECOMMENDATIONS, InsightModel.Kind.CLV, InsightModel.Kind.CHURN):
        log(f"insights: {kind} ...")
        begin = time.monotonic()
        try:
            run = insight_run(kind=kind)
        except Exception as error:  # a model that fails is reported, the others still run
            figures[kind] = {"status": "failed", "error": str(error)[:500]}
            continue
        figures[kind] = {"status": run.status, "method": run.method, "metrics": run.metrics,
                         "training_rows": run.training_rows, "scored_rows": run.scored_rows,
                         "train_seconds": run.train_seconds, "score_seconds": run.score_seconds,
                         "total_seconds": round(time.monotonic() - begin, 2)}
        log(f"insights: {kind} {run.status} in {figures[kind]['total_seconds']} s")
    return figures


def summary(figures: dict) -> dict:
    """The headline figures beside their baselines."""
    out = {}
    churn = figures.get("churn", {}).get("metrics") or {}
    if churn:
        out["churn_auc"] = round(churn["auc"], 4) if churn.get("auc") is not None else None
        out["churn_baseline_auc_recency"] = round(churn["baseline_auc"], 4) if churn.get("baseline_auc") else None
    clv = figures.get("clv", {}).get("metrics") or {}
    if clv.get("revenue"):
        out["clv_revenue_mae"] = clv["revenue"]["mae"]
        out["clv_baseline_revenue_mae"] = clv["baseline_revenue"]["mae"]
        out["clv_revenue_total_error_percent"] = clv["revenue"]["total_error_percent"]
        out["clv_baseline_total_error_percent"] = clv["baseline_revenue"]["total_error_percent"]
        out["clv_orders_mae"] = clv["orders"]["mae"]
        out["clv_baseline_orders_mae"] = clv["baseline_orders"]["mae"]
    for kind in ("churn", "clv", "recommendations"):
        if figures.get(kind, {}).get("train_seconds") is not None:
            out[f"{kind}_train_seconds"] = figures[kind]["train_seconds"]
            out[f"{kind}_score_seconds"] = figures[kind]["score_seconds"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 people instead of 100,000.")
    parser.add_argument("--database-url", default=DEFAULT_URL,
                        help="PostgreSQL database to DROP and load (default %(default)s).")
    parser.add_argument("--keep", action="store_true", help="Reuse the loaded database.")
    parser.add_argument("--jobs", type=int, default=2, help="Processes for loading (default 2).")
    args = parser.parse_args()
    scale = "quick" if args.quick else "full"
    people = SCALES[scale]["profiles"]
    env = dict(os.environ, DATABASE_URL=args.database_url, DJANGO_SETTINGS_MODULE="cdp.settings",
               PYTHONPATH=str(ROOT))
    load_seconds = None
    if not args.keep:
        log(f"insights: loading {people:,} demo people into {args.database_url} ...")
        database_recreate(args.database_url)
        load_seconds = round(load(env, people, args.jobs), 1)
    os.environ.update(DATABASE_URL=args.database_url, DJANGO_SETTINGS_MODULE="cdp.settings")
    figures = run_models()
    result = {"benchmark": "insights", "scale": scale, "people": people, "load_seconds": load_seconds,
              **summary(figures), "details": figures, "machine": machine()}
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
