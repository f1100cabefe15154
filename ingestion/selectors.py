from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from ingestion.models import InboxMessage, Source


def sources_with_stats():
    return Source.objects.annotate(
        pending=Count("messages", filter=Q(messages__status=InboxMessage.Status.PENDING)),
        processed=Count("messages", filter=Q(messages__status=InboxMessage.Status.PROCESSED)),
        rejected=Count("messages", filter=Q(messages__status=InboxMessage.Status.REJECTED)),
    )


def inbox_stale_source_ids(*, older_than_seconds: float) -> list[int]:
    """The sources with messages pending for longer than the given age (the sweep re-enqueues them)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return sorted(set(InboxMessage.objects.filter(status=InboxMessage.Status.PENDING, received_at__lt=cutoff)
                      .values_list("source_id", flat=True).distinct()))
