import django_filters

from cdp.core.models import AuditEntry


class AuditEntryFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_name", lookup_expr="icontains", label="By")
    action = django_filters.ChoiceFilter(choices=AuditEntry.Action.choices)
    object_type = django_filters.CharFilter(lookup_expr="iexact", label="Object type")
    profile_id = django_filters.NumberFilter(label="Profile id")
    since = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte", label="From")
    until = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lte", label="Until")

    class Meta:
        model = AuditEntry
        fields = ["actor", "action", "object_type", "profile_id", "since", "until"]
