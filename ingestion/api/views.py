from cdp.core.api.views import CDPReadOnlyViewSet
from cdp.core.pagination import CursorPagination
from ingestion import selectors
from ingestion.api.serializers import InboxMessageSerializer, SourceSerializer
from ingestion.filters import InboxMessageFilter, SourceFilter
from ingestion.models import InboxMessage


class SourceViewSet(CDPReadOnlyViewSet):
    queryset = selectors.sources_with_stats()
    serializer_class = SourceSerializer
    filterset_class = SourceFilter


class InboxMessageViewSet(CDPReadOnlyViewSet):
    queryset = InboxMessage.objects.select_related("source")
    serializer_class = InboxMessageSerializer
    filterset_class = InboxMessageFilter
    pagination_class = CursorPagination
