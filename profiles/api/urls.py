from rest_framework.routers import DefaultRouter

from profiles.api.views import IdentityViewSet, ProfileViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("profiles", ProfileViewSet, basename="profile")
router.register("identities", IdentityViewSet, basename="identity")

urlpatterns = router.urls

# Probabilistic matching: match rules and the review queue.
from profiles.api.matching import MatchCandidateViewSet, MatchRuleViewSet  # noqa: E402

router.register("match-rules", MatchRuleViewSet, basename="match-rule")
router.register("match-candidates", MatchCandidateViewSet, basename="match-candidate")
urlpatterns = router.urls
