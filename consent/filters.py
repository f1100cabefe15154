import django_filters

from consent.models import ConsentRecord, DataSubjectRequest, Purpose


class PurposeFilter(django_filters.FilterSet):
    class Meta:
        model = Purpose
        fields = ["legal_basis"]


class ConsentRecordFilter(django_filters.FilterSet):
    purpose = django_filters.CharFilter(field_name="purpose__key")
    since = django_filters.IsoDateTimeFilter(field_name="recorded_at", lookup_expr="gte")

    class Meta:
        model = ConsentRecord
        fields = ["profile", "purpose", "status", "source", "since"]


class DataSubjectRequestFilter(django_filters.FilterSet):
    open = django_filters.BooleanFilter(method="filter_open", label="Open")
    due_before = django_filters.IsoDateTimeFilter(field_name="due_at", lookup_expr="lt", label="Due before")

    class Meta:
        model = DataSubjectRequest
        fields = ["kind", "status", "open", "due_before", "reference"]

    def filter_open(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(status__in=DataSubjectRequest.OPEN) if value else \
            queryset.exclude(status__in=DataSubjectRequest.OPEN)
