"""API for computed traits: CRUD (checked by profiles.services.computed, errors name the field), "recompute now"
and the distribution of a trait's values. Read with profiles.view_computedtrait; write with add/change/
delete_computedtrait (Marketing, Admin). Traits are addressed by their key, the name segment rules use."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from cdp.core.api.views import CDPModelViewSet
from profiles import selectors
from profiles.models import ComputedTrait
from profiles.services import computed


class FilterSerializer(serializers.Serializer):
    property = serializers.CharField(help_text="A property path (revenue, product.sku) or channel, name, type, "
                                               "source")
    op = serializers.CharField(help_text="equals, not_equals, gt, gte, lt, lte, contains, in")
    value = serializers.JSONField(help_text="Text, a number, true/false; a list for in")


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "RFM: the quintile boundaries of the last cut per measure (recency: four ISO "
                                     "times, frequency and monetary: four numbers), with customers (how many were "
                                     "cut) and cut_at."})
class BoundariesField(serializers.JSONField):
    pass


class ComputedTraitSerializer(serializers.ModelSerializer):
    """A computed trait. ``value_type`` follows from the definition; ``coverage`` is how many profiles have a
    value now."""

    aggregation = serializers.ChoiceField(choices=ComputedTrait.Aggregation.choices)
    event_names = serializers.ListField(child=serializers.CharField(max_length=200), required=False,
                                        help_text="Event names to aggregate; empty or missing: every event")
    filters = FilterSerializer(many=True, required=False, help_text="Property filters; all must hold")
    coverage = serializers.IntegerField(read_only=True)
    running = serializers.BooleanField(read_only=True)
    boundaries = BoundariesField(read_only=True)

    class Meta:
        model = ComputedTrait
        fields = ["id", "key", "name", "description", "aggregation", "event_names", "filters", "field", "field_type",
                  "as_days_since", "window_days", "window_start", "window_end", "rfm_part", "value_type", "enabled",
                  "stock", "coverage", "running", "run_started_at", "last_run_at", "last_run_rows",
                  "last_run_seconds", "boundaries", "created_at", "updated_at"]
        read_only_fields = ["id", "value_type", "stock", "run_started_at", "last_run_at", "last_run_rows",
                            "last_run_seconds", "created_at", "updated_at"]
        extra_kwargs = {"key": {"validators": []}}  # the service names a taken key, as it names the other fields

    def _save(self, function, **kwargs):
        try:
            return function(**kwargs)
        except computed.ComputedTraitInvalid as error:
            raise ValidationError(error.errors) from error

    def create(self, validated_data):
        trait = self._save(computed.computed_trait_create, **validated_data)
        return selectors.computed_traits_with_coverage().get(pk=trait.pk)

    def update(self, instance, validated_data):
        trait = self._save(computed.computed_trait_update, trait=instance, **validated_data)
        return selectors.computed_traits_with_coverage().get(pk=trait.pk)


class DistributionSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["histogram", "top"])
    total = serializers.IntegerField(help_text="Profiles with a value")
    labels = serializers.ListField(child=serializers.CharField(), required=False,
                                   help_text="histogram: the ranges of values (days since: in days)")
    counts = serializers.ListField(child=serializers.IntegerField(), required=False,
                                   help_text="histogram: profiles per range")
    rows = serializers.ListField(child=serializers.DictField(), required=False,
                                 help_text="top: {value, count}, the most frequent first")


class ComputedTraitViewSet(CDPModelViewSet):
    """Computed traits (measures over events), by key. Creating or changing a definition queues a full
    recompute; the values then appear on profiles (``computed`` of ``/api/v1/profiles/{id}/``)."""

    serializer_class = ComputedTraitSerializer
    queryset = ComputedTrait.objects.all()
    lookup_field = "key"
    lookup_value_regex = r"[a-z0-9][a-z0-9_\-]*"
    ordering_fields = ["name", "key", "id"]
    filterset_fields = ["enabled", "aggregation", "value_type", "stock"]

    def get_queryset(self):
        return selectors.computed_traits_with_coverage().order_by("name", "id")

    def perform_destroy(self, instance):
        computed.computed_trait_delete(trait=instance)

    @extend_schema(request=None, responses={202: OpenApiResponse(description="The recompute is queued")})
    @action(detail=True, methods=["post"], permission_required="profiles.change_computedtrait",
            filterset_fields=[], ordering_fields=[])
    def recompute(self, request, key=None):
        """Recompute this trait for every profile now (queued; ``running`` and ``last_run_*`` show progress)."""
        computed.computed_traits_recompute_enqueue(trait=get_object_or_404(ComputedTrait, key=key))
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=DistributionSerializer)
    @action(detail=True, methods=["get"], filterset_fields=[], ordering_fields=[],
            pagination_class=None)
    def distribution(self, request, key=None):
        """How the values are spread: a histogram for numbers, times and days since; the most frequent values
        for text."""
        trait = get_object_or_404(ComputedTrait, key=key)
        return Response(selectors.computed_trait_distribution(trait=trait))
