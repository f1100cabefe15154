"""Every write of segments: definitions, full refreshes, real-time re-checks, snapshots, and personal data.

Membership changes are written set-based in SQL (``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`` and
``UPDATE … RETURNING``), so a refresh of a million members is two statements, and concurrent refreshes and
re-checks of the same profile can never open two stays (the partial unique index ``membership_one_open_stay``
decides). ``segment_entered`` and ``segment_exited`` go out on commit with exactly the ids that changed.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager

from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q
from django.utils import timezone
from django.utils.text import slugify

from profiles.models import Profile
from segments import rules as rule_tree
from segments import selectors
from segments.models import Membership, Segment, SegmentSize
from segments.signals import memberships_changed_on_commit

# The most profile ids one re-check statement takes (a larger change is split).
RECHECK_CHUNK = 500


def _unique_slug(name: str, *, exclude_pk: int | None = None) -> str:
    base = slugify(name)[:100] or "segment"
    slug, n = base, 2
    while Segment.objects.filter(slug=slug).exclude(pk=exclude_pk).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _refresh_later(segment: Segment) -> None:
    from segments import tasks

    pk = segment.pk
    transaction.on_commit(lambda: tasks.segment_refresh.delay(pk))


@transaction.atomic
def segment_create(*, name: str, rules: dict, kind: str = Segment.Kind.DYNAMIC, description: str = "",
                   actor=None, slug: str = "") -> Segment:
    """A new segment. The tree is checked first (``RuleError`` with the path of each wrong node); the first
    membership is computed by a task on commit (a static segment: its snapshot)."""
    rule_tree.rules_validate(rules)
    segment = Segment.objects.create(name=name, slug=slug or _unique_slug(name), description=description, kind=kind,
                                     rules=rules, created_by=actor if getattr(actor, "pk", None) else None)
    transaction.on_commit(selectors.segments_cache_clear)
    _refresh_later(segment)
    return segment


@transaction.atomic
def segment_update(*, segment: Segment, actor=None, **fields) -> Segment:
    """Change name, description, kind or rules. New rules are checked (also that the segment does not come to
    depend on itself) and refresh the membership on commit."""
    allowed = {"name", "description", "kind", "rules", "slug"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"segment_update does not change {', '.join(sorted(unknown))}")
    rules_changed = "rules" in fields and fields["rules"] != segment.rules
    if "rules" in fields:
        rule_tree.rules_validate(fields["rules"], segment_id=segment.pk)
    for key, value in fields.items():
        setattr(segment, key, value)
    segment.save()
    transaction.on_commit(selectors.segments_cache_clear)
    if rules_changed and segment.rules:
        _refresh_later(segment)
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment, actor=None) -> None:
    """Delete a segment and its membership history. Segments that refer to it must change first."""
    dependants = [s.name for s in Segment.objects.exclude(pk=segment.pk)
                  if segment.slug in rule_tree.referenced_segments(s.rules)]
    if dependants:
        raise rule_tree.RuleError({"segment": [f"Used by {', '.join(sorted(dependants))}; change those first."]})
    segment.delete()
    transaction.on_commit(selectors.segments_cache_clear)


def _enter(segment_id: int, matching_sql: str, params: tuple, at) -> list[int]:
    """Open a stay for each profile the SQL selects (column ``id``) that has none open; the ids that entered."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO segments_membership (segment_id, profile_id, entered_at) "
            f"SELECT %s, m.id, %s FROM ({matching_sql}) m WHERE true ON CONFLICT DO NOTHING RETURNING profile_id",
            (segment_id, at, *params))
        return [row[0] for row in cursor.fetchall()]


@contextmanager
def _materialized(sql: str, params: tuple):
    """The profile ids a query selects, computed once into a temporary table (analyzed on PostgreSQL), so that
    the exits and entries of a refresh compare memberships with a table of known size instead of re-running the
    rules inside an anti-join, where one wrong row estimate means re-running them for every member. Yields the
    SQL that reads the ids (column ``id``)."""
    table = f"segment_matching_{uuid.uuid4().hex[:16]}"
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {table} (id bigint PRIMARY KEY)"
                       + (" ON COMMIT DROP" if postgres else ""))
        cursor.execute(f"INSERT INTO {table} (id) {sql}", params)
        if postgres:
            cursor.execute(f"ANALYZE {table}")
    try:
        yield f"SELECT id FROM {table}"
    finally:
        if not postgres:  # PostgreSQL drops it with the transaction (also when it fails)
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")


