from activation.api.serializers import ActivationSerializer, DestinationSerializer
from activation.filters import ActivationFilter, DestinationFilter
from activation.models import Activation, Destination
from cdp.core.api.views import CDPModelViewSet


class DestinationViewSet(CDPModelViewSet):
    queryset = Destination.objects.all()
    serializer_class = DestinationSerializer
    filterset_class = DestinationFilter


class ActivationViewSet(CDPModelViewSet):
    queryset = Activation.objects.all()
    serializer_class = ActivationSerializer
    filterset_class = ActivationFilter
