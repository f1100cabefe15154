"""The segments API: CRUD with rule validation, members (ids or chosen traits), size and history, refresh,
"why is this profile a member", estimates of a tree, overlap, and the JSON Schema of the rule tree."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from cdp.core.api.views import CDPModelViewSet
from cdp.core.masking import can_view_pii
from cdp.core.services import audit_record
from profiles import selectors as profile_selectors
from segments import rules as rule_tree
from segments import selectors, services
from segments.api.serializers import (
    EstimateSerializer,
    ExplainSerializer,
    MemberSerializer,
    OverlapSerializer,
    RefreshSerializer,
    RulesSerializer,
    SegmentSerializer,
    SizeSerializer,
)
from segments.filters import SegmentFilter
from segments.models import Segment

MAX_MEMBER_FIELDS = 20


class SegmentViewSet(CDPModelViewSet):
    """Segments. Creating or changing rules checks the tree (a 400 names each wrong node as ``rules.<path>``) and
    recomputes the membership in the background."""

    queryset = selectors.segments_with_sizes()
    serializer_class = SegmentSerializer
    filterset_class = SegmentFilter
    ordering_fields = ["name", "size", "created_at"]

    def get_permission_required(self, request):
        # By HTTP method like every model view, except two POSTs: an estimate only reads, a refresh changes.
        if self.action == "estimate":
            return ("segments.view_segment",)
        if self.action == "refresh":
            return ("segments.change_segment",)
        return super().get_permission_required(request)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.segment_create(
            name=data["name"], rules=data.get("rules") or {}, kind=data.get("kind", Segment.Kind.DYNAMIC),
            description=data.get("description", ""), actor=self.request.user)

    def perform_update(self, serializer):
        fields = {k: v for k, v in serializer.validated_data.items() if k in ("name", "description", "kind", "rules")}
        serializer.instance = services.segment_update(segment=serializer.instance, actor=self.request.user, **fields)

    def perform_destroy(self, instance):
        try:
            services.segment_delete(segment=instance, actor=self.request.user)
        except rule_tree.RuleError as error:
            raise serializers.ValidationError(error.errors) from error

    @extend_schema(
        parameters=[OpenApiParameter("fields", str, description="Comma-separated trait names to include, masked "
                                                                "for roles without core.view_pii (at most 20)")],
        responses=MemberSerializer(many=True))
    @action(detail=True, methods=["get"])
    def members(self, request, pk=None):
        """The current members, newest first, paged: profile ids and entry times, or with chosen traits."""
        segment = self.get_object()
        fields = [f.strip() for f in request.query_params.get("fields", "").split(",") if f.strip()]
        if len(fields) > MAX_MEMBER_FIELDS:
            raise serializers.ValidationError({"fields": [f"At most {MAX_MEMBER_FIELDS} traits."]})
        memberships = selectors.segment_memberships(segment=segment)
        if fields:
            memberships = memberships.select_related("profile").only("profile_id", "entered_at", "profile__traits")
        page = self.paginate_queryset(memberships)
        for membership in page:
            if fields:
                traits = membership.profile.traits or {}
                membership.chosen_traits = {name: traits.get(name) for name in fields}
        if fields and can_view_pii(request.user):
            audit_record(actor=request.user, action="export", object_type="segments.Segment", object_id=segment.pk,
                         summary=f"{len(page)} members of {segment.name} with traits", fields=fields,
                         request=request)
        return self.get_paginated_response(
            MemberSerializer(page, many=True, context={**self.get_serializer_context(), "fields": fields}).data)

    @extend_schema(responses=SizeSerializer, parameters=[OpenApiParameter("days", int, description="History "
                                                                                                 "length (90)")])
    @action(detail=True, methods=["get"])
    def size(self, request, pk=None):
        """The current size and the daily history (size, entered, exited)."""
        segment = self.get_object()
        days = request.query_params.get("days", "90")
        if not days.isdigit() or not 1 <= int(days) <= 3650:
            raise serializers.ValidationError({"days": ["A whole number of days between 1 and 3650."]})
        history = selectors.segment_history(segment=segment, days=int(days))
        return Response(SizeSerializer({"size": segment.size, "last_refreshed_at": segment.last_refreshed_at,
                                        "history": history}).data)

    @extend_schema(request=None, responses=RefreshSerializer)
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        """Recompute the whole membership now (a static segment: take a new snapshot)."""
        return Response(services.segment_refresh(segment=self.get_object()))

    @extend_schema(parameters=[OpenApiParameter("profile", int, required=True)], responses=ExplainSerializer)
    @action(detail=True, methods=["get"])
    def why(self, request, pk=None):
        """Why a profile is (or is not) a member: each condition of the rules, matched or not, now."""
        segment = self.get_object()
        raw = request.query_params.get("profile", "")
        profile = profile_selectors.profile_resolve(profile_id=int(raw)) if raw.isdigit() else None
        if profile is None:
            raise serializers.ValidationError({"profile": ["No profile with this id."]})
        membership = selectors.membership_current(segment=segment, profile=profile)
        return Response(ExplainSerializer({
            "segment": segment.pk, "profile": profile.pk, "member": membership is not None,
            "entered_at": membership and membership.entered_at,
            "conditions": selectors.membership_explain(segment=segment, profile=profile)}).data)

    @extend_schema(request=RulesSerializer, responses=EstimateSerializer)
    @action(detail=False, methods=["post"])
    def estimate(self, request):
        """How many profiles a tree selects now, without saving it."""
        serializer = RulesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response({"size": selectors.segment_estimate(rules=serializer.validated_data["rules"])})

    @extend_schema(parameters=[OpenApiParameter("a", int, required=True), OpenApiParameter("b", int, required=True)],
                   responses=OverlapSerializer)
    @action(detail=False, methods=["get"])
    def overlap(self, request):
        """How many current members two segments share."""
        found = {}
        for name in ("a", "b"):
            raw = request.query_params.get(name, "")
            found[name] = get_object_or_404(Segment, pk=int(raw)) if raw.isdigit() else None
            if found[name] is None:
                raise serializers.ValidationError({name: ["A segment id."]})
        return Response(selectors.segments_overlap(a=found["a"], b=found["b"]))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"], url_path="rules-schema")
    def rules_schema(self, request):
        """The JSON Schema of a rule tree (names are checked against the data as well)."""
        return Response(rule_tree.RULES_SCHEMA)
