"""The segments UI: the list, the builder (create and edit), the segment page (definition, size over time,
members, overlap, why a profile is a member), and the quick segment from a filtered profile list.

The builder keeps the rule tree in the form (segments.forms): every change posts the form with htmx and gets the
builder back, re-rendered with the errors at the nodes they belong to; without JavaScript the same POST renders
the whole page. Views are thin: segments.rules validates, selectors read, services write.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.http import urlencode
from django.views import View
from django_htmx.http import HttpResponseClientRedirect

from cdp.core import profile_panels
from cdp.core.htmx import render_page
from cdp.core.services import audit_record
from cdp.core.views import UI_PAGE_SIZE, CDPPageView, CDPViewMixin, FilteredListView
from profiles.filters import ProfileFilter
from profiles.models import Profile
from segments import catalog, selectors, services
from segments.filters import SegmentFilter
from segments.forms import (
    BuilderChoices,
    ExplainForm,
    OverlapForm,
    QuickSegmentForm,
    SegmentForm,
    action_verb,
    builder_nodes,
    empty_rules,
    rules_action,
    rules_from_data,
)
from segments.models import Segment
from segments.rules import RuleError, rules_describe, rules_validate

PREVIEW_LIMIT = 100
HISTORY_DAYS = 90
VALUE_SUGGESTIONS = 20


class SegmentListView(FilteredListView):
    template_name = "segments/segment_list.html"
    filterset_class = SegmentFilter
    permission_required = "segments.view_segment"

    def get_queryset(self):
        return selectors.segments_with_sizes()


def _redirect(request, url: str):
    """After a write: htmx loads the page whole (HX-Redirect), a plain POST is redirected."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _rule_errors(rules: dict, segment: Segment | None) -> dict[str, list[str]]:
    try:
        rules_validate(rules, segment_id=segment.pk if segment else None)
    except RuleError as error:
        return error.errors
    return {}


# --- the builder --------------------------------------------------------------------------------------------------


class SegmentCreateView(CDPPageView):
    """The builder. GET shows it; POST applies the button that was pressed (add or remove a condition, a group or
    a property filter; save; preview) to the tree the form holds. A POST without a button (htmx, on every change)
    renders the builder again with the errors of the tree as it stands, each at its node."""

    template_name = "segments/segment_form.html"
    partial = "builder"
    permission_required = "segments.add_segment"
    segment: Segment | None = None

    def get(self, request, *args, **kwargs):
        self.segment = self._segment()
        if self.segment is None:
            form = SegmentForm()
            rules = empty_rules()
        else:
            form = SegmentForm(editing=True, initial={"name": self.segment.name,
                                                      "description": self.segment.description})
            rules = self.segment.rules if self.segment.rules.get("type") else empty_rules()
        return self.render_to_response(self.builder_context(form=form, rules=rules))

    def post(self, request, *args, **kwargs):
        self.segment = self._segment()
        editing = self.segment is not None
        choices = BuilderChoices(segment=self.segment)
        action = request.POST.get("action", "")
        verb = action_verb(action)
        rules = rules_action(rules_from_data(request.POST, choices=choices), action)
        errors = _rule_errors(rules, self.segment)
        if verb == "save":
            form = SegmentForm(request.POST, editing=editing)
            if form.is_valid() and not errors:
                try:
                    segment = self._save(form.cleaned_data, rules)
                except RuleError as error:  # the data changed between the check and the save
                    errors = error.errors
                else:
                    messages.success(request, f"Segment “{segment.name}” saved.")
                    return _redirect(request, reverse("segments:detail", args=[segment.pk]))
        else:
            form = SegmentForm(editing=editing, initial={key: request.POST.get(key, "")
                                                         for key in ("name", "description", "kind")})
        context = self.builder_context(form=form, rules=rules, errors=errors, choices=choices,
                                       saving=verb == "save", checked=bool(request.POST.get("checked")))
        if not request.htmx and not errors:
            # Without JavaScript the page counts (and previews) on each submit; htmx loads these by themselves.
            context["estimate"] = selectors.segment_estimate(rules=rules)
            if verb == "preview":
                context["preview"] = selectors.segment_preview(rules=rules, limit=PREVIEW_LIMIT)
        return self.render_to_response(context)

    def _segment(self) -> Segment | None:
        return None

    def _save(self, data: dict, rules: dict) -> Segment:
        if self.segment is None:
            return services.segment_create(name=data["name"], description=data["description"], kind=data["kind"],
                                           rules=rules, actor=self.request.user)
        services.segment_update(segment=self.segment, actor=self.request.user, name=data["name"],
                                description=data["description"], rules=rules)
        self.segment.refresh_from_db()
        return self.segment

    def builder_context(self, *, form, rules, errors=None, choices=None, saving: bool = False,
                        checked: bool = False) -> dict:
        """``checked``: saving was tried before; from then on what is missing shows too, until the segment is
        saved."""
        choices = choices or BuilderChoices(segment=self.segment)
        checked = checked or saving
        return {"segment": self.segment, "form": form, "rules": rules, "saving": saving, "checked": checked,
                "tree": builder_nodes(rules, choices=choices, errors=errors, show_missing=checked),
                "rule_errors": errors or {}, "preview_limit": PREVIEW_LIMIT}


