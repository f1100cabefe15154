"""API of tracking plans, their violations and the sources' transformations. Writes go through the services;
their errors come back as 400 naming the field ("events.Order Completed", "steps.2.bounds")."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from cdp.core.api.views import CDPModelViewSet, CDPReadOnlyViewSet
from ingestion.filters import PlanViolationFilter, SourceTransformationFilter, TrackingPlanFilter
from ingestion.models import PlanViolation, Source, SourceTransformation, TrackingPlan
from ingestion.services import plans as plan_services
from ingestion.services import transforms as transform_services

# --- serializers ---------------------------------------------------------------------------------------------------


class TrackingPlanSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="slug", queryset=Source.objects.all())
    events = serializers.JSONField(required=False, help_text='{"Order Completed": {JSON Schema of properties}}')
    identify_schema = serializers.JSONField(required=False, allow_null=True,
                                            help_text="JSON Schema of identify traits, or null")
    blocked_messages = serializers.SerializerMethodField()

    class Meta:
        model = TrackingPlan
        fields = ["id", "source", "mode", "unplanned", "events", "identify_schema", "version", "updated_at",
                  "blocked_messages"]
        read_only_fields = ["version", "updated_at"]

    def get_blocked_messages(self, plan) -> int:
        return plan_services.blocked_messages(plan.source).count()

    def validate_source(self, source):
        plan = self.instance
        if plan is not None and source.pk != plan.source_id:
            raise ValidationError("A plan stays with its source.")
        if plan is None and TrackingPlan.objects.filter(source=source).exists():
            raise ValidationError("This source has a plan already; change that one.")
        return source


class PlanViolationSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = PlanViolation
        fields = ["id", "source", "schema", "path", "message", "count", "blocked", "first_seen", "last_seen",
                  "examples"]


class ReplaySerializer(serializers.Serializer):
    message_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False,
                                        allow_empty=False, max_length=10000)
    event = serializers.CharField(required=False, max_length=200, help_text='A track event name, or "identify"')
    since = serializers.DateTimeField(required=False)


class SourceTransformationSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="slug", queryset=Source.objects.all())
    steps = serializers.JSONField(help_text="The ordered list of steps (see the transformations documentation)")

    class Meta:
        model = SourceTransformation
        fields = ["id", "source", "steps", "enabled", "version", "updated_at"]
        read_only_fields = ["version", "updated_at"]

    def validate_source(self, source):
        row = self.instance
        if row is not None and source.pk != row.source_id:
            raise ValidationError("Transformations stay with their source.")
        if row is None and SourceTransformation.objects.filter(source=source).exists():
            raise ValidationError("This source has transformations already; change those.")
        return source


class PreviewSerializer(serializers.Serializer):
    source = serializers.SlugRelatedField(slug_field="slug", queryset=Source.objects.all())
    steps = serializers.JSONField(required=False, help_text="Steps to try; the source's saved ones when left out")
    message = serializers.JSONField(help_text="A sample Segment message")


def _field_error(error) -> ValidationError:
    return ValidationError({error.field or "non_field_errors": [error.message]})


# --- views ---------------------------------------------------------------------------------------------------------


class TrackingPlanViewSet(CDPModelViewSet):
    """A tracking plan per source. Saving checks every schema (JSON Schema Draft 2020-12)."""

    queryset = TrackingPlan.objects.select_related("source")
    serializer_class = TrackingPlanSerializer
    filterset_class = TrackingPlanFilter

    def get_permission_required(self, request):
        if getattr(self, "action", None) == "replay":  # it changes inbox messages too
            return ("ingestion.change_trackingplan", "ingestion.change_inboxmessage")
        return super().get_permission_required(request)

    def _save(self, serializer):
        data = serializer.validated_data
        plan = serializer.instance
        source = data.get("source") or plan.source
        try:
            serializer.instance = plan_services.tracking_plan_save(
                source=source,
                mode=data.get("mode", plan.mode if plan else plan_services.FLAG),
                unplanned=data.get("unplanned", plan.unplanned if plan else plan_services.ALLOW),
                events=data.get("events", plan.events if plan else {}),
                identify_schema=data.get("identify_schema", plan.identify_schema if plan else None),
                actor=self.request.user)
        except plan_services.PlanError as error:
            raise _field_error(error) from None

    perform_create = _save
    perform_update = _save

    def perform_destroy(self, instance):
        plan_services.tracking_plan_delete(plan=instance, actor=self.request.user)

    @extend_schema(request=ReplaySerializer,
                   responses=inline_serializer("ReplayResult", {"replayed": serializers.IntegerField()}))
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        """Put messages this plan blocked back to pending (optionally by id, event or time) and process them
        against the plan as it is now."""
        plan = self.get_object()
        params = ReplaySerializer(data=request.data)
        params.is_valid(raise_exception=True)
        replayed = plan_services.blocked_messages_replay(source=plan.source, actor=request.user,
                                                         **params.validated_data)
        return Response({"replayed": replayed}, status=status.HTTP_200_OK)



class PlanViolationViewSet(CDPReadOnlyViewSet):
    """Violations of tracking plans, aggregated per (source, schema, path, message), with masked examples."""

    queryset = PlanViolation.objects.select_related("source")
    serializer_class = PlanViolationSerializer
    filterset_class = PlanViolationFilter


class SourceTransformationViewSet(CDPModelViewSet):
    """A source's declarative transformations, one ordered list of steps."""

    queryset = SourceTransformation.objects.select_related("source")
    serializer_class = SourceTransformationSerializer
    filterset_class = SourceTransformationFilter

    def get_permission_required(self, request):
        if getattr(self, "action", None) == "preview":
            return ("ingestion.view_sourcetransformation",)
        return super().get_permission_required(request)

    def _save(self, serializer):
        data = serializer.validated_data
        row = serializer.instance
        try:
            serializer.instance = transform_services.transformation_save(
                source=data.get("source") or row.source,
                steps=data.get("steps", row.steps if row else []),
                enabled=data.get("enabled", row.enabled if row else True),
                actor=self.request.user)
        except transform_services.TransformError as error:
            raise _field_error(error) from None

    perform_create = _save
    perform_update = _save

    def perform_destroy(self, instance):
        transform_services.transformation_delete(transformation=instance, actor=self.request.user)

    @extend_schema(request=PreviewSerializer,
                   responses=inline_serializer("TransformPreview", {"message": serializers.JSONField()}))
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """A sample message after the given steps (or the source's saved ones). Saves nothing."""
        params = PreviewSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        source = params.validated_data["source"]
        steps = params.validated_data.get("steps")
        if steps is None:
            saved = SourceTransformation.objects.filter(source=source).first()
            steps = saved.steps if saved else []
        try:
            message = transform_services.transforms_preview(source=source, steps=steps,
                                                            message=params.validated_data["message"])
        except transform_services.TransformError as error:
            raise _field_error(error) from None
        return Response({"message": message})
