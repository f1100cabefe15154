from rest_framework.routers import DefaultRouter

from profiles.api.views import IdentityViewSet, ProfileViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("profiles", ProfileViewSet, basename="profile")
router.register("identities", IdentityViewSet, basename="identity")

urlpatterns = router.urls
