"""Insight runs: read the data, train (or fit) an insight model, score every profile, and write the outputs as the
values of the insight computed traits (``computed.INSIGHT_TRAITS``), so segments, the 360° page, activation and the
API use them like any computed trait.

Each run is an ``InsightModel`` row: status, method, the metrics on the held-out time split beside a naive
baseline, the fitted parameters (plain JSON) and the times. Scoring reads the newest usable run of its kind.

- churn (``profiles.insights.churn``): logistic regression on recency, frequency, monetary value, engagement and
  service sentiment, trained on the installation's own history; a labelled heuristic with too little data.
- clv (``profiles.insights.clv``): BG/NBD with Gamma-Gamma, fitted on the order history.
- recommendations (``profiles.insights.recommendations``): item to item from co-purchase and co-view, with a
  popularity fallback.

``insight_run(kind=...)`` runs one kind in full (the nightly beat runs them all; ``insight_run_enqueue`` queues a
run for "Run now"); ``insight_values_write`` is the one writer of insight trait values.
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Callable, Mapping

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from cdp.core import processing
from profiles.models import ComputedTrait, ComputedValue, InsightModel, Profile
from profiles.services.computed import INSIGHT_TRAITS, PROFILE_TABLE, VALUE_TABLE

Kind = InsightModel.Kind
Status = InsightModel.Status
WRITE_BATCH = 5000
logger = logging.getLogger(__name__)


def _insight_traits(keys) -> dict[str, ComputedTrait]:
    return {t.key: t for t in ComputedTrait.objects.filter(aggregation=ComputedTrait.Aggregation.INSIGHT,
                                                           insight__in=list(keys))}


@transaction.atomic
def insight_values_write(*, values: Mapping[str, Mapping[int, object]], full: bool = True, now=None) -> int:
    """Write insight outputs: ``values`` maps an insight key (``INSIGHT_TRAITS``) to {profile id: value}; a value of
    None deletes that profile's row. With ``full`` (a run that scored the whole population) the rows of profiles
    that got no value this time are deleted too. Disabled traits keep no values; merged or erased profiles get
    none, and neither do profiles frozen by a restriction or objection (cdp.core.processing). Returns how many
    profiles have a value of these traits from this call.

    On PostgreSQL each trait is one upsert from arrays (rows whose value did not change are left alone) and one
    anti-join delete; elsewhere the ORM's bulk upsert."""
    now = now or timezone.now()
    traits = _insight_traits(values)
    frozen = processing.frozen_profile_ids()  # restriction or objection in force: not profiled
    written = 0
    for key, by_profile in values.items():
        trait = traits.get(key)
        if trait is None:
            continue
        if not trait.enabled:
            ComputedValue.objects.filter(trait=trait).delete()
            continue
        keep = {int(pk): value for pk, value in by_profile.items() if value is not None and int(pk) not in frozen}
        drop = [int(pk) for pk, value in by_profile.items() if value is None or int(pk) in frozen]
        write = _values_write_pg if connection.vendor == "postgresql" else _values_write_orm
        rows = write(trait, keep, drop, frozen, full=full, now=now)
        written += rows
        if full:
            ComputedTrait.objects.filter(pk=trait.pk).update(last_run_at=now, last_run_rows=rows)
    return written


_PG_TYPES = {"value_number": "double precision", "value_text": "text", "value_time": "timestamptz"}


def _values_write_pg(trait, keep: dict, drop: list, frozen: set, *, full: bool, now) -> int:
    column = trait.value_column
    ids = list(keep)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {VALUE_TABLE} (trait_id, profile_id, {column}, computed_at) "
            f"SELECT %s, v.profile_id, v.value, %s FROM unnest(%s::bigint[], %s::{_PG_TYPES[column]}[]) "
            "AS v(profile_id, value) "
            f"JOIN {PROFILE_TABLE} p ON p.id = v.profile_id AND p.merged_into_id IS NULL "
            f"ON CONFLICT (trait_id, profile_id) DO UPDATE SET {column} = EXCLUDED.{column}, "
            f"computed_at = EXCLUDED.computed_at WHERE {VALUE_TABLE}.{column} IS DISTINCT FROM EXCLUDED.{column}",
            [trait.pk, now, ids, [keep[pk] for pk in ids]])
        if full:  # everyone else loses their value: an anti-join against the scored ids
            cursor.execute(
                f"DELETE FROM {VALUE_TABLE} t WHERE t.trait_id = %s AND NOT EXISTS ("
                "SELECT 1 FROM unnest(%s::bigint[]) AS v(profile_id) WHERE v.profile_id = t.profile_id)",
                [trait.pk, ids])
        elif drop:
            cursor.execute(f"DELETE FROM {VALUE_TABLE} WHERE trait_id = %s AND profile_id = ANY(%s::bigint[])",
                           [trait.pk, drop])
        cursor.execute(f"SELECT COUNT(*) FROM {VALUE_TABLE} WHERE trait_id = %s AND profile_id = ANY(%s::bigint[])",
                       [trait.pk, ids])
        return cursor.fetchone()[0]


