from rest_framework.routers import DefaultRouter

from consent.api.views import ConsentRecordViewSet, PrivacyRequestViewSet, PurposeViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("purposes", PurposeViewSet, basename="purpose")
router.register("consent-records", ConsentRecordViewSet, basename="consentrecord")
router.register("privacy-requests", PrivacyRequestViewSet, basename="privacyrequest")

urlpatterns = router.urls