class SegmentEditView(SegmentCreateView):
    permission_required = "segments.change_segment"

    def _segment(self) -> Segment:
        return get_object_or_404(Segment, pk=self.kwargs["pk"])


class RulesPartialView(CDPViewMixin, View):
    """The size estimate and the preview of the tree a builder form holds (htmx, POST, no write)."""

    permission_required = ("segments.view_segment",)
    template = "segments/segment_form.html"

    def post(self, request, *args, **kwargs):
        segment = None
        if request.POST.get("segment", "").isdigit():
            segment = Segment.objects.filter(pk=request.POST["segment"]).first()
        choices = BuilderChoices(segment=segment)
        rules = rules_from_data(request.POST, choices=choices)
        errors = _rule_errors(rules, segment)
        return render_page(request, self.template, self.context(rules, errors, choices), partial=self.partial)


class EstimateView(RulesPartialView):
    """The count, and the errors of every node and field as they stand (htmx swaps them in out of band, so the
    inputs being typed in stay as they are)."""

    partial = "estimate"

    def context(self, rules, errors, choices) -> dict:
        tree = builder_nodes(rules, choices=choices, errors=errors, show_missing=bool(self.request.POST.get("checked")))
        return {"rule_errors": errors, "estimate": None if errors else selectors.segment_estimate(rules=rules),
                "error_places": tree["places"]}


class PreviewView(RulesPartialView):
    partial = "preview"

    def context(self, rules, errors, choices) -> dict:
        preview = None if errors else selectors.segment_preview(rules=rules, limit=PREVIEW_LIMIT)
        return {"rule_errors": errors, "preview": preview, "preview_limit": PREVIEW_LIMIT}


class ValueSuggestionsView(CDPViewMixin, View):
    """The <option>s of a value input's <datalist>: common values of a trait, computed trait or event property
    (``kind``, ``name``), containing what was typed so far (the input named by ``field``)."""

    permission_required = ("segments.view_segment",)

    def get(self, request, *args, **kwargs):
        kind, name = request.GET.get("kind", ""), request.GET.get("name", "")
        if kind not in ("trait", "computed", "event_property") or not name:
            raise Http404("no such catalog")
        typed = request.GET.get(request.GET.get("field", ""), "")
        if "," in typed:  # a list of values: suggest for the one being typed
            typed = typed.rsplit(",", 1)[1]
        values = catalog.catalog_values(kind=kind, name=name, q=typed.strip(), limit=VALUE_SUGGESTIONS)
        return HttpResponse(format_html_join("", '<option value="{}"></option>', ((value,) for value in values)))


