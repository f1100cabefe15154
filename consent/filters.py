import django_filters

from consent.models import ConsentRecord, Purpose


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
