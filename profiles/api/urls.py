from django.urls import path
from rest_framework.routers import DefaultRouter

from profiles.api.computed import ComputedTraitViewSet
from profiles.api.insights import InsightRunViewSet, ProfileInsightsView
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
router.register("insights/runs", InsightRunViewSet, basename="insight-run")
router.register("products", ProductViewSet, basename="product")

urlpatterns = [
    *router.urls,
    path("profiles/<int:pk>/insights/", ProfileInsightsView.as_view(), name="profile-insights"),
]
