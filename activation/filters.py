import django_filters

from activation.models import Activation, Destination


class DestinationFilter(django_filters.FilterSet):
    class Meta:
        model = Destination
        fields = ["kind", "enabled"]


class ActivationFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name")

    class Meta:
        model = Activation
        fields = ["q", "segment", "destination", "schedule", "enabled"]
