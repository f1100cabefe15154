from cdp.core.api.views import CDPModelViewSet, CDPReadOnlyViewSet
from consent.api.serializers import ConsentRecordSerializer, PurposeSerializer
from consent.filters import ConsentRecordFilter, PurposeFilter
from consent.models import ConsentRecord, Purpose


class PurposeViewSet(CDPModelViewSet):
    queryset = Purpose.objects.all()
    serializer_class = PurposeSerializer
    filterset_class = PurposeFilter


class ConsentRecordViewSet(CDPReadOnlyViewSet):
    queryset = ConsentRecord.objects.select_related("purpose")
    serializer_class = ConsentRecordSerializer
    filterset_class = ConsentRecordFilter
