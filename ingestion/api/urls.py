from rest_framework.routers import DefaultRouter

from ingestion.api.views import InboxMessageViewSet, SourceViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("sources", SourceViewSet, basename="source")
router.register("inbox-messages", InboxMessageViewSet, basename="inboxmessage")

urlpatterns = router.urls
