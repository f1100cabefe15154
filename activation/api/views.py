"""The activation API: destinations (configuration checked per kind, secrets write-only, test), activations (with
``POST .../sync/``), syncs with their counts, and deliveries (with ``POST .../resend/`` for a dead letter)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from activation import selectors, services, tasks
from activation.api.serializers import (
    ActivationSerializer,
    DeliverySerializer,
    DestinationSerializer,
    SyncSerializer,
    SyncStartedSerializer,
)
from activation.destinations import ConfigInvalid
from activation.filters import ActivationFilter, DeliveryFilter, DestinationFilter, SyncFilter
from activation.models import Sync
from cdp.core.api.views import CDPModelViewSet, CDPReadOnlyViewSet

BAD_INPUT = OpenApiResponse(description="A field is wrong (named in error.fields, e.g. config.url or mapping.email)")


class DestinationViewSet(CDPModelViewSet):
    """Destinations. ``config`` is checked against the kind's fields; secrets are write-only and a secret the CDP
    makes (a webhook's signing secret) is in ``new_secrets`` of the answer that made it, and never again."""

    queryset = selectors.destinations_with_usage()
    serializer_class = DestinationSerializer
    filterset_class = DestinationFilter

    def get_permission_required(self, request):
        if self.action == "test":
            return ("activation.change_destination",)
        return super().get_permission_required(request)

    def _answer(self, saved, status_code):
        serializer = self.get_serializer(saved.destination, context={**self.get_serializer_context(),
                                                                     "new_secrets": saved.new_secrets})
        return Response(serializer.data, status=status_code)

    @extend_schema(responses={201: DestinationSerializer, 400: BAD_INPUT})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            saved = services.destination_create(name=data["name"], kind=data["kind"], config=data["config"],
                                                secrets=data.get("secrets"), enabled=data.get("enabled", True))
        except ConfigInvalid as error:
            raise serializers.ValidationError(error.errors) from error
        return self._answer(saved, status.HTTP_201_CREATED)

    @extend_schema(responses={200: DestinationSerializer, 400: BAD_INPUT})
    def update(self, request, *args, **kwargs):
        destination = self.get_object()
        serializer = self.get_serializer(destination, data=request.data, partial=kwargs.pop("partial", False))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            saved = services.destination_update(destination=destination, name=data.get("name"),
                                                config=data.get("config"), secrets=data.get("secrets"),
                                                enabled=data.get("enabled"))
        except ConfigInvalid as error:
            raise serializers.ValidationError(error.errors) from error
        return self._answer(saved, status.HTTP_200_OK)

    def perform_destroy(self, instance):
        if instance.activations.exists():
            raise serializers.ValidationError({"activations": ["Delete or move its activations first."]})
        services.destination_delete(destination=instance)

    @extend_schema(request=None, responses={200: DestinationSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Try the connection with a harmless request; the outcome is in last_test_ok and last_test_message."""
        destination = self.get_object()
        services.destination_test(destination=destination)
        return Response(self.get_serializer(destination).data)


class ActivationViewSet(CDPModelViewSet):
    """Activations: a segment (slug) to a destination for a consent purpose (key), with a field mapping and a
    schedule (realtime, hourly, daily, manual). A bad mapping or template is a 400 naming ``mapping.<name>`` or
    ``options.<name>``."""

    queryset = selectors.activations_with_status()
    serializer_class = ActivationSerializer
    filterset_class = ActivationFilter

    def get_permission_required(self, request):
        if self.action == "sync":
            return ("activation.change_activation",)
        return super().get_permission_required(request)

    def _saved(self, call, **kwargs):
        try:
            return call(**kwargs)
        except services.ActivationInvalid as error:
            raise serializers.ValidationError(error.errors) from error

    @extend_schema(responses={201: ActivationSerializer, 400: BAD_INPUT})
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.instance = self._saved(services.activation_create, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = self._saved(services.activation_update, activation=serializer.instance,
                                          **serializer.validated_data)

    def perform_destroy(self, instance):
        services.activation_delete(activation=instance)

    @extend_schema(request=None, responses={202: SyncStartedSerializer})
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        """Start a sync now (a task): the delta since the last good sync. Its counts appear in /api/v1/syncs/."""
        activation = get_object_or_404(self.get_queryset(), pk=pk)
        tasks.activation_sync.delay(activation.pk, Sync.Trigger.MANUAL, request.user.pk)
        return Response({"activation": activation.pk, "queued": True}, status=status.HTTP_202_ACCEPTED)


class SyncViewSet(CDPReadOnlyViewSet):
    """Syncs, newest first, with their counts: members, added, changed, removed, skipped without consent, sent,
    failed; and their progress (deliveries done of total)."""

    queryset = selectors.sync_list()
    serializer_class = SyncSerializer
    filterset_class = SyncFilter


class DeliveryViewSet(CDPReadOnlyViewSet):
    """Deliveries (batches to a destination), newest first; ``?status=dead`` lists the dead letters and
    ``?profile=<id>`` a profile's delivery log."""

    queryset = selectors.delivery_list()
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter

    def get_permission_required(self, request):
        if self.action == "resend":
            return ("activation.change_delivery",)
        return super().get_permission_required(request)

    @extend_schema(request=None, responses={202: DeliverySerializer, 400: BAD_INPUT})
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        """Send a dead letter again, with its idempotency key."""
        delivery = self.get_object()
        try:
            delivery = services.delivery_resend(delivery=delivery, actor=request.user)
        except services.NotResendable as error:
            raise serializers.ValidationError({"status": [str(error)]}) from error
        return Response(self.get_serializer(delivery).data, status=status.HTTP_202_ACCEPTED)