# --- the segment page ---------------------------------------------------------------------------------------------


def _definition(rules: dict, depth: int = 0) -> list[dict]:
    """The tree in words, one line per node in tree order, for the segment page."""
    if not rules or not rules.get("type"):
        return []
    lines = [{"depth": depth, "text": rules_describe(rules), "group": rules["type"] == "group"}]
    for child in rules.get("children", []) if rules["type"] == "group" else []:
        lines += _definition(child, depth + 1)
    return lines


def _history_chart(segment: Segment) -> dict:
    """The size per day as the chart component draws it (days without a recorded size are left out, not
    invented)."""
    history = selectors.segment_size_history(segment=segment, days=HISTORY_DAYS)
    return {"labels": [day.isoformat() for day, _ in history],
            "series": [{"key": "size", "label": "Members", "values": [size for _, size in history]}]}


def _overlap_context(segment: Segment, data) -> dict:
    """The overlap form, and when it names another segment: the three counts and the bar's parts."""
    form = OverlapForm(data if data.get("other") else None, segment=segment)
    context = {"overlap_form": form}
    if form.is_bound and form.is_valid():
        other = form.cleaned_data["other"]
        overlap = selectors.segments_overlap(a=segment, b=other)
        total = sum(overlap.values())
        bars, offset = [], 0.0
        for key, label in (("a_only", f"Only in {segment.name}"), ("both", "In both"),
                           ("b_only", f"Only in {other.name}")):
            width = 100.0 * overlap[key] / total if total else 0.0
            bars.append({"key": key, "label": label, "count": overlap[key], "x": f"{offset:.2f}%",
                         "width": f"{width:.2f}%"})
            offset += width
        context.update(other=other, overlap=overlap, overlap_bars=bars)
    return context


class SegmentDetailView(CDPPageView):
    """The segment page. htmx requests for other member pages get the ``results`` partial (the members table)."""

    template_name = "segments/segment_detail.html"
    partial = "results"
    permission_required = "segments.view_segment"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        segment = get_object_or_404(Segment, pk=kwargs["pk"])
        members = selectors.segment_members(segment=segment)
        history = _history_chart(segment)
        page = Paginator(members, UI_PAGE_SIZE).get_page(self.request.GET.get("page"))
        context.update(segment=segment, page=page, rows=page.object_list, definition=_definition(segment.rules),
                       history=history, history_kind="line" if len(history["labels"]) > 2 else "bar",
                       history_days=HISTORY_DAYS, explain_form=ExplainForm(),
                       explain_url=reverse("segments:explain", args=[segment.pk]),
                       **_overlap_context(segment, self.request.GET))
        return context


class SegmentOverlapView(CDPPageView):
    """The overlap of this segment with another (GET ?other=<pk>) for htmx; a plain request gets the segment page,
    which shows it too."""

    template_name = "segments/segment_detail.html"
    partial = "overlap"
    permission_required = "segments.view_segment"

    def get(self, request, *args, **kwargs):
        if not request.htmx:
            return redirect(reverse("segments:detail", args=[kwargs["pk"]]) + "?" + request.GET.urlencode())
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        segment = get_object_or_404(Segment, pk=kwargs["pk"])
        context.update(segment=segment, **_overlap_context(segment, self.request.GET))
        return context


class SegmentExplainView(CDPPageView):
    """Why a profile is (or is not) in the segment: each condition with matched yes or no. Audited, as it shows
    what a person did."""

    template_name = "segments/segment_explain.html"
    partial = "explain"
    permission_required = ("segments.view_segment", "profiles.view_profile")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        segment = get_object_or_404(Segment, pk=kwargs["pk"])
        form = ExplainForm(self.request.GET or None)
        context.update(segment=segment, explain_form=form)
        if form.is_valid():
            profile = Profile.objects.filter(pk=form.cleaned_data["profile"]).first()
            if profile is None:
                form.add_error("profile", "There is no profile with this id.")
                return context
            explanation = selectors.membership_explain(segment=segment, profile=profile)
            audit_record(actor=self.request.user, action="view", object_type="profiles.profile",
                         object_id=profile.pk, profile_id=profile.pk,
                         summary=f"Viewed why the profile is in segment {segment.slug}", request=self.request)
            context.update(profile=profile, explanation=explanation,
                           is_member=selectors.membership_current(segment=segment, profile=profile) is not None)
        return context


