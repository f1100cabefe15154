"""Routes of the connectors UI (file imports, database and webhook source settings), under /sources/."""

from django.urls import path

from ingestion import views_connectors, views_imports

urlpatterns = [
    path("<slug:slug>/imports/", views_imports.SourceImportsView.as_view(), name="source-imports"),
    path("<slug:slug>/imports/new/", views_imports.ImportUploadView.as_view(), name="import-upload"),
    path("<slug:slug>/imports/<int:pk>/", views_imports.ImportDetailView.as_view(), name="import-detail"),
    path("<slug:slug>/imports/<int:pk>/progress/", views_imports.ImportProgressView.as_view(),
         name="import-progress"),
    path("<slug:slug>/imports/<int:pk>/read/", views_imports.ImportReadOptionsView.as_view(), name="import-read"),
    path("<slug:slug>/imports/<int:pk>/mapping/", views_imports.ImportMappingView.as_view(), name="import-mapping"),
    path("<slug:slug>/imports/<int:pk>/start/", views_imports.ImportActionView.as_view(action="start"),
         name="import-start"),
    path("<slug:slug>/imports/<int:pk>/cancel/", views_imports.ImportActionView.as_view(action="cancel"),
         name="import-cancel"),
    path("<slug:slug>/imports/<int:pk>/delete/", views_imports.ImportDeleteView.as_view(), name="import-delete"),
    path("<slug:slug>/imports/<int:pk>/errors.csv", views_imports.ImportErrorReportView.as_view(),
         name="import-errors"),
    path("<slug:slug>/database/", views_connectors.DatabaseSettingsView.as_view(), name="database-settings"),
    path("<slug:slug>/database/test/", views_connectors.DatabaseProbeView.as_view(), name="database-test"),
    path("<slug:slug>/database/pull/", views_connectors.DatabasePullView.as_view(), name="database-pull"),
    path("<slug:slug>/database/reset/", views_connectors.DatabaseResetView.as_view(), name="database-reset"),
    path("<slug:slug>/webhook/", views_connectors.WebhookSettingsView.as_view(), name="webhook-settings"),
]
