import django_filters
from django.db.models import Q

from profiles.models import Event, Identity, Profile


class ProfileFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    seen_since = django_filters.IsoDateTimeFilter(field_name="last_seen_at", lookup_expr="gte", label="Seen since")

    class Meta:
        model = Profile
        fields = ["q", "seen_since"]

    def search(self, queryset, name, value):
        """Any identifier, exactly as normalized, or a name or email in the traits."""
        value = value.strip()
        if not value:
            return queryset
        by_identity = Identity.objects.filter(value__iexact=value).values("profile_id")
        return queryset.filter(
            Q(pk__in=by_identity)
            | Q(traits__email__icontains=value)
            | Q(traits__first_name__icontains=value)
            | Q(traits__last_name__icontains=value)
        )


class IdentityFilter(django_filters.FilterSet):
    class Meta:
        model = Identity
        fields = ["type", "source", "profile"]


class EventFilter(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lte")

    class Meta:
        model = Event
        fields = ["type", "name", "channel", "source", "since", "until"]
