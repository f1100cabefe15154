import django_filters

from activation.models import Activation, Delivery, Destination, Offer, Sync


class DestinationFilter(django_filters.FilterSet):
    class Meta:
        model = Destination
        fields = ["kind", "enabled"]


class ActivationFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name")

    class Meta:
        model = Activation
        fields = ["q", "segment", "destination", "schedule", "enabled"]


class OfferFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name")

    class Meta:
        model = Offer
        fields = ["q", "segment", "purpose", "goal", "enabled"]


class SyncFilter(django_filters.FilterSet):
    class Meta:
        model = Sync
        fields = ["activation", "status", "trigger"]


class DeliveryFilter(django_filters.FilterSet):
    profile = django_filters.NumberFilter(field_name="items__profile", label="Profile id", distinct=True)

    class Meta:
        model = Delivery
        fields = ["destination", "activation", "sync", "status", "action", "profile"]