class SegmentRefreshView(CDPViewMixin, View):
    permission_required = ("segments.change_segment",)

    def post(self, request, pk):
        segment = get_object_or_404(Segment, pk=pk)
        result = services.segment_refresh(segment=segment)
        messages.success(request, f"Refreshed: {result['size']:,} members ({result['entered']:,} entered, "
                                  f"{result['exited']:,} left).")
        return _redirect(request, reverse("segments:detail", args=[segment.pk]))


class SegmentDeleteView(CDPPageView):
    """GET: what deleting means. POST: delete."""

    template_name = "segments/segment_delete.html"
    permission_required = ("segments.delete_segment",)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["segment"] = get_object_or_404(Segment, pk=kwargs["pk"])
        return context

    def post(self, request, pk):
        segment = get_object_or_404(Segment, pk=pk)
        try:
            services.segment_delete(segment=segment, actor=request.user)
        except RuleError as error:  # other segments refer to it
            context = self.get_context_data(pk=pk, delete_errors=[m for ms in error.errors.values() for m in ms])
            return self.render_to_response(context, status=409)
        messages.success(request, f"Segment “{segment.name}” deleted.")
        return _redirect(request, reverse("segments:list"))


# --- quick segment from the profile list --------------------------------------------------------------------------


class QuickSegmentView(CDPPageView):
    """"Save as segment" on the profile list: the profiles its filters find, saved as a static segment. GET (the
    list's filters in the query) shows how many and asks for a name; POST (the filters as hidden fields) saves."""

    template_name = "segments/quick_segment.html"
    partial = "quick"
    permission_required = ("segments.add_segment", "profiles.view_profile")

    def filterset(self, data):
        filters = {key: data[key] for key in ProfileFilter.base_filters if data.get(key)}
        return ProfileFilter(filters or None, queryset=Profile.objects.filter(merged_into__isnull=True),
                             request=self.request)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filterset = kwargs.get("filterset") or self.filterset(self.request.GET)
        valid = not filterset.is_bound or filterset.is_valid()
        filters = filterset.data if filterset.is_bound else {}
        context.update(filterset=filterset, filters=filters, filters_query=urlencode(filters),
                       filter_labels=[(filterset.form.fields[key].label, value) for key, value in filters.items()],
                       count=filterset.qs.count() if valid else None,
                       form=kwargs.get("form") or QuickSegmentForm(initial={"name": _quick_name(filterset)}))
        return context

    def post(self, request, *args, **kwargs):
        filterset = self.filterset(request.POST)
        form = QuickSegmentForm(request.POST)
        if not form.is_valid() or (filterset.is_bound and not filterset.is_valid()):
            return self.render_to_response(self.get_context_data(filterset=filterset, form=form))
        segment = services.segment_from_profiles(name=form.cleaned_data["name"], queryset=filterset.qs,
                                                 actor=request.user)
        messages.success(request, f"Segment “{segment.name}” saved with {segment.size:,} profiles.")
        return _redirect(request, reverse("segments:detail", args=[segment.pk]))


def _quick_name(filterset) -> str:
    search = filterset.data.get("q") if filterset.is_bound else ""
    return f"Profiles matching {search}" if search else "Profiles from the list"


def register_profile_list_actions() -> None:
    """The "Save as segment" button of the profile list (called from SegmentsConfig.ready())."""
    profile_panels.register_list_action(profile_panels.ListAction(
        key="save-as-segment", label="Save as segment", url_name="segments:quick",
        permission="segments.add_segment", order=10))

