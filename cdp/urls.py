from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from cdp.core import views as core_views

api_v1 = [
    # Activation first, for its personalization API: a request walks the includes in order, and each include it
    # passes costs a resolver walk over all of that include's routes.
    path("", include("activation.api.urls")),
    path("", include("cdp.core.api.urls")),
    path("", include("profiles.api.urls")),
    path("", include("consent.api.urls")),
    path("", include("ingestion.api.urls")),
    path("", include("segments.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", core_views.APIRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

urlpatterns = [
    # The Segment-compatible Tracking API first: its calls are by far the most frequent requests.
    path("v1/", include("ingestion.api.tracking_urls")),  # the Segment-compatible Tracking API
    path("", core_views.DashboardView.as_view(), name="dashboard"),
    path("dashboard/events-per-day/", core_views.EventsPerDayView.as_view(), name="events-per-day"),
    path("dashboard/counts/", core_views.DashboardCountsView.as_view(), name="dashboard-counts"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("audit/", core_views.AuditLogView.as_view(), name="audit-log"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("profiles/", include("profiles.urls")),
    path("consent/", include("consent.urls")),
    path("sources/", include("ingestion.urls")),
    path("segments/", include("segments.urls")),
    path("activation/", include("activation.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]

handler404 = "cdp.core.views.page_not_found"
handler500 = "cdp.core.views.server_error"
