from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from profiles.filters import EventFilter, ProfileFilter
from profiles.models import Event, Identity, Merge, Note, Profile, TraitValue
from profiles.search import identifier_candidates

TIMELINE_PAGE_SIZE = 50
MAX_TOMBSTONE_HOPS = 20


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def profile_count() -> int:
    return Profile.objects.count()


def events_today_count() -> int:
    return Event.objects.filter(timestamp__gte=_day_start(timezone.localdate())).count()


def events_per_day(start: date, end: date) -> dict[date, int]:
    rows = (Event.objects.filter(timestamp__gte=_day_start(start), timestamp__lt=_day_start(end + timedelta(days=1)))
            .annotate(day=TruncDate("timestamp")).values("day").annotate(n=Count("id")).values_list("day", "n"))
    return dict(rows)


def profile_list(*, filters: dict | None = None, request=None):
    return ProfileFilter(filters or {}, queryset=Profile.objects.all(), request=request).qs


def profile_resolve(*, profile_id: int) -> Profile | None:
    """The live profile for an id: a merged profile (a tombstone) leads to the profile it was merged into."""
    profile = Profile.objects.filter(pk=profile_id).first()
    hops = 0
    while profile is not None and getattr(profile, "merged_into_id", None) and hops < MAX_TOMBSTONE_HOPS:
        profile = Profile.objects.filter(pk=profile.merged_into_id).first()
        hops += 1
    return profile


def profile_lookup(*, identity_type: str, value: str) -> Profile | None:
    """The live profile that carries the identifier (normalized as the pipeline does; a value that failed
    normalization is found as sent), following merge tombstones; None when no profile has it."""
    candidates = identifier_candidates(identity_type, value)
    if not candidates:
        return None
    found = dict(Identity.objects.filter(type=identity_type, value__in=candidates).values_list("value", "profile_id"))
    profile_id = next((found[c] for c in candidates if c in found), None)
    if profile_id is None:
        profile_id = (Identity.objects.filter(type=identity_type, flagged=True, raw_value__in=candidates)
                      .values_list("profile_id", flat=True).first())
    return None if profile_id is None else profile_resolve(profile_id=profile_id)


# --- the timeline ---------------------------------------------------------------------------------------------


def profile_timeline(*, profile: Profile):
    return profile.events.order_by("-timestamp", "-id")


@dataclass(frozen=True)
class TimelinePage:
    events: list
    next_cursor: str | None


def timeline_cursor(event: Event) -> str:
    return f"{event.timestamp.isoformat()}~{event.pk}"


def _cursor_parse(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor or "~" not in cursor:
        return None
    stamp, _, pk = cursor.rpartition("~")
    when = parse_datetime(stamp.replace(" ", "+"))  # a "+" in a query string arrives as a space
    if when is None or not pk.isdigit():
        return None
    return when, int(pk)


def timeline_page(*, profile: Profile, filters=None, cursor: str | None = None,
                  size: int = TIMELINE_PAGE_SIZE) -> TimelinePage:
    """One page of the profile's events, newest first, filtered by EventFilter (type, channel, ...), after
    ``cursor`` (keyset on timestamp and id: stable while new events arrive). An unreadable cursor starts over."""
    events = EventFilter(filters or {}, queryset=profile_timeline(profile=profile)).qs
    position = _cursor_parse(cursor)
    if position:
        when, pk = position
        events = events.filter(Q(timestamp__lt=when) | Q(timestamp=when, pk__lt=pk))
    rows = list(events[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return TimelinePage(rows, timeline_cursor(rows[-1]) if more and rows else None)


def timeline_facets(*, profile: Profile) -> dict[str, list]:
    """The channels and types the profile's events have, for the timeline's filter."""
    rows = profile.events.order_by().values_list("channel", "type").distinct()
    channels = sorted({channel for channel, _ in rows if channel})
    types = sorted({kind for _, kind in rows})
    labels = dict(Event.Type.choices)
    return {"channels": channels, "types": [(kind, labels.get(kind, kind)) for kind in types]}


# --- the golden record, merges and notes ------------------------------------------------------------------------


def profile_lineage(*, profile: Profile) -> list[dict]:
    """Each trait's winning value with why it won (Profile.trait_sources) and every value seen for it
    (TraitValue: source, time, how often), the winner first, then the most recent."""
    seen: dict[str, list] = {}
    for row in TraitValue.objects.filter(profile=profile).order_by("name", "-observed_at", "-id"):
        seen.setdefault(row.name, []).append(row)
    sources = profile.trait_sources or {}
    lineage = []
    for name in sorted(set(profile.traits or {}) | set(seen), key=str):
        winner = (profile.traits or {}).get(name)
        why = sources.get(name) or {}
        values = []
        for row in seen.get(name, []):
            wins = row.value == winner and (not why.get("source") or row.source == why.get("source"))
            values.append({"value": row.value, "source": row.source, "observed_at": row.observed_at,
                           "first_observed_at": row.first_observed_at, "seen_count": row.seen_count,
                           "winner": wins})
        values.sort(key=lambda v: not v["winner"])
        lineage.append({"name": name, "value": winner, "present": name in (profile.traits or {}),
                        "source": why.get("source", ""), "observed_at": parse_datetime(why["observed_at"])
                        if isinstance(why.get("observed_at"), str) else why.get("observed_at"),
                        "strategy": why.get("strategy", ""), "why": why.get("why", ""), "values": values})
    return lineage


def profile_merges(*, profile: Profile):
    """The merge journal entries of this profile: merges it won and merges in which it was the loser."""
    return (Merge.objects.filter(Q(winner=profile) | Q(loser_id=profile.pk))
            .select_related("actor", "undone_by").order_by("-created_at", "-id"))


def profile_notes(*, profile: Profile):
    return Note.objects.filter(profile=profile).select_related("author").order_by("-created_at", "-id")
