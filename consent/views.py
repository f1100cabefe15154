from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views import View

from cdp.core import retention
from cdp.core.htmx import notify
from cdp.core.services import audit_record
from cdp.core.views import CDPPageView, CDPViewMixin, FilteredListView
from consent import selectors, services, tasks
from consent.filters import DataSubjectRequestFilter
from consent.forms import (
    ConsentDecisionForm,
    ReasonForm,
    RequestCreateForm,
    RequestNoteForm,
    RetentionPolicyForm,
    VerifyForm,
)
from consent.models import DataSubjectRequest, RetentionPolicy
from profiles.selectors import profile_resolve

HANDLE = "consent.handle_datasubjectrequest"


class PrivacyDashboardView(CDPPageView):
    template_name = "consent/dashboard.html"
    permission_required = "consent.view_purpose"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        handles = self.request.user.has_perm(HANDLE)
        context.update(
            purposes=selectors.purposes_with_rates(),
            rates=selectors.consent_rates_per_day(days=30),
            handles=handles,
            open_requests=selectors.requests_open()[:10] if handles else [],
            overdue=selectors.requests_overdue_count() if handles else 0,
            suppressed=selectors.suppressed_count(),
            suppression_hits=selectors.suppression_hits_total(),
            runs=selectors.retention_runs_recent(limit=5),
        )
        return context


# --- data-subject requests ---------------------------------------------------------------------------------------


class RequestListView(FilteredListView):
    template_name = "consent/request_list.html"
    filterset_class = DataSubjectRequestFilter
    permission_required = HANDLE


class RequestCreateView(CDPPageView):
    template_name = "consent/request_form.html"
    permission_required = HANDLE

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", RequestCreateForm())
        return context

    def post(self, request):
        form = RequestCreateForm(request.POST)
        if form.is_valid():
            try:
                created = services.request_create(actor=request.user, **{
                    **form.cleaned_data, "changes": form.cleaned_data["changes"] or {}})
            except services.RequestInvalid as error:
                form.add_error(error.field if error.field in form.fields else None, str(error))
            else:
                return notify(request, redirect("consent:request", pk=created.pk), f"Request #{created.pk} opened.")
        return self.render_to_response(self.get_context_data(form=form), status=400)


class RequestDetailView(CDPPageView):
    """A request with its trail and the actions its state allows. Showing it shows the subject's identifier and
    the verification note: each view is audited."""

    template_name = "consent/request_detail.html"
    permission_required = HANDLE

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        item = get_object_or_404(DataSubjectRequest.objects.prefetch_related("steps"), pk=self.kwargs["pk"])
        audit_record(actor=self.request.user, action="view", object_type="consent.datasubjectrequest",
                     object_id=item.pk, profile_id=item.profile_id, fields=["identifier", "verification_note"],
                     summary=f"Viewed data-subject request #{item.pk}", request=self.request)
        context.update(item=item, verify_form=VerifyForm(), reason_form=ReasonForm(), note_form=RequestNoteForm())
        return context


class RequestActionView(CDPViewMixin, View):
    """POST: one step of a request (verify, complete, reject, lift, note), then back to the request."""

    permission_required = HANDLE
    http_method_names = ["post"]
    ACTIONS = {
        "verify": (VerifyForm, services.request_verify, "Identity verified."),
        "complete": (None, services.request_complete, "Request carried out."),
        "reject": (ReasonForm, services.request_reject, "Request rejected."),
        "lift": (ReasonForm, services.request_lift, "Restriction lifted."),
        "note": (RequestNoteForm, services.request_note_add, "Note added."),
    }

    def post(self, request, pk, action):
        item = get_object_or_404(DataSubjectRequest, pk=pk)
        if action not in self.ACTIONS:
            return HttpResponse(status=404)
        form_class, call, message = self.ACTIONS[action]
        values = {}
        if form_class is not None:
            form = form_class(request.POST)
            if not form.is_valid():
                messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
                return redirect("consent:request", pk=pk)
            values = form.cleaned_data
        if action == "complete":
            values["http_request"] = request
        try:
            call(request=item, actor=request.user, **values)
        except services.RequestInvalid as error:
            messages.error(request, str(error))
            return redirect("consent:request", pk=pk)
        return notify(request, redirect("consent:request", pk=pk), message)


