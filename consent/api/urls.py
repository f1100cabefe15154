from rest_framework.routers import DefaultRouter

from consent.api.views import ConsentRecordViewSet, PurposeViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("purposes", PurposeViewSet, basename="purpose")
router.register("consent-records", ConsentRecordViewSet, basename="consentrecord")

urlpatterns = router.urls
