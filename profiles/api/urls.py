from rest_framework.routers import DefaultRouter

from profiles.api.computed import ComputedTraitViewSet
from profiles.api.matching import MatchCandidateViewSet, MatchRuleViewSet
from profiles.api.views import IdentityViewSet, MergeViewSet, ProductViewSet, ProfileViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("profiles", ProfileViewSet, basename="profile")
router.register("identities", IdentityViewSet, basename="identity")
router.register("merges", MergeViewSet, basename="merge")
router.register("match-rules", MatchRuleViewSet, basename="match-rule")
router.register("match-candidates", MatchCandidateViewSet, basename="match-candidate")
router.register("computed-traits", ComputedTraitViewSet, basename="computed-trait")
router.register("products", ProductViewSet, basename="product")

urlpatterns = router.urls