def _exit(segment_id: int, matching_sql: str, params: tuple, at) -> list[int]:
    """Close the open stays of profiles the SQL (column ``id``) no longer selects; the ids that exited."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE segments_membership SET exited_at = %s WHERE segment_id = %s AND exited_at IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM ({matching_sql}) m WHERE m.id = segments_membership.profile_id) "
            "RETURNING profile_id",
            (at, segment_id, *params))
        return [row[0] for row in cursor.fetchall()]


def _close(segment_id: int, profile_ids: list[int], at) -> list[int]:
    """Close the open stays of these profiles; the ids whose stay was still open."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE segments_membership SET exited_at = %s WHERE segment_id = %s AND exited_at IS NULL "
            f"AND profile_id IN ({', '.join(['%s'] * len(profile_ids))}) RETURNING profile_id",
            (at, segment_id, *profile_ids))
        return [row[0] for row in cursor.fetchall()]


def _record_size(segment_id: int, *, size: int, entered: int, exited: int) -> None:
    day = timezone.localdate()
    rows = SegmentSize.objects.filter(segment_id=segment_id, day=day)
    if rows.update(size=size, entered=F("entered") + entered, exited=F("exited") + exited):
        return
    try:
        with transaction.atomic():
            SegmentSize.objects.create(segment_id=segment_id, day=day, size=size, entered=entered, exited=exited)
    except IntegrityError:  # another refresh wrote today's row first
        rows.update(size=size, entered=F("entered") + entered, exited=F("exited") + exited)


def segment_refresh(*, segment: Segment) -> dict:
    """Recompute the whole membership of a segment from its rules: the rules run once (into a temporary
    table), then two statements: profiles that meet the rules and are not members enter, members that no longer
    meet them exit. A static segment is snapshotted the
    same way when asked. Records the size of the day; sends entered/exited on commit."""
    started = time.monotonic()
    now = timezone.now()
    with selectors.population_query():
        locked = Segment.objects.select_for_update().get(pk=segment.pk)  # one refresh of a segment at a time
        if locked.rules:
            matching = rule_tree.profiles_matching(locked.rules, now=now).order_by().values("id")
            with _materialized(*matching.query.sql_with_params()) as matched_sql:
                exited = _exit(locked.pk, matched_sql, (), now)
                entered = _enter(locked.pk, matched_sql, (), now)
        else:
            entered, exited = [], []
        size = Membership.objects.filter(segment=locked, exited_at__isnull=True).count()
        elapsed = int((time.monotonic() - started) * 1000)
        Segment.objects.filter(pk=locked.pk).update(size=size, last_refreshed_at=now, last_refresh_ms=elapsed)
        _record_size(locked.pk, size=size, entered=len(entered), exited=len(exited))
        memberships_changed_on_commit(locked.pk, entered=entered, exited=exited)
    segment.size, segment.last_refreshed_at, segment.last_refresh_ms = size, now, elapsed
    return {"segment": segment.pk, "entered": len(entered), "exited": len(exited), "size": size, "ms": elapsed}


def segments_refresh_all() -> list[dict]:
    """The scheduled full recompute of every dynamic segment, each after the segments it depends on."""
    return [segment_refresh(segment=segment) for segment in selectors.dynamic_segments_in_order()]


