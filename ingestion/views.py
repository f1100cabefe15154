"""The sources UI: the list, a create form that shows the write key once, and a source page with its live stats,
a live event debugger (htmx polling), the on/off switch, and slots for the source's violations and imports."""

import json

from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.cache import add_never_cache_headers
from django.views import View

from cdp.core.htmx import notify, render_page
from cdp.core.views import CDPPageView, CDPViewMixin, FilteredListView
from ingestion import selectors, services
from ingestion.filters import SourceFilter
from ingestion.forms import SourceCreateForm
from ingestion.models import InboxMessage, Source

DEBUGGER_SIZE = 25
DEBUGGER_POLL_SECONDS = 3
# Sections other parts of ingestion add to the source page, by template name (shown once the template exists).
SOURCE_PAGE_SLOTS = {
    "violations_slot": "ingestion/_source_violations.html",
    "imports_slot": "ingestion/_source_imports.html",
}


def _template_exists(name: str) -> bool:
    try:
        get_template(name)
    except TemplateDoesNotExist:
        return False
    return True


class SourceListView(FilteredListView):
    template_name = "ingestion/source_list.html"
    filterset_class = SourceFilter
    permission_required = "ingestion.view_source"

    def get_queryset(self):
        return selectors.sources_with_stats()


class SourceCreateView(CDPPageView):
    """GET: the form. POST: create the source and show its write key, this once (never cached)."""

    template_name = "ingestion/source_form.html"
    permission_required = "ingestion.add_source"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", SourceCreateForm())
        return context

    def post(self, request, *args, **kwargs):
        form = SourceCreateForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        try:
            source, write_key = services.source_create(
                name=form.cleaned_data["name"], kind=form.cleaned_data["kind"], slug=form.cleaned_data["slug"],
                channel=form.cleaned_data["channel"], actor=request.user, request=request)
        except ValueError as error:  # a concurrent create took the slug
            form.add_error(None, str(error))
            return self.render_to_response(self.get_context_data(form=form))
        response = render_page(request, "ingestion/source_created.html",
                               {"source": source, "write_key": write_key, "tracking_url": _tracking_url(request),
                                "tracking_host": request.build_absolute_uri("/").rstrip("/")})
        add_never_cache_headers(response)
        return response


def _tracking_url(request) -> str:
    return request.build_absolute_uri("/v1/")


class SourceDetailView(CDPPageView):
    """The source page. htmx polls its ``live`` partial (stats and the latest messages)."""

    template_name = "ingestion/source_detail.html"
    permission_required = ("ingestion.view_source", "ingestion.view_inboxmessage")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        source = get_object_or_404(Source, slug=self.kwargs["slug"])
        status = self.request.GET.get("status", "")
        message_type = self.request.GET.get("type", "")
        messages = selectors.source_messages_latest(source=source, status=status, message_type=message_type,
                                                    limit=DEBUGGER_SIZE)
        user = self.request.user
        for message in messages:
            message.shown_payload = json.dumps(selectors.payload_for(user, message.payload), indent=2,
                                               ensure_ascii=False, sort_keys=True)
        context.update(
            source=source,
            stats=selectors.source_stats(source=source),
            debugger=messages,
            status=status if status in InboxMessage.Status.values else "",
            message_type=message_type,
            statuses=InboxMessage.Status.choices,
            types=["identify", "track", "page", "screen", "group", "alias"],
            poll_seconds=DEBUGGER_POLL_SECONDS,
            can_change=user.has_perm("ingestion.change_source"),
            tracking_url=_tracking_url(self.request),
            **{flag: _template_exists(name) for flag, name in SOURCE_PAGE_SLOTS.items()},
        )
        return context


class SourceLiveView(SourceDetailView):
    """The live partial alone (htmx polling)."""

    partial = "live"


class SourceToggleView(CDPViewMixin, View):
    """POST: switch a source on or off. htmx gets the switch back, with a toast."""

    permission_required = "ingestion.change_source"
    http_method_names = ["post"]

    def post(self, request, slug):
        source = get_object_or_404(Source, slug=slug)
        enabled = request.POST.get("enabled")
        if enabled not in ("true", "false"):
            raise Http404("enabled must be true or false")
        services.source_enabled_set(source=source, enabled=enabled == "true", actor=request.user, request=request)
        if request.htmx:
            response = render_page(request, "ingestion/source_detail.html", {"source": source, "can_change": True},
                                   partial="toggle")
        else:
            response = redirect("ingestion:source-detail", slug=source.slug)
        message = f"{source.name} is {'on: it accepts messages' if source.enabled else 'off: its key answers 403'}."
        return notify(request, response, message, events={"sourceChanged": {"slug": source.slug}})
