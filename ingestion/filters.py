import django_filters

from ingestion.models import InboxMessage, Source


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
