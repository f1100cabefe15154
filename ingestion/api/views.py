from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from cdp.core.api.views import CDPModelViewSet, CDPReadOnlyViewSet
from cdp.core.pagination import CursorPagination
from ingestion import selectors, services
from ingestion.api.serializers import (
    InboxMessageSerializer,
    SourceCreatedSerializer,
    SourceCreateSerializer,
    SourceSerializer,
    SourceStatsSerializer,
)
from ingestion.filters import InboxMessageFilter, SourceFilter
from ingestion.models import InboxMessage


class SourceViewSet(CDPModelViewSet):
    """Sources. Creating one answers with its write key, the only time it is shown; ``rotate-key`` replaces it.
    Kind and slug stay as created."""

    queryset = selectors.sources_with_stats()
    serializer_class = SourceSerializer
    filterset_class = SourceFilter
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return selectors.sources_with_stats()

    @extend_schema(request=SourceCreateSerializer, responses={201: SourceCreatedSerializer})
    def create(self, request, *args, **kwargs):
        incoming = SourceCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            source, write_key = services.source_create(**incoming.validated_data, actor=request.user, request=request)
        except ValueError as error:
            raise ValidationError({"name": [str(error)]}) from None
        source = self.get_queryset().get(pk=source.pk)
        source.write_key = write_key
        return Response(SourceCreatedSerializer(source, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        changes = {name: value for name, value in serializer.validated_data.items()}
        services.source_update(source=serializer.instance, actor=self.request.user, request=self.request, **changes)

    def perform_destroy(self, instance):
        services.source_delete(source=instance, actor=self.request.user, request=self.request)

    @extend_schema(responses=SourceStatsSerializer)
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        """Live stats: received today, pending, processed, rejected, and the last message's time."""
        return Response(SourceStatsSerializer(selectors.source_stats(source=self.get_object())).data)

    @extend_schema(request=None, responses=SourceCreatedSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request, pk=None):
        """A new write key, shown this once; the old one stops working."""
        source = self.get_object()
        write_key = services.source_key_rotate(source=source, actor=request.user, request=request)
        source = self.get_queryset().get(pk=source.pk)
        source.write_key = write_key
        return Response(SourceCreatedSerializer(source, context=self.get_serializer_context()).data)


class InboxMessageViewSet(CDPReadOnlyViewSet):
    """Inbound messages, newest first, filtered by source (slug), status, type, message_id and since."""

    queryset = InboxMessage.objects.select_related("source")
    serializer_class = InboxMessageSerializer
    filterset_class = InboxMessageFilter
    pagination_class = CursorPagination
