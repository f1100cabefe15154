"""UI of tracking plans, their violations and the sources' transformations (thin views: forms, services,
selectors)."""

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.views import View

from cdp.core.htmx import notify, render_page
from cdp.core.masking import can_view_pii
from cdp.core.views import CDPPageView, CDPViewMixin
from ingestion import selectors_plans as selectors
from ingestion.filters import PlanViolationFilter
from ingestion.forms_plans import PreviewForm, TrackingPlanForm, TransformationForm, step_error_text
from ingestion.models import Source
from ingestion.services import plans as plan_services
from ingestion.services import transforms as transform_services

PLAN_READ = "ingestion.view_trackingplan"
PLAN_WRITE = ("ingestion.add_trackingplan", "ingestion.change_trackingplan")
REPLAY = ("ingestion.change_trackingplan", "ingestion.change_inboxmessage")
TRANSFORM_READ = "ingestion.view_sourcetransformation"
TRANSFORM_WRITE = ("ingestion.add_sourcetransformation", "ingestion.change_sourcetransformation")
VIOLATIONS_PAGE_SIZE = 25

# Shown in the preview when the user may not see real payloads, or the source has none yet. Labelled as an example.
EXAMPLE_MESSAGE = {
    "type": "identify",
    "userId": "example-user-1",
    "traits": {"email": "  Jan.van.der.Berg@Example.COM ", "phone": "0170 1234567", "first_name": " jan ",
               "last_name": "VAN DER BERG", "country": "Deutschland", "birthday": "1984-03-02",
               "postcode": "50667", "income": 52000},
}


class SourceMixin:
    """The source of the URL, looked up on first use (so after the login and permission checks)."""

    @cached_property
    def source(self) -> Source:
        return get_object_or_404(Source, slug=self.kwargs["slug"])


class PlanIndexView(CDPPageView):
    """Every source with its tracking plan and transformations."""

    template_name = "ingestion/plan_index.html"
    permission_required = PLAN_READ

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "sources": selectors.sources_with_plans()}


class TrackingPlanView(SourceMixin, CDPPageView):
    """The plan editor: modes and schemas, with the source's violations below."""

    template_name = "ingestion/plan_edit.html"
    partial = "editor"
    permission_required = {"read": PLAN_READ, "write": PLAN_WRITE}

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        plan = selectors.plan_of(self.source)
        if form is None:
            initial = ({"mode": plan.mode, "unplanned": plan.unplanned, "events": plan.events,
                        "identify_schema": plan.identify_schema} if plan
                       else {"mode": "flag", "unplanned": "allow", "events": {}, "identify_schema": None})
            form = TrackingPlanForm(initial=initial)
        user = self.request.user
        context.update(source=self.source, plan=plan, form=form, can_edit=user.has_perms(PLAN_WRITE),
                       can_replay=user.has_perms(REPLAY),
                       blocked_count=plan_services.blocked_messages(self.source).count(),
                       totals=selectors.violation_totals(self.source),
                       event_rows=_event_rows(plan))
        return context

    def post(self, request, *args, **kwargs):
        form = TrackingPlanForm(request.POST)
        if form.is_valid():
            try:
                plan = plan_services.tracking_plan_save(source=self.source, actor=request.user, **form.cleaned_data)
            except plan_services.PlanError as error:
                form.add_service_error(error)
            else:
                text = f"Tracking plan saved (version {plan.version})."
                if not request.htmx:
                    messages.success(request, text)
                    return redirect("ingestion:plan-edit", slug=self.source.slug)
                response = self.render_to_response(self.get_context_data())
                return notify(request, response, text, events={"plan-saved": True})
        return self.render_to_response(self.get_context_data(form=form))


def _event_rows(plan) -> list[dict]:
    """A readable summary of each planned event: its required and known properties."""
    rows = []
    if plan is None:
        return rows
    schemas = [(name, schema) for name, schema in sorted((plan.events or {}).items())]
    if plan.identify_schema:
        schemas.append(("identify", plan.identify_schema))
    for name, schema in schemas:
        properties = schema.get("properties") if isinstance(schema, dict) else None
        properties = properties if isinstance(properties, dict) else {}
        required = schema.get("required") if isinstance(schema, dict) else None
        rows.append({"name": name, "required": required if isinstance(required, list) else [],
                     "properties": [{"name": key, "type": (value or {}).get("type", "any")
                                     if isinstance(value, dict) else "any"} for key, value in properties.items()]})
    return rows


class SourceViolationFilter(PlanViolationFilter):
    """The violations filter on a source's own page: the source is given by the URL."""

    source = None

    class Meta(PlanViolationFilter.Meta):
        fields = [name for name in PlanViolationFilter.Meta.fields if name != "source"]


class ViolationsView(SourceMixin, CDPPageView):
    """The source's violations with counts and masked examples. An htmx request gets the list alone (for the
    source page's card and the plan editor)."""

    template_name = "ingestion/plan_violations.html"
    partial = "violations"
    permission_required = "ingestion.view_planviolation"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filterset = SourceViolationFilter(self.request.GET or None, queryset=selectors.violations_of(self.source),
                                        request=self.request)
        rows = filterset.qs if not filterset.is_bound or filterset.is_valid() else filterset.qs.none()
        page = Paginator(rows, VIOLATIONS_PAGE_SIZE).get_page(self.request.GET.get("page"))
        for row in page.object_list:
            row.examples_json = [
                {**example, "json": json.dumps(example.get("message"), indent=2, ensure_ascii=False)}
                for example in row.examples or []]
        user = self.request.user
        context.update(source=self.source, filterset=filterset, page=page, rows=page.object_list,
                       totals=selectors.violation_totals(self.source),
                       blocked_count=plan_services.blocked_messages(self.source).count(),
                       can_replay=user.has_perms(REPLAY), compact=self.request.GET.get("compact") == "1")
        return context


