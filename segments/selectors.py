"""Reads of segments: sizes, members, previews, estimates, history, overlap and explanations."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from profiles.models import Profile
from segments import rules as rule_tree
from segments.models import Membership, Segment, SegmentSize

# Population queries hash the profile ids of big subqueries (events grouped per profile, members of a segment);
# PostgreSQL's default work_mem (4 MB) would make it re-scan them row by row instead.
SEGMENT_QUERY_WORK_MEM = "256MB"


@contextmanager
def population_query():
    """Run the enclosed segment queries as whole-population queries (PostgreSQL; a no-op on SQLite), in a
    transaction so that the settings stay local to it:

    - the memory to hash big subqueries (``SEGMENT_QUERY_WORK_MEM``);
    - no nested-loop joins. PostgreSQL has no statistics for conditions on keys of the traits JSON and estimates
      that a handful of profiles meet them (1 of 200,000 when 37,647 do), so it joins them to the events grouped per
      profile with a nested loop that walks the whole grouped result once per profile: 316 s instead of 0.28 s
      for the benchmark's test segment on 200,000 profiles. A population query reads the population, where hash
      joins are right whatever the estimate; correlated subqueries (the re-check's shape) are not joins and are
      not affected."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('work_mem', %s, true), set_config('enable_nestloop', 'off', true)",
                               [SEGMENT_QUERY_WORK_MEM])
        yield


def segment_count() -> int:
    return Segment.objects.count()


def segments_with_sizes():
    """Segments with their current size (kept on the row by refreshes and re-checks)."""
    return Segment.objects.all()


def segment_estimate(*, rules: dict) -> int:
    """How many live profiles meet a (validated) tree now: one counting query."""
    with population_query():
        return rule_tree.profiles_matching(rules).count()


def segment_preview(*, rules: dict, limit: int = 100) -> list[Profile]:
    """The first profiles (newest first) that meet a (validated) tree."""
    with population_query():
        return list(rule_tree.profiles_matching(rules).order_by("-id")[:limit])


def segment_members(*, segment: Segment):
    """The profiles in the segment now, newest member first."""
    return (Profile.objects.filter(segment_memberships__segment=segment, segment_memberships__exited_at__isnull=True)
            .order_by("-segment_memberships__entered_at", "-id"))


def segment_memberships(*, segment: Segment):
    """The open stays of the segment's members, newest first."""
    return Membership.objects.filter(segment=segment, exited_at__isnull=True).order_by("-entered_at", "-id")


def segment_size_history(*, segment: Segment, days: int = 90) -> list[tuple]:
    """(day, size) for the last ``days`` days that have a recorded size, oldest first."""
    since = timezone.localdate() - timedelta(days=days)
    return list(SegmentSize.objects.filter(segment=segment, day__gte=since).order_by("day")
                .values_list("day", "size"))


def segment_history(*, segment: Segment, days: int = 90):
    """The daily size rows (size, entered, exited) of the last ``days`` days, oldest first."""
    since = timezone.localdate() - timedelta(days=days)
    return SegmentSize.objects.filter(segment=segment, day__gte=since).order_by("day")


def segments_overlap(*, a: Segment, b: Segment) -> dict:
    """How many current members are only in a, in both, only in b."""
    open_b = Membership.objects.filter(segment=b, exited_at__isnull=True, profile=OuterRef("profile"))
    members_a = Membership.objects.filter(segment=a, exited_at__isnull=True)
    both = members_a.filter(Exists(open_b)).count()
    size_a = members_a.count()
    size_b = Membership.objects.filter(segment=b, exited_at__isnull=True).count()
    return {"a_only": size_a - both, "both": both, "b_only": size_b - both}


def membership_explain(*, segment: Segment, profile: Profile) -> list[dict]:
    """Which conditions of the segment the profile meets now (see ``segments.rules.rules_explain``)."""
    if not segment.rules:
        return []
    return rule_tree.rules_explain(segment.rules, profile)


def membership_current(*, segment: Segment, profile: Profile) -> Membership | None:
    return Membership.objects.filter(segment=segment, profile=profile, exited_at__isnull=True).first()


def dynamic_segments_in_order() -> list[Segment]:
    """Dynamic segments with rules, each after the segments it refers to (so a re-check sees their fresh
    membership)."""
    segments = {s.slug: s for s in Segment.objects.filter(kind=Segment.Kind.DYNAMIC).exclude(rules={})}
    ordered: list[Segment] = []
    placed: set[str] = set()

    def place(slug: str, trail: tuple = ()) -> None:
        if slug in placed or slug not in segments or slug in trail:
            return
        for needed in rule_tree.referenced_segments(segments[slug].rules):
            place(needed, (*trail, slug))
        placed.add(slug)
        ordered.append(segments[slug])

    for slug in sorted(segments):
        place(slug)
    return ordered