class RequestExportView(CDPViewMixin, View):
    """GET: the access export as a ZIP download (audited by the service)."""

    permission_required = HANDLE

    def get(self, request, pk):
        item = get_object_or_404(DataSubjectRequest, pk=pk)
        try:
            name, data = services.request_export(request=item, actor=request.user, http_request=request)
        except services.RequestInvalid as error:
            messages.error(request, str(error))
            return redirect("consent:request", pk=pk)
        response = HttpResponse(data, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


# --- consent on the profile page ---------------------------------------------------------------------------------


class ConsentDecisionView(CDPViewMixin, View):
    """POST from the 360° page's consent panel: record a decision. htmx gets a toast and ``profileChanged``, on
    which the panels reload with the new history."""

    permission_required = ("profiles.view_profile", "consent.add_consentrecord")
    http_method_names = ["post"]

    def post(self, request, profile_id):
        profile = profile_resolve(profile_id=profile_id)
        if profile is None:
            return HttpResponse(status=404)
        form = ConsentDecisionForm(request.POST)
        if not form.is_valid():
            text = "The decision was not recorded: " + " ".join(
                f"{name}: {e}" for name, errors in form.errors.items() for e in errors)
            if request.htmx:
                return notify(request, HttpResponse(status=400), text, level="error")
            messages.error(request, text)
            return redirect("profiles:detail", pk=profile.pk)
        data = form.cleaned_data
        proof = {"recorded_by": request.user.get_username()}
        if data["text_version"]:
            proof["text_version"] = data["text_version"]
        record = services.consent_record(profile=profile, purpose=data["purpose"], status=data["status"],
                                         source="agent", proof=proof)
        message = f"{record.purpose.name}: {record.get_status_display().lower()}."
        if request.htmx:
            return notify(request, HttpResponse(status=204), message, events={"profileChanged": {"id": profile.pk}})
        return notify(request, redirect("profiles:detail", pk=profile.pk), message)


# --- retention ---------------------------------------------------------------------------------------------------


class RetentionView(CDPPageView):
    template_name = "consent/retention.html"
    permission_required = {"read": "consent.view_retentionpolicy", "write": "consent.add_retentionpolicy"}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        labels = {h.category: h.label for h in retention.handlers()}
        context.setdefault("form", RetentionPolicyForm())
        context.update(policies=[(p, labels.get(p.category)) for p in RetentionPolicy.objects.all()],
                       categories=retention.handlers(), runs=selectors.retention_runs_recent(limit=20),
                       can_change=self.request.user.has_perm("consent.change_retentionpolicy"))
        return context

    def post(self, request):
        form = RetentionPolicyForm(request.POST)
        if form.is_valid():
            try:
                services.retention_policy_save(**form.cleaned_data)
            except services.PolicyInvalid as error:
                form.add_error(error.field, str(error))
            else:
                return notify(request, redirect("consent:retention"), "Retention policy saved.")
        return self.render_to_response(self.get_context_data(form=form), status=400)


class RetentionPolicyDeleteView(CDPViewMixin, View):
    permission_required = "consent.delete_retentionpolicy"
    http_method_names = ["post"]

    def post(self, request, pk):
        services.retention_policy_delete(policy=get_object_or_404(RetentionPolicy, pk=pk))
        return notify(request, redirect("consent:retention"), "Retention policy removed.")


class RetentionRunNowView(CDPViewMixin, View):
    permission_required = "consent.change_retentionpolicy"
    http_method_names = ["post"]

    def post(self, request):
        tasks.retention_run.delay(trigger="manual")
        return notify(request, redirect("consent:retention"), "Retention run started.")


class RetentionRunsView(CDPPageView):
    """The runs table alone (htmx polls it while a run is going)."""

    template_name = "consent/retention.html"
    permission_required = "consent.view_retentionrun"
    partial = "runs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["runs"] = selectors.retention_runs_recent(limit=20)
        return context

