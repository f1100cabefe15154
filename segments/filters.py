import django_filters

from segments.models import Membership, Segment


class SegmentFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name")

    class Meta:
        model = Segment
        fields = ["q", "kind"]


class MembershipFilter(django_filters.FilterSet):
    current = django_filters.BooleanFilter(field_name="exited_at", lookup_expr="isnull", label="Current members")

    class Meta:
        model = Membership
        fields = ["segment", "profile", "current"]
