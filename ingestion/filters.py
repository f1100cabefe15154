import django_filters

from ingestion.models import InboxMessage, PlanViolation, Source, SourceTransformation, TrackingPlan


class SourceFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name")

    class Meta:
        model = Source
        fields = ["q", "kind", "enabled"]


class InboxMessageFilter(django_filters.FilterSet):
    source = django_filters.CharFilter(field_name="source__slug")
    since = django_filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="gte")

    class Meta:
        model = InboxMessage
        fields = ["source", "status", "type", "message_id", "since"]


# --- tracking plans and transformations (helper "plans") ------------------------------------------------------------

class TrackingPlanFilter(django_filters.FilterSet):
    source = django_filters.CharFilter(field_name="source__slug")

    class Meta:
        model = TrackingPlan
        fields = ["source", "mode", "unplanned"]


class PlanViolationFilter(django_filters.FilterSet):
    source = django_filters.CharFilter(field_name="source__slug", label="Source")
    schema = django_filters.CharFilter(field_name="schema", label="Event or identify")
    path = django_filters.CharFilter(field_name="path", lookup_expr="icontains", label="Path contains")
    since = django_filters.IsoDateTimeFilter(field_name="last_seen", lookup_expr="gte", label="Seen since")
    min_count = django_filters.NumberFilter(field_name="count", lookup_expr="gte", label="At least")
    blocked = django_filters.BooleanFilter(method="filter_blocked", label="Blocked ones")
    ordering = django_filters.OrderingFilter(fields=("count", "last_seen", "first_seen", "schema", "path"))

    class Meta:
        model = PlanViolation
        fields = ["source", "schema", "path", "since", "min_count", "blocked"]

    def filter_blocked(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(blocked__gt=0) if value else queryset.filter(blocked=0)


class SourceTransformationFilter(django_filters.FilterSet):
    source = django_filters.CharFilter(field_name="source__slug")

    class Meta:
        model = SourceTransformation
        fields = ["source", "enabled"]