class ReplayView(SourceMixin, CDPViewMixin, View):
    """Replay the source's blocked messages (all, or of one event) against the plan as it is now."""

    permission_required = REPLAY

    def post(self, request, *args, **kwargs):
        event = (request.POST.get("event") or "").strip()[:200] or None
        replayed = plan_services.blocked_messages_replay(source=self.source, event=event, actor=request.user)
        text = (f"{replayed} blocked message{'s' if replayed != 1 else ''} replayed; they are checked against the "
                f"plan as it is now." if replayed else "No blocked messages to replay.")
        if not request.htmx:
            messages.success(request, text)
            return redirect(request.POST.get("next") if _safe_next(request) else
                            reverse("ingestion:plan-edit", kwargs={"slug": self.source.slug}))
        response = render_page(request, "ingestion/plan_violations.html",
                               {"source": self.source, "replayed": replayed, "text": text}, partial="replayed")
        return notify(request, response, text, events={"violations-changed": True})


def _safe_next(request) -> bool:
    target = request.POST.get("next") or ""
    return target.startswith("/") and not target.startswith("//")


class TransformationView(SourceMixin, CDPPageView):
    """The transformation editor, with a live preview of a sample message."""

    template_name = "ingestion/transform_edit.html"
    partial = "editor"
    permission_required = {"read": TRANSFORM_READ, "write": TRANSFORM_WRITE}

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        transformation = selectors.transformation_of(self.source)
        if form is None:
            form = TransformationForm(initial={
                "steps": transformation.steps if transformation else [],
                "enabled": transformation.enabled if transformation else True})
        sample, sample_is_real = EXAMPLE_MESSAGE, False
        if can_view_pii(self.request.user):
            latest = selectors.latest_payload(self.source)
            if isinstance(latest, dict):
                sample, sample_is_real = latest, True
        context.update(source=self.source, transformation=transformation, form=form,
                       can_edit=self.request.user.has_perms(TRANSFORM_WRITE),
                       ops=[{"op": op, "doc": doc, "keys": sorted(transform_services.STEP_KEYS[op])}
                            for op, doc in transform_services.STEP_DOCS.items()],
                       derive_fns=transform_services.DERIVE_FNS,
                       default_region=(self.source.settings or {}).get("default_region") or "",
                       preview_form=PreviewForm(initial={"message": sample}),
                       sample_is_real=sample_is_real)
        return context

    def post(self, request, *args, **kwargs):
        form = TransformationForm(request.POST)
        if form.is_valid():
            try:
                row = transform_services.transformation_save(source=self.source, actor=request.user,
                                                             **form.cleaned_data)
            except transform_services.TransformError as error:
                form.add_service_error(error)
            else:
                text = f"Transformations saved (version {row.version}, {len(row.steps)} step(s))."
                if not request.htmx:
                    messages.success(request, text)
                    return redirect("ingestion:transform-edit", slug=self.source.slug)
                return notify(request, self.render_to_response(self.get_context_data()), text)
        return self.render_to_response(self.get_context_data(form=form))


class TransformPreviewView(SourceMixin, CDPViewMixin, View):
    """The sample message after the steps in the editor (saved or not). Saves nothing."""

    permission_required = TRANSFORM_READ

    def post(self, request, *args, **kwargs):
        form = PreviewForm(request.POST)
        context = {"source": self.source, "preview_form": form}
        if form.is_valid():
            steps = form.cleaned_data.get("steps")
            if steps is None:
                saved = selectors.transformation_of(self.source)
                steps = saved.steps if saved else []
            try:
                result = transform_services.transforms_preview(source=self.source, steps=steps,
                                                               message=form.cleaned_data["message"])
            except transform_services.TransformError as error:
                context["error"] = step_error_text(error)
            else:
                cdp = (result.get("context") or {}).get("cdp") or {}
                context.update(result_json=json.dumps(result, indent=2, ensure_ascii=False),
                               changes=_changes(form.cleaned_data["message"], result),
                               invalid=[{"path": path, "reason": (cdp.get("invalid_reasons") or {}).get(path, "")}
                                        for path in cdp.get("invalid") or []])
        # Errors are shown in the preview (200: htmx swaps it).
        return render_page(request, "ingestion/transform_edit.html", context, partial="preview")


def _flatten(value, prefix="") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _changes(before: dict, after: dict) -> list[dict]:
    """What the steps changed, field by field (the cdp flags aside)."""
    old, new = _flatten(before), _flatten(after)
    rows = []
    for path in list(old) + [p for p in new if p not in old]:
        if path.startswith("context.cdp."):
            continue
        if old.get(path, "∅") != new.get(path, "∅"):
            rows.append({"path": path, "before": json.dumps(old[path], ensure_ascii=False) if path in old else "",
                         "after": json.dumps(new[path], ensure_ascii=False) if path in new else "",
                         "kind": "added" if path not in old else "removed" if path not in new else "changed"})
    return rows
