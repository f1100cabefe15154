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
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from profiles.models import ComputedTrait, Profile
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
    One statement evaluates every segment's rules for these profiles (each segment compiled once per process,
    see ``_RecheckPlan``) and their open stays; nothing is written when nothing changed. Segments that refer to a
    segment whose membership just changed are evaluated again after it. Merged-away profiles leave their
    segments."""
    ids = sorted({int(pk) for pk in profile_ids})
    totals = {"profiles": len(ids), "entered": 0, "exited": 0}
    if not ids:
        return totals
    now = timezone.now()
    for start in range(0, len(ids), RECHECK_CHUNK):
        chunk = ids[start:start + RECHECK_CHUNK]
        pending = None  # the first pass: every dynamic segment
        while pending is None or pending:
            changed_slugs = set()
            evaluated, segments = _recheck_plan.evaluate(chunk, only=pending)
            for segment, matched, current in evaluated:
                if matched == current:
                    continue
                entered, exited = _recheck_apply(segment, matched=matched, current=current, at=now)
                if entered or exited:
                    changed_slugs.add(segment.slug)
                totals["entered"] += len(entered)
                totals["exited"] += len(exited)
            # Segments built on a segment that just changed see its new membership in another pass.
            pending = [s.pk for s in segments if changed_slugs & set(rule_tree.referenced_segments(s.rules))]
    return totals


@transaction.atomic
def _recheck_apply(segment: Segment, *, matched: set, current: set, at) -> tuple[list[int], list[int]]:
    """Write one segment's changes found by a re-check: close the stays of profiles that no longer meet it, open
    stays for those that newly do, and keep its size."""
    exited = _close(segment.pk, sorted(current - matched), at) if current - matched else []
    entered = []
    if matched - current:
        newcomers = sorted(matched - current)
        entered = _enter(segment.pk, f"SELECT id FROM {Profile._meta.db_table} WHERE id IN "
                                     f"({', '.join(['%s'] * len(newcomers))})", tuple(newcomers), at)
    if entered or exited:
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {Segment._meta.db_table} SET size = size + %s WHERE id = %s RETURNING size",
                           (len(entered) - len(exited), segment.pk))
            size = cursor.fetchone()[0]
        _record_size(segment.pk, size=size, entered=len(entered), exited=len(exited))
        memberships_changed_on_commit(segment.pk, entered=entered, exited=exited)
    return entered, exited


class _RecheckPlan:
    """What the real-time re-check runs, kept per process: the dynamic segments in order (each after those it
    refers to) and each one's rules compiled once (``rules.recheck_condition``, kept by segment id and
    ``updated_at``). Every re-check statement also reads a fingerprint of the segment and computed-trait
    definitions (count, sum of ids, sum of update times); when it differs from the one the plan was built
    with, the plan is built again (only changed segments are compiled again) and the statement re-run. So a
    re-check needs one statement, and never runs rules another process has changed."""

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        # (fingerprint, segments in order), replaced as a whole: threads of a process share the plan.
        self.state: tuple | None = None
        self.conditions: dict[tuple, rule_tree.RecheckCondition] = {}

    @staticmethod
    def _fingerprint_sql() -> str:
        if connection.vendor == "postgresql":
            stamp = "(EXTRACT(EPOCH FROM updated_at) * 1000000)::bigint"
        else:
            stamp = "CAST((julianday(updated_at) - 2440587.5) * 86400000000 AS INTEGER)"
        return ", ".join(
            f"(SELECT COUNT(*) || '/' || COALESCE(SUM(id), 0) || '/' || COALESCE(SUM({stamp}), 0) FROM {table})"
            for table in (Segment._meta.db_table, ComputedTrait._meta.db_table))

    def _fingerprint(self) -> tuple:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {self._fingerprint_sql()}")
            return tuple(cursor.fetchone())

    def _rebuild(self) -> tuple:
        fingerprint = self._fingerprint()
        segments = selectors.dynamic_segments_in_order()
        keep = {(s.pk, s.updated_at) for s in segments}
        self.conditions = {key: c for key, c in self.conditions.items() if key in keep}
        self.state = (fingerprint, segments)
        return self.state

    def _condition(self, segment: Segment) -> rule_tree.RecheckCondition:
        key = (segment.pk, segment.updated_at)
        condition = self.conditions.get(key)
        if condition is None or (condition.day is not None and condition.day != timezone.localdate()):
            condition = self.conditions[key] = rule_tree.recheck_condition(segment.rules)
        return condition

    def evaluate(self, profile_ids: list[int], *, only: list[int] | None = None):
        """For each dynamic segment (or those with ids in ``only``): which of these profiles meet its rules now,
        and which have an open stay; and the segments of the plan. One statement (two more when the
        definitions changed)."""
        fingerprint, plan = self.state or self._rebuild()
        while True:
            segments = [s for s in plan if only is None or s.pk in only]
            if not segments:
                if only is None and self._fingerprint() != fingerprint:
                    # A plan without segments runs no statement to notice a new one: ask for the fingerprint.
                    fingerprint, plan = self._rebuild()
                    continue
                return [], plan
            profile = Profile._meta.db_table
            columns, params = [], []
            for segment in segments:
                condition = self._condition(segment)
                columns.append(f"({condition.sql})")
                params.extend(condition.params)
                columns.append(f"EXISTS (SELECT 1 FROM {Membership._meta.db_table} WHERE segment_id = %s "
                               f"AND profile_id = {profile}.id AND exited_at IS NULL)")
                params.append(segment.pk)
            sql = (f"SELECT {self._fingerprint_sql()}, {profile}.id, {', '.join(columns)} FROM {profile} "
                   f"WHERE {profile}.id IN ({', '.join(['%s'] * len(profile_ids))})")
            with connection.cursor() as cursor:
                cursor.execute(sql, (*params, *profile_ids))
                rows = cursor.fetchall()
            if rows and tuple(rows[0][:2]) != fingerprint:
                # Definitions changed since the plan was built: build it again and re-run.
                fingerprint, plan = self._rebuild()
                continue
            evaluated = []
            for i, segment in enumerate(segments):
                met, current = 3 + 2 * i, 4 + 2 * i
                evaluated.append((segment, {row[2] for row in rows if row[met]},
                                  {row[2] for row in rows if row[current]}))
            return evaluated, plan


_recheck_plan = _RecheckPlan()


def recheck_plan_clear() -> None:
    """Forget the compiled re-check plan of this process (tests; it rebuilds itself when definitions change)."""
    _recheck_plan.clear()


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
