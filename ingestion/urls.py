from django.urls import include, path

from ingestion import views

app_name = "ingestion"
urlpatterns = [
    path("", views.SourceListView.as_view(), name="source-list"),
    path("new/", views.SourceCreateView.as_view(), name="source-create"),
    # Tracking plans, violations and transformations (helper "plans"): before the source routes below, since
    # "plans/" would otherwise read as a source slug.
    path("", include("ingestion.urls_plans")),
    path("<slug:slug>/", views.SourceDetailView.as_view(), name="source-detail"),
    path("<slug:slug>/live/", views.SourceLiveView.as_view(), name="source-live"),
    path("<slug:slug>/switch/", views.SourceToggleView.as_view(), name="source-toggle"),
]

# File imports, database and webhook source settings (helper "connectors": ingestion/urls_connectors.py).
urlpatterns += [path("", include("ingestion.urls_connectors"))]
