"""Base views for the UI, and the platform's own pages: dashboard, audit log, health checks."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views import View, defaults
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularRedocView

from cdp.core import dashboard, selectors
from cdp.core.errors import json_error
from cdp.core.filters import AuditEntryFilter
from cdp.core.htmx import render_page
from cdp.core.models import AuditEntry
from cdp.core.permissions import PermissionMixin

UI_PAGE_SIZE = 50


class CDPViewMixin(PermissionMixin):
    """Every UI view: a login, then the permissions of ``permission_required``."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not self.has_permission(request):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class CDPPageView(CDPViewMixin, TemplateView):
    """A page with an optional partial that htmx requests get instead of the whole page."""

    partial: str | None = None

    def render_to_response(self, context, **response_kwargs):
        return render_page(self.request, self.template_name, context, partial=self.partial,
                           status=response_kwargs.get("status", 200))


class FilteredListView(CDPPageView):
    """A list with a FilterSet (the same one the API and the selectors use) and pages. htmx requests get the
    ``results`` partial, so the filter form can swap the table alone."""

    filterset_class = None
    partial = "results"
    page_size = UI_PAGE_SIZE

    def get_queryset(self):
        return self.filterset_class._meta.model.objects.all()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filterset = self.filterset_class(self.request.GET or None, queryset=self.get_queryset(), request=self.request)
        rows = filterset.qs if filterset.is_bound is False or filterset.is_valid() else filterset.qs.none()
        if not rows.ordered:
            # Aggregating querysets (counts per row) lose Meta.ordering; pages need a stable order.
            rows = rows.order_by(*(rows.model._meta.ordering or []), "pk")
        page = Paginator(rows, self.page_size).get_page(self.request.GET.get("page"))
        context.update(filterset=filterset, page=page, rows=page.object_list)
        return context


class DashboardView(CDPPageView):
    template_name = "core/dashboard.html"
    permission_required = ()  # any signed-in user; each metric carries its own permission

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["metrics"] = selectors.dashboard_metrics(self.request.user)
        context["series"] = selectors.dashboard_series(self.request.user, days=30)
        if self.partial is None:  # not for the live counts polled every few seconds
            context["distributions"] = dashboard.distributions_data(self.request.user)
        return context


class DashboardCountsView(DashboardView):
    """The live counts alone, polled by htmx."""

    partial = "counts"


class EventsPerDayView(CDPViewMixin, View):
    permission_required = ()

    def get(self, request):
        days = request.GET.get("days", "30")
        days = min(int(days), 365) if days.isdigit() and int(days) > 0 else 30
        return JsonResponse(selectors.dashboard_series(request.user, days=days))


class AuditLogView(FilteredListView):
    template_name = "core/audit_log.html"
    filterset_class = AuditEntryFilter
    permission_required = "core.view_auditentry"

    def get_queryset(self):
        return AuditEntry.objects.select_related("actor")


def healthz(request):
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Readiness: the database and the broker are reachable."""
    checks = {"database": selectors.database_ready(connections["default"]), "broker": selectors.broker_ready()}
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


# --- API docs and error pages ------------------------------------------------------------------------------------


@method_decorator(csp_update({"style-src": [UNSAFE_INLINE], "worker-src": ["blob:"]}), name="dispatch")
class APIRedocView(SpectacularRedocView):
    """ReDoc, served from drf-spectacular-sidecar's static files (templates/drf_spectacular/redoc.html has no
    CDN fonts). ReDoc styles itself with inline <style> elements and searches in a blob: web worker, so this page
    alone allows inline styles and blob: workers; inline scripts stay forbidden."""


def page_not_found(request, exception):
    """A 404 in the API's one JSON error format under /api/, the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return json_error(404, "not_found", "There is no API endpoint at this address.")
    return defaults.page_not_found(request, exception)


def server_error(request):
    """A 500 in the API's one JSON error format under /api/, the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return json_error(500, "server_error", "The server failed to answer; the error has been logged.")
    return defaults.server_error(request)
