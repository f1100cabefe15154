import threading
import time as clock
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import Count, F, IntegerField, Max, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from cdp.core.masking import can_view_pii, mask, mask_traits
from ingestion.models import InboxCount, InboxMessage, Source

Status = InboxMessage.Status


def _today_start() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def _pending_per_source():
    """A subquery: the outer source's pending messages (few: they come from the partial "pending" index)."""
    counts = (InboxMessage.objects.filter(source=OuterRef("pk"), status=Status.PENDING).order_by().values("source")
              .annotate(n=Count("*")).values("n"))
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


def _counted_per_source(column: str):
    """A subquery: the outer source's live count of processed or rejected messages (a few rows per day)."""
    sums = (InboxCount.objects.filter(source=OuterRef("pk")).order_by().values("source")
            .annotate(n=Sum(column)).values("n"))
    return Coalesce(Subquery(sums, output_field=IntegerField()), 0)


def sources_with_stats():
    """Sources with their inbox counts by status (the list page and the API): processed and rejected come from the
    live counts (``InboxCount``, kept by the services that change a message's status), pending from the small
    partial index; no inbox row is counted beyond the pending ones."""
    return Source.objects.annotate(
        pending=_pending_per_source(),
        processed=_counted_per_source("processed"),
        rejected=_counted_per_source("rejected"),
    ).annotate(total=F("pending") + F("processed") + F("rejected")).order_by("name", "id")


def source_stats(*, source: Source) -> dict:
    """The live stats of one source: received today, processed, rejected, pending, the last message's time."""
    today = timezone.localdate()
    counted = InboxCount.objects.filter(source=source).aggregate(
        processed_n=Coalesce(Sum("processed"), 0), rejected_n=Coalesce(Sum("rejected"), 0),
        today=Coalesce(Sum(F("processed") + F("rejected"), filter=Q(day=today)), 0))
    pending = InboxMessage.objects.filter(source=source, status=Status.PENDING).aggregate(
        n=Count("id"), today=Count("id", filter=Q(received_at__gte=_today_start())))
    last = InboxMessage.objects.filter(source=source).aggregate(last=Max("received_at"))["last"]
    return {
        "received_today": counted["today"] + pending["today"],
        "pending": pending["n"],
        "processed": counted["processed_n"],
        "rejected": counted["rejected_n"],
        "total": counted["processed_n"] + counted["rejected_n"] + pending["n"],
        "last_received_at": last,
    }


def source_messages_latest(*, source: Source, status: str = "", message_type: str = "", limit: int = 25):
    """The latest inbox messages of a source, newest first (the live event debugger)."""
    messages = InboxMessage.objects.filter(source=source)
    if status in Status.values:
        messages = messages.filter(status=status)
    if message_type:
        messages = messages.filter(type=message_type)
    return list(messages.order_by("-received_at", "-id")[:limit])


@dataclass(frozen=True)
class SourceKey:
    id: int
    enabled: bool


# Write key -> (SourceKey or None, when it was read), in this process's memory only. The tracking API's hot path
# looks keys up here, off the database (and without hashing); a switch or key change reaches other processes
# within SOURCE_KEY_CACHE_SECONDS (this process forgets at once).
SOURCE_KEY_CACHE_SECONDS = 2.0
_source_keys: dict[str, tuple[SourceKey | None, float]] = {}
_source_keys_lock = threading.Lock()


def source_key_lookup(write_key: str) -> SourceKey | None:
    """The source a write key belongs to (id and switch), or None for an unknown key."""
    now = clock.monotonic()
    cached = _source_keys.get(write_key)
    if cached and now - cached[1] < SOURCE_KEY_CACHE_SECONDS:
        return cached[0]
    from ingestion.services.sources import write_key_hash

    row = Source.objects.filter(write_key_hash=write_key_hash(write_key)).values_list("id", "enabled").first()
    found = SourceKey(*row) if row else None
    with _source_keys_lock:
        if len(_source_keys) > 10_000:
            _source_keys.clear()
        _source_keys[write_key] = (found, now)
    return found


def source_key_cache_clear() -> None:
    with _source_keys_lock:
        _source_keys.clear()


def inbox_stale_source_ids(*, older_than_seconds: float) -> list[int]:
    """The sources with messages pending for longer than the given age (the sweep re-enqueues them)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return sorted(set(InboxMessage.objects.filter(status=Status.PENDING, received_at__lt=cutoff)
                      .values_list("source_id", flat=True).distinct()))


def payload_for(user, payload):
    """An inbox payload as this user may see it: without ``core.view_pii``, the ids and personal traits and
    properties are masked (the same rules as profiles)."""
    if can_view_pii(user) or not isinstance(payload, dict):
        return payload
    shown = dict(payload)
    for key in ("userId", "previousId"):
        if shown.get(key) not in (None, ""):
            shown[key] = mask(str(shown[key]), "text")
    for key in ("traits", "properties"):
        if isinstance(shown.get(key), dict):
            shown[key] = mask_traits(user, shown[key])
    context = shown.get("context")
    if isinstance(context, dict):
        context = dict(context)
        if isinstance(context.get("traits"), dict):
            context["traits"] = mask_traits(user, context["traits"])
        if context.get("ip"):
            context["ip"] = mask(str(context["ip"]), "text")
        if isinstance(context.get("externalIds"), list):
            context["externalIds"] = [{**item, "id": mask(str(item.get("id", "")), "text")}
                                      if isinstance(item, dict) else item for item in context["externalIds"]]
        shown["context"] = context
    return shown


__all__ = ["SourceKey", "inbox_stale_source_ids", "payload_for", "source_messages_latest", "source_stats",
           "source_key_cache_clear", "source_key_lookup", "sources_with_stats"]
