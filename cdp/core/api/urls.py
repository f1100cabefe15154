from rest_framework.routers import DefaultRouter

from cdp.core.api.views import AuditEntryViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("audit-entries", AuditEntryViewSet, basename="auditentry")

urlpatterns = router.urls
