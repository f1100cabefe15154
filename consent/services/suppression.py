"""The suppression list's counter: messages rejected because they named an erased person."""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from consent.models import SuppressionHit


@transaction.atomic
def suppression_hits_record(*, source: str, count: int) -> None:
    """Count ``count`` rejected messages of ``source`` today (one upsert)."""
    if count <= 0:
        return
    day = timezone.localdate()
    updated = SuppressionHit.objects.filter(source=source[:64], day=day).update(count=F("count") + count)
    if not updated:
        hit, created = SuppressionHit.objects.get_or_create(source=source[:64], day=day, defaults={"count": count})
        if not created:
            SuppressionHit.objects.filter(pk=hit.pk).update(count=F("count") + count)
