from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from cdp.core.api.views import CDPCreateListRetrieveViewSet, CDPModelViewSet
from cdp.core.services import audit_record
from consent import services
from consent.api.serializers import (
    ConsentRecordCreateSerializer,
    ConsentRecordSerializer,
    PrivacyRequestCreateSerializer,
    PrivacyRequestSerializer,
    PurposeSerializer,
    ReasonSerializer,
    RequestNoteSerializer,
    RequestStepSerializer,
    VerifySerializer,
)
from consent.filters import ConsentRecordFilter, DataSubjectRequestFilter, PurposeFilter
from consent.models import ConsentRecord, DataSubjectRequest, Purpose
from profiles.selectors import profile_lookup, profile_resolve

HANDLE = "consent.handle_datasubjectrequest"


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


def _invalid(error: services.RequestInvalid) -> APIException:
    """A service's refusal as the API's error: input at fault -> 400 naming the field, state -> 409."""
    if error.field:
        return ValidationError({error.field: [str(error)]}, code=error.code)
    return Conflict(str(error), code=error.code)


class PurposeViewSet(CDPModelViewSet):
    queryset = Purpose.objects.all()
    serializer_class = PurposeSerializer
    filterset_class = PurposeFilter


class ConsentRecordViewSet(CDPCreateListRetrieveViewSet):
    """Consent decisions, newest first. Records are append-only: a new decision is a new record."""

    queryset = ConsentRecord.objects.select_related("purpose")
    serializer_class = ConsentRecordSerializer
    filterset_class = ConsentRecordFilter

    @extend_schema(request=ConsentRecordCreateSerializer,
                   responses={201: ConsentRecordSerializer,
                              400: OpenApiResponse(description="An unknown purpose, profile or identifier (names "
                                                               "the field); nothing is recorded")})
    def create(self, request, *args, **kwargs):
        """Record a decision for a profile, named by ``profile`` (id) or ``identifier`` ({type, value})."""
        data = ConsentRecordCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        purpose = Purpose.objects.filter(key=values["purpose"]).first()
        if purpose is None:
            raise ValidationError({"purpose": [f"There is no purpose with the key {values['purpose']!r}."]})
        if "profile" in values:
            profile = profile_resolve(profile_id=values["profile"])
            field = "profile"
        else:
            profile = profile_lookup(identity_type=values["identifier"]["type"], value=values["identifier"]["value"])
            field = "identifier.value"
        if profile is None:
            raise ValidationError({field: ["No person is known by this."]})
        record = services.consent_record(profile=profile, purpose=purpose, status=values["status"],
                                         source=values["source"] or "api", proof=values["proof"],
                                         at=values.get("recorded_at"))
        return Response(ConsentRecordSerializer(record).data, status=status.HTTP_201_CREATED)


class PrivacyRequestViewSet(CDPCreateListRetrieveViewSet):
    """Data-subject requests (GDPR Art. 15-21) for a ticketing system: open one by any identifier of the person,
    verify it, carry it out, download an access export. Every step is on the request's trail."""

    queryset = DataSubjectRequest.objects.prefetch_related("steps")
    serializer_class = PrivacyRequestSerializer
    filterset_class = DataSubjectRequestFilter
    permission_required = HANDLE
    ordering_fields = ["due_at", "received_at"]

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        audit_record(actor=request.user, action="view", object_type="consent.datasubjectrequest",
                     object_id=response.data["id"], profile_id=response.data["profile"],
                     fields=["identifier", "verification_note", "changes"], summary="Retrieved through the API",
                     request=request)
        return response

    @extend_schema(request=PrivacyRequestCreateSerializer,
                   responses={201: PrivacyRequestSerializer,
                              400: OpenApiResponse(description="Bad input, an unknown subject, or a subject already "
                                                               "erased (names the field); nothing is created")})
    def create(self, request, *args, **kwargs):
        data = PrivacyRequestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            created = services.request_create(actor=request.user, **data.validated_data)
        except services.RequestInvalid as error:
            raise _invalid(error) from error
        return Response(PrivacyRequestSerializer(created).data, status=status.HTTP_201_CREATED)

    def _act(self, request, pk, call, **kwargs):
        item = get_object_or_404(DataSubjectRequest, pk=pk)
        try:
            with transaction.atomic():
                item = call(request=item, actor=request.user, **kwargs)
        except services.RequestInvalid as error:
            raise _invalid(error) from error
        item = DataSubjectRequest.objects.prefetch_related("steps").get(pk=pk)
        return Response(PrivacyRequestSerializer(item).data)

    @extend_schema(request=VerifySerializer, responses={200: PrivacyRequestSerializer})
    @action(detail=True, methods=["post"], filterset_class=None, ordering_fields=[])
    def verify(self, request, pk=None):
        """Record how the requester's identity was verified."""
        data = VerifySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._act(request, pk, services.request_verify, **data.validated_data)

    @extend_schema(request=None, responses={200: PrivacyRequestSerializer,
                                            409: OpenApiResponse(description="Not verified, already closed, or "
                                                                             "the subject is gone")})
    @action(detail=True, methods=["post"], filterset_class=None, ordering_fields=[])
    def complete(self, request, pk=None):
        """Carry out the request: erase, rectify, restrict (or record an objection), or close an access request."""
        return self._act(request, pk, services.request_complete, http_request=request)

    @extend_schema(request=ReasonSerializer, responses={200: PrivacyRequestSerializer})
    @action(detail=True, methods=["post"], filterset_class=None, ordering_fields=[])
    def reject(self, request, pk=None):
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._act(request, pk, services.request_reject, **data.validated_data)

    @extend_schema(request=ReasonSerializer, responses={200: PrivacyRequestSerializer})
    @action(detail=True, methods=["post"], filterset_class=None, ordering_fields=[])
    def lift(self, request, pk=None):
        """End a restriction or objection in force."""
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._act(request, pk, services.request_lift, **data.validated_data)

    @extend_schema(request=RequestNoteSerializer, responses={201: RequestStepSerializer})
    @action(detail=True, methods=["post"], filterset_class=None, ordering_fields=[])
    def notes(self, request, pk=None):
        """Add a note to the request's trail."""
        item = get_object_or_404(DataSubjectRequest, pk=pk)
        data = RequestNoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            step = services.request_note_add(request=item, actor=request.user, **data.validated_data)
        except services.RequestInvalid as error:
            raise _invalid(error) from error
        return Response(RequestStepSerializer(step).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY,
                              409: OpenApiResponse(description="Not an access request, or not verified")})
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=[], pagination_class=None)
    def export(self, request, pk=None):
        """The access export: a ZIP of JSON files with everything held about the person. Each download is
        audited."""
        item = get_object_or_404(DataSubjectRequest, pk=pk)
        try:
            name, data = services.request_export(request=item, actor=request.user, http_request=request)
        except services.RequestInvalid as error:
            raise _invalid(error) from error
        response = HttpResponse(data, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
