from datetime import date, datetime, time, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from profiles.filters import ProfileFilter
from profiles.models import Event, Profile


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


def profile_timeline(*, profile: Profile):
    return profile.events.order_by("-timestamp", "-id")
