from django.urls import path

from profiles import views

app_name = "profiles"
urlpatterns = [
    path("", views.ProfileListView.as_view(), name="list"),
    path("<int:pk>/", views.ProfileDetailView.as_view(), name="detail"),
    path("<int:pk>/timeline/", views.ProfileTimelineView.as_view(), name="timeline"),
    path("<int:pk>/part/<slug:section>/", views.ProfileSectionView.as_view(), name="section"),
    path("<int:pk>/notes/", views.NoteCreateView.as_view(), name="note-add"),
    path("merges/<int:pk>/undo/", views.MergeUndoView.as_view(), name="merge-undo"),
]

# The review queue of probabilistic matching.
from profiles import views_review  # noqa: E402

urlpatterns += [
    path("review/", views_review.ReviewQueueView.as_view(), name="review"),
    path("review/<int:pk>/decide/", views_review.CandidateDecideView.as_view(), name="review-decide"),
]

# Computed traits (measures).
from profiles import views_computed  # noqa: E402

urlpatterns += [
    path("computed-traits/", views_computed.ComputedTraitListView.as_view(), name="computed-list"),
    path("computed-traits/new/", views_computed.ComputedTraitCreateView.as_view(), name="computed-create"),
    path("computed-traits/recompute/", views_computed.ComputedTraitRecomputeView.as_view(),
         name="computed-recompute-all"),
    path("computed-traits/<slug:key>/", views_computed.ComputedTraitDetailView.as_view(), name="computed-detail"),
    path("computed-traits/<slug:key>/edit/", views_computed.ComputedTraitEditView.as_view(), name="computed-edit"),
    path("computed-traits/<slug:key>/recompute/", views_computed.ComputedTraitRecomputeView.as_view(),
         name="computed-recompute"),
    path("computed-traits/<slug:key>/delete/", views_computed.ComputedTraitDeleteView.as_view(),
         name="computed-delete"),
]

# Insights: the models' runs, quality and "Run now".
from profiles import views_insights  # noqa: E402

urlpatterns += [
    path("insights/", views_insights.InsightsView.as_view(), name="insights"),
    path("insights/run/", views_insights.InsightRunView.as_view(), name="insights-run-all"),
    path("insights/run/<slug:kind>/", views_insights.InsightRunView.as_view(), name="insights-run"),
]
