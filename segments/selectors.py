from django.db.models import Count, Q

from segments.models import Segment


def segment_count() -> int:
    return Segment.objects.count()


def segments_with_sizes():
    return Segment.objects.annotate(size=Count("memberships", filter=Q(memberships__exited_at__isnull=True)))
