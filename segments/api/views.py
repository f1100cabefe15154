from cdp.core.api.views import CDPModelViewSet
from segments import selectors
from segments.api.serializers import SegmentSerializer
from segments.filters import SegmentFilter


class SegmentViewSet(CDPModelViewSet):
    queryset = selectors.segments_with_sizes()
    serializer_class = SegmentSerializer
    filterset_class = SegmentFilter
