from django.urls import path

from consent import views

app_name = "consent"
urlpatterns = [
    path("", views.PrivacyDashboardView.as_view(), name="dashboard"),
    path("requests/", views.RequestListView.as_view(), name="requests"),
    path("requests/new/", views.RequestCreateView.as_view(), name="request_create"),
    path("requests/<int:pk>/", views.RequestDetailView.as_view(), name="request"),
    path("requests/<int:pk>/export/", views.RequestExportView.as_view(), name="request_export"),
    path("requests/<int:pk>/<slug:action>/", views.RequestActionView.as_view(), name="request_action"),
    path("profiles/<int:profile_id>/decide/", views.ConsentDecisionView.as_view(), name="decide"),
    path("retention/", views.RetentionView.as_view(), name="retention"),
    path("retention/runs/", views.RetentionRunsView.as_view(), name="retention_runs"),
    path("retention/run/", views.RetentionRunNowView.as_view(), name="retention_run"),
    path("retention/<int:pk>/delete/", views.RetentionPolicyDeleteView.as_view(), name="retention_delete"),
]