def _values_write_orm(trait, keep: dict, drop: list, frozen: set, *, full: bool, now) -> int:
    column = trait.value_column
    live = _live_ids(keep)
    rows = [ComputedValue(trait=trait, profile_id=pk, computed_at=now, **{column: value})
            for pk, value in keep.items() if pk in live]
    for start in range(0, len(rows), WRITE_BATCH):
        ComputedValue.objects.bulk_create(rows[start:start + WRITE_BATCH], update_conflicts=True,
                                          unique_fields=["trait", "profile"], update_fields=[column, "computed_at"])
    if full:  # every row written now carries computed_at = now
        ComputedValue.objects.filter(trait=trait, computed_at__lt=now).delete()
    elif drop:
        ComputedValue.objects.filter(trait=trait, profile_id__in=drop).delete()
    return len(rows)


def _live_ids(ids) -> set[int]:
    """Those of ``ids`` that are profiles now and not merged into another."""
    live: set[int] = set()
    ids = list(ids)
    for start in range(0, len(ids), 20_000):
        live.update(Profile.objects.filter(pk__in=ids[start:start + 20_000], merged_into__isnull=True)
                    .values_list("pk", flat=True))
    return live


def insight_model_latest(kind: str) -> InsightModel | None:
    """The newest run of ``kind`` that scores (trained, or a heuristic standing in)."""
    return InsightModel.objects.filter(kind=kind, status__in=InsightModel.SCORING).first()


def insight_run_record(*, kind: str, run: Callable[[InsightModel], None]) -> InsightModel:
    """Run ``run(record)`` for a new InsightModel of ``kind`` (committed as running first, so the UI shows it).
    ``run`` fills in the record's fields (status, method, metrics, params, rows, seconds); a failure is recorded
    with its reason and raised again."""
    record = InsightModel.objects.create(kind=kind, status=Status.RUNNING)
    begin = clock.monotonic()
    try:
        run(record)
    except Exception as error:
        InsightModel.objects.filter(pk=record.pk).update(status=Status.FAILED, reason=str(error)[:2000],
                                                         finished_at=timezone.now())
        raise
    if record.status == Status.RUNNING:
        record.status = Status.OK
    record.finished_at = timezone.now()
    if record.train_seconds is None:
        record.train_seconds = round(clock.monotonic() - begin, 3)
    record.save()
    return record


def insight_run(*, kind: str) -> InsightModel:
    """Train and score one kind of insight model in full (see the module)."""
    from profiles.services import insight_runs  # the runners, one per kind

    runner = insight_runs.RUNNERS.get(kind)
    if runner is None:
        raise ValueError(f"Unknown insight kind {kind!r}; one of {', '.join(Kind.values)}.")
    return runner()


def insight_run_enqueue(*, kind: str | None = None) -> None:
    """Queue one kind of insight model, or every kind (``kind`` None), on commit. Raises ValueError for an unknown
    kind. A run that fails records its reason on its InsightModel; in the embedded default (eager tasks) that
    failure is logged here instead of failing the request that asked for it."""
    if kind is not None and kind not in InsightModel.Kind.values:
        raise ValueError(f"Unknown insight kind {kind!r}; one of {', '.join(InsightModel.Kind.values)}.")

    def enqueue():
        from profiles import tasks  # tasks import the services: imported when used

        try:
            if kind is None:
                tasks.insights_run_all.delay()
            else:
                tasks.insight_run.delay(kind)
        except Exception:
            if not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
                raise
            logger.exception("insight run %s failed", kind)

    transaction.on_commit(enqueue)


def insights_run_all() -> dict[str, str]:
    """Every kind, one after another; one that fails (recorded on its run) does not stop the others. Returns
    kind -> status."""
    results = {}
    for kind in (Kind.RECOMMENDATIONS, Kind.CLV, Kind.CHURN):
        try:
            results[kind] = insight_run(kind=kind).status
        except Exception:
            logger.exception("insight run %s failed", kind)
            results[kind] = Status.FAILED
    return results


def insight_values_refresh(*, profile_ids) -> int:
    """Score these profiles again with the newest churn and lifetime-value runs (nothing before the first run):
    called with the computed traits when a profile changes, so a note or an order moves the risk at once. A
    profile that is no customer (any more) loses its values. Returns the customers scored."""
    from profiles.insights.features import customers_at  # the runners build on this module
    from profiles.services.insights_churn import churn_scores_write
    from profiles.services.insights_clv import clv_scores_write

    ids = sorted({int(pk) for pk in profile_ids})
    churn, clv = insight_model_latest(Kind.CHURN), insight_model_latest(Kind.CLV)
    if not ids or (churn is None and clv is None):
        return 0
    now = timezone.now()
    customers = customers_at(now, profile_ids=ids)
    if churn is not None:
        churn_scores_write(params=churn.params, now=now, profile_ids=ids, customers=customers)
    if clv is not None:
        clv_scores_write(params=clv.params, customers=customers, now=now, profile_ids=ids)
    return len(customers)


__all__ = ["INSIGHT_TRAITS", "insight_model_latest", "insight_run", "insight_run_enqueue", "insight_run_record",
           "insight_values_refresh", "insight_values_write", "insights_run_all"]
