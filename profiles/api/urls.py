from rest_framework.routers import DefaultRouter

from profiles.api.views import IdentityViewSet, MergeViewSet, ProfileViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("profiles", ProfileViewSet, basename="profile")
router.register("identities", IdentityViewSet, basename="identity")
router.register("merges", MergeViewSet, basename="merge")

urlpatterns = router.urls
