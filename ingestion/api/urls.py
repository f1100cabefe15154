from rest_framework.routers import DefaultRouter

from ingestion.api.views import InboxMessageViewSet, SourceViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("sources", SourceViewSet, basename="source")
router.register("inbox-messages", InboxMessageViewSet, basename="inboxmessage")

urlpatterns = router.urls

# Tracking plans, their violations and transformations (ingestion/api/plans.py).
from ingestion.api.plans import PlanViolationViewSet, SourceTransformationViewSet, TrackingPlanViewSet  # noqa: E402

router.register("tracking-plans", TrackingPlanViewSet, basename="trackingplan")
router.register("plan-violations", PlanViolationViewSet, basename="planviolation")
router.register("transformations", SourceTransformationViewSet, basename="sourcetransformation")
urlpatterns = router.urls

# File imports and database pulls (helper "connectors": ingestion/api/imports.py).
from ingestion.api.imports import ImportViewSet  # noqa: E402

router.register("imports", ImportViewSet, basename="import")
urlpatterns = router.urls
