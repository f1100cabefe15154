"""Base API views: every API view is a PermissionMixin (see cdp.core.permissions)."""

from rest_framework import generics, mixins, viewsets
from rest_framework.views import APIView

from cdp.core.api.serializers import AuditEntrySerializer
from cdp.core.filters import AuditEntryFilter
from cdp.core.models import AuditEntry
from cdp.core.permissions import PermissionMixin


class CDPAPIView(PermissionMixin, APIView):
    pass


class CDPGenericAPIView(PermissionMixin, generics.GenericAPIView):
    pass


class CDPModelViewSet(PermissionMixin, viewsets.ModelViewSet):
    pass


class CDPReadOnlyViewSet(PermissionMixin, viewsets.ReadOnlyModelViewSet):
    pass


class CDPCreateListRetrieveViewSet(PermissionMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    pass


class AuditEntryViewSet(CDPReadOnlyViewSet):
    """The audit log, newest first. Privacy and Admin only."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilter
    ordering_fields = ["at"]
