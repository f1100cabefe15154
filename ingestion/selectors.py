from django.db.models import Count, Q

from ingestion.models import InboxMessage, Source


def sources_with_stats():
    return Source.objects.annotate(
        pending=Count("messages", filter=Q(messages__status=InboxMessage.Status.PENDING)),
        processed=Count("messages", filter=Q(messages__status=InboxMessage.Status.PROCESSED)),
        rejected=Count("messages", filter=Q(messages__status=InboxMessage.Status.REJECTED)),
    )
