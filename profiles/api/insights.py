"""API for insights: the runs of the insight models (list, retrieve, and "run now" with POST) and one profile's
insights with their explanation. Reading follows profiles.view_computedvalue (the scores are computed trait
values); running a model needs profiles.add_insightmodel (Marketing, Admin)."""

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from cdp.core.api.views import CDPCreateListRetrieveViewSet, CDPGenericAPIView
from profiles import selectors
from profiles.insights.explain import profile_insights
from profiles.models import InsightModel
from profiles.services.insights import insight_run_enqueue

VIEW_PERMISSION = "profiles.view_computedvalue"
RUN_PERMISSION = "profiles.add_insightmodel"


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "Quality on the held-out, later period beside the naive baseline. churn: "
                                     "horizon_days, train_customers, test_customers, train_churn_rate, "
                                     "test_churn_rate, auc, baseline_auc, baseline; clv: evaluated, holdout_days, "
                                     "customers, actual_revenue_total, revenue and orders {mae, rmse, "
                                     "total_error_percent} with baseline_revenue and baseline_orders, baseline, "
                                     "reason; recommendations: hit_rate_at_k, precision_at_k, recall_at_k beside "
                                     "baseline_* (popularity)."})
class MetricsField(serializers.JSONField):
    pass


class InsightRunSerializer(serializers.ModelSerializer):
    """One run of an insight model: what was fitted, on how much data, how well it did, and when."""

    metrics = MetricsField(read_only=True)

    class Meta:
        model = InsightModel
        fields = ["id", "kind", "status", "method", "reason", "cutoff_at", "training_rows", "scored_rows", "metrics",
                  "params", "train_seconds", "score_seconds", "started_at", "finished_at"]
        read_only_fields = [name for name in fields if name != "kind"]  # POST names the kind to run


class InsightRunQueuedSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="The kind asked for")
    queued = serializers.BooleanField()
    run = InsightRunSerializer(allow_null=True, help_text=(
        "This request's run once it has started (running, or done already where tasks run in-process); null while "
        "it waits for a worker: list ?kind= to follow it"))


class InsightRunViewSet(CDPCreateListRetrieveViewSet):
    """The runs of the insight models (churn, clv, recommendations), newest first; ``?kind=churn``. The newest run
    of a kind that is trained (``ok``) or a heuristic standing in (``heuristic``) scores the profiles."""

    queryset = InsightModel.objects.all()
    serializer_class = InsightRunSerializer
    permission_required = {"read": VIEW_PERMISSION, "write": RUN_PERMISSION}
    filterset_fields = ["kind", "status"]
    ordering_fields = ["started_at", "id"]

    @extend_schema(request=InsightRunSerializer,
                   responses={202: InsightRunQueuedSerializer,
                              400: OpenApiResponse(description="An unknown kind (names the field)")})
    def create(self, request):
        """Train and score one kind of model now (queued; the run shows as ``running`` and then with its result)."""
        asked = InsightRunSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        kind = asked.validated_data["kind"]
        since = timezone.now()
        insight_run_enqueue(kind=kind)
        run = InsightModel.objects.filter(kind=kind, started_at__gte=since).order_by("started_at", "id").first()
        return Response({"kind": kind, "queued": True,
                         "run": InsightRunSerializer(run).data if run else None}, status=status.HTTP_202_ACCEPTED)


class ProfileInsightsView(CDPGenericAPIView):
    """GET /api/v1/profiles/{id}/insights/: one profile's insights with why (the same as ``insights`` of the
    profile). A merged profile's old id answers with the profile it was merged into."""

    permission_required = ("profiles.view_profile", VIEW_PERMISSION)
    pagination_class = None
    filter_backends = []

    @extend_schema(parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH)],
                   responses={200: OpenApiResponse(description=(
                       "{churn: {risk, level, factors: [{feature, value, effect, text, direction}], run}, clv: "
                       "{value, orders, detail: {repeat_order_days, weeks_first_to_last_order, "
                       "weeks_since_first_order, mean_order_value, probability_active, expected_order_value}, run}, "
                       "sentiment: {score}}; a part is null when the profile has no value")),
                              404: OpenApiResponse(description="No such profile")})
    def get(self, request, pk):
        profile = selectors.profile_resolve(profile_id=int(pk))
        if profile is None:
            raise Http404
        return Response({"profile": profile.pk, **profile_insights(profile=profile)})