def memberships_recheck(*, profile_ids) -> dict:
    """Re-check changed profiles against every dynamic segment (the real-time path of ``profile_changed``).
    One query evaluates every segment's rules (correlated subqueries reading only these profiles' rows) and
    their open stays; nothing is written when nothing changed. Segments that refer to a segment whose
    membership just changed are evaluated again after it. Merged-away profiles leave their segments."""
    ids = sorted({int(pk) for pk in profile_ids})
    totals = {"profiles": len(ids), "entered": 0, "exited": 0}
    segments = selectors.dynamic_segments_in_order(cached=True) if ids else []
    if not segments:
        return totals
    now = timezone.now()
    for start in range(0, len(ids), RECHECK_CHUNK):
        chunk = ids[start:start + RECHECK_CHUNK]
        pending = segments
        while pending:
            changed_slugs = set()
            for segment, matched, current in _evaluate(pending, chunk, now):
                if matched == current:
                    continue
                with transaction.atomic():
                    exited = _close(segment.pk, sorted(current - matched), now) if current - matched else []
                    entered = []
                    if matched - current:
                        sql, params = (Profile.objects.filter(pk__in=sorted(matched - current)).order_by()
                                       .values("id").query.sql_with_params())
                        entered = _enter(segment.pk, sql, params, now)
                    if entered or exited:
                        Segment.objects.filter(pk=segment.pk).update(size=F("size") + len(entered) - len(exited))
                        size = Segment.objects.values_list("size", flat=True).get(pk=segment.pk)
                        _record_size(segment.pk, size=size, entered=len(entered), exited=len(exited))
                        memberships_changed_on_commit(segment.pk, entered=entered, exited=exited)
                        changed_slugs.add(segment.slug)
                totals["entered"] += len(entered)
                totals["exited"] += len(exited)
            # Segments built on a segment that just changed see its new membership in another pass.
            pending = [s for s in segments if changed_slugs & set(rule_tree.referenced_segments(s.rules))]
    return totals


def _evaluate(segments, profile_ids: list[int], now) -> list[tuple[Segment, set, set]]:
    """For each segment: which of these profiles meet its rules now, and which have an open stay. One query."""
    columns = {}
    for segment in segments:
        meets = Q(merged_into__isnull=True) & rule_tree.rules_compile(segment.rules, correlated=True, now=now)
        columns[f"m{segment.pk}"] = ExpressionWrapper(meets, output_field=BooleanField())
        columns[f"c{segment.pk}"] = Exists(Membership.objects.filter(segment_id=segment.pk, profile=OuterRef("pk"),
                                                                    exited_at__isnull=True))
    rows = list(Profile.objects.filter(pk__in=profile_ids).order_by().values("pk", **columns))
    return [(segment, {row["pk"] for row in rows if row[f"m{segment.pk}"]},
             {row["pk"] for row in rows if row[f"c{segment.pk}"]}) for segment in segments]


@transaction.atomic
def segment_from_profiles(*, name: str, queryset, actor=None, description: str = "") -> Segment:
    """A static segment holding exactly the live profiles of a (filtered) profile query now: the quick segment
    from a profile list."""
    segment = Segment.objects.create(name=name, slug=_unique_slug(name), description=description,
                                     kind=Segment.Kind.STATIC, rules={},
                                     created_by=actor if getattr(actor, "pk", None) else None)
    now = timezone.now()
    sql, params = queryset.filter(merged_into__isnull=True).order_by().values("id").query.sql_with_params()
    entered = _enter(segment.pk, sql, params, now)
    Segment.objects.filter(pk=segment.pk).update(size=len(entered), last_refreshed_at=now)
    _record_size(segment.pk, size=len(entered), entered=len(entered), exited=0)
    memberships_changed_on_commit(segment.pk, entered=entered, exited=[])
    segment.refresh_from_db()
    return segment


def personal_data_export(profile) -> dict:
    return {"segment_memberships": [
        {"segment": m.segment.name, "entered_at": m.entered_at.isoformat(),
         "exited_at": m.exited_at and m.exited_at.isoformat()}
        for m in profile.segment_memberships.select_related("segment").order_by("entered_at")]}


def personal_data_erase(profile) -> int:
    open_stays = list(profile.segment_memberships.filter(exited_at__isnull=True).values_list("segment_id", flat=True))
    deleted, _ = profile.segment_memberships.all().delete()
    if open_stays:
        Segment.objects.filter(pk__in=open_stays).update(size=F("size") - 1)
    return deleted
