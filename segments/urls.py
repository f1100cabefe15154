from django.urls import path

from segments import views

app_name = "segments"
urlpatterns = [
    path("", views.SegmentListView.as_view(), name="list"),
    path("new/", views.SegmentCreateView.as_view(), name="create"),
    path("from-profiles/", views.QuickSegmentView.as_view(), name="quick"),
    path("builder/estimate/", views.EstimateView.as_view(), name="estimate"),
    path("builder/preview/", views.PreviewView.as_view(), name="preview"),
    path("builder/values/", views.ValueSuggestionsView.as_view(), name="values"),
    path("<int:pk>/", views.SegmentDetailView.as_view(), name="detail"),
    path("<int:pk>/edit/", views.SegmentEditView.as_view(), name="edit"),
    path("<int:pk>/refresh/", views.SegmentRefreshView.as_view(), name="refresh"),
    path("<int:pk>/delete/", views.SegmentDeleteView.as_view(), name="delete"),
    path("<int:pk>/overlap/", views.SegmentOverlapView.as_view(), name="overlap"),
    path("<int:pk>/why/", views.SegmentExplainView.as_view(), name="explain"),
]
