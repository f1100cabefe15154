"""Reads for tracking plans, violations and transformations."""

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from ingestion.models import InboxMessage, PlanViolation, Source, SourceTransformation, TrackingPlan
from ingestion.services.plans import BLOCK_REASON_PREFIX


def sources_with_plans():
    """Every source with its plan's mode, its violation totals, its blocked messages and its transformation."""
    violations = (PlanViolation.objects.filter(source=OuterRef("pk")).values("source")
                  .annotate(total=Sum("count")).values("total"))
    blocked = (InboxMessage.objects.filter(source=OuterRef("pk"), status=InboxMessage.Status.REJECTED,
                                           reason__startswith=BLOCK_REASON_PREFIX)
               .values("source").annotate(n=Count("pk")).values("n"))
    return (Source.objects.select_related("tracking_plan", "transformation")
            .annotate(violation_total=Coalesce(Subquery(violations, output_field=IntegerField()), 0),
                      blocked_total=Coalesce(Subquery(blocked, output_field=IntegerField()), 0))
            .order_by("name"))


def plan_of(source) -> TrackingPlan | None:
    return TrackingPlan.objects.filter(source=source).first()


def transformation_of(source) -> SourceTransformation | None:
    return SourceTransformation.objects.filter(source=source).first()


def violations_of(source):
    return PlanViolation.objects.filter(source=source).order_by("-last_seen", "id")


def violation_totals(source) -> dict:
    return PlanViolation.objects.filter(source=source).aggregate(
        kinds=Count("pk"), total=Coalesce(Sum("count"), 0), blocked=Coalesce(Sum("blocked"), 0),
        schemas=Count("schema", distinct=True, filter=Q(count__gt=0)))


def latest_payload(source) -> dict | None:
    return (InboxMessage.objects.filter(source=source).order_by("-id").values_list("payload", flat=True).first())
