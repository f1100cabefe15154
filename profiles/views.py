"""The profiles UI: the list with search, and the 360° page. Views are thin: selectors read, services write.

The 360° page is audited once per page view (ProfileDetailView); the htmx parts it loads afterwards (timeline
pages and filters, the sections it reloads after a note or an undo) are not page views and are not audited again.
"""

import json

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.views import View

from cdp.core import profile_panels
from cdp.core.htmx import notify, render_page
from cdp.core.masking import SENSITIVE, can_view_pii, is_sealed, mask, reveal, trait_kind
from cdp.core.services import audit_record
from cdp.core.views import CDPPageView, CDPViewMixin, FilteredListView
from profiles import selectors
from profiles.filters import ProfileFilter
from profiles.forms import NoteForm
from profiles.models import Merge, Profile, TraitPolicy
from profiles.services import merge_undo
from profiles.services.notes import note_add

TEMPLATE = "profiles/profile_detail.html"
TIMELINE_FILTERS = ("channel", "type")
NOTES_SHOWN = 20
STRATEGY_LABELS = dict(TraitPolicy.Strategy.choices)
SECTIONS = {"golden", "identities", "merges", "notes", "panels"}


class ProfileListView(FilteredListView):
    template_name = "profiles/profile_list.html"
    filterset_class = ProfileFilter
    permission_required = "profiles.view_profile"

    def get_queryset(self):
        return Profile.objects.filter(merged_into__isnull=True)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["list_actions"] = profile_panels.list_actions_for(self.request.user)  # "Save as segment", ...
        return context


def _shown(value) -> str:
    if isinstance(value, str) and len(value) >= 19 and value[4:5] == "-" and value[10:11] == "T":
        when = parse_datetime(value)  # an ISO time (intends_to_cancel_at, last_note_at ...) reads as a time
        if when is not None:
            return date_format(timezone.localtime(when) if timezone.is_aware(when) else when, "Y-m-d H:i")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _kind(name: str, value) -> str | None:
    """How a trait is masked (cdp.core.masking.trait_kind); a sealed value is sensitive whatever its name."""
    return trait_kind(name) or (SENSITIVE if is_sealed(value) else None)


def _masked(user, name: str, value) -> tuple[str, bool]:
    """A trait value as text for ``user`` (a sensitive one decrypted), and whether it was masked."""
    kind = _kind(name, value)
    if kind and not can_view_pii(user) and value not in (None, ""):
        return mask(_shown(value), kind), True
    return _shown(reveal(value)), False


def _lineage_rows(profile, user) -> list[dict]:
    rows = []
    for trait in selectors.profile_lineage(profile=profile):
        trait["shown"], trait["masked"] = _masked(user, trait["name"], trait["value"])
        kind = _kind(trait["name"], trait["value"])
        trait["pii"], trait["sensitive"] = kind is not None, kind == SENSITIVE
        trait["strategy_label"] = STRATEGY_LABELS.get(trait["strategy"], trait["strategy"])
        for item in trait["values"]:
            item["shown"], item["masked"] = _masked(user, trait["name"], item["value"])
        trait["others"] = [item for item in trait["values"] if not item["winner"]]
        rows.append(trait)
    return rows


def _timeline_filters(request) -> dict:
    return {key: request.GET[key] for key in TIMELINE_FILTERS if request.GET.get(key)}


def _timeline_context(request, profile) -> dict:
    filters = _timeline_filters(request)
    page = selectors.timeline_page(profile=profile, filters=filters, cursor=request.GET.get("cursor"))
    more_url = None
    if page.next_cursor:
        more_url = (reverse("profiles:timeline", args=[profile.pk]) + "?"
                    + urlencode({**filters, "cursor": page.next_cursor}))
    return {"events": page.events, "more_url": more_url, "timeline_filters": filters,
            "timeline_query": urlencode(filters),
            "timeline_facets": selectors.timeline_facets(profile=profile)}


def _section_context(request, profile, names=SECTIONS) -> dict:
    user = request.user
    context = {"profile": profile, "can_add_note": user.has_perm("profiles.add_note"),
               "can_undo_merge": user.has_perm("profiles.change_merge"),
               "can_view_notes": user.has_perm("profiles.view_note")}
    if "golden" in names:
        context["lineage"] = _lineage_rows(profile, user)
    if "identities" in names:
        context["identities"] = profile.identities.order_by("type", "value")
    if "merges" in names:
        context["merges"] = selectors.profile_merges(profile=profile)[:20]
    if "notes" in names:
        notes = selectors.profile_notes(profile=profile) if context["can_view_notes"] else None
        context["notes"] = list(notes[:NOTES_SHOWN]) if notes is not None else []
        context["notes_total"] = notes.count() if notes is not None and len(context["notes"]) == NOTES_SHOWN else None
        context.setdefault("note_form", NoteForm())
    if "panels" in names:
        context["panels"] = [
            {"key": p["key"], "title": p["title"],
             "html": render_to_string(p["template"], p["context"], request=request)}
            for p in profile_panels.render_context(profile, user)]
    return context


def _live_profile(pk: int) -> Profile:
    profile = get_object_or_404(Profile, pk=pk)
    if profile.merged_into_id:
        raise Http404("merged")
    return profile


class ProfileDetailView(CDPPageView):
    """The 360° view. Every view of it is audited (once: its htmx parts are not)."""

    template_name = TEMPLATE
    permission_required = "profiles.view_profile"

    def get(self, request, *args, **kwargs):
        profile = get_object_or_404(Profile, pk=kwargs["pk"])
        if profile.merged_into_id:
            live = selectors.profile_resolve(profile_id=profile.pk)
            if live is not None and live.pk != profile.pk:
                messages.info(request, f"Profile #{profile.pk} was merged into #{live.pk}; this is the profile "
                                       "it became.")
                return redirect("profiles:detail", pk=live.pk)
        self.profile = profile
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        profile = self.profile
        audit_record(actor=self.request.user, action="view", object_type="profiles.profile", object_id=profile.pk,
                     profile_id=profile.pk, summary="Viewed the profile page", fields=sorted(profile.traits),
                     request=self.request)
        context.update(_section_context(self.request, profile))
        if self.request.user.has_perm("profiles.view_event"):
            context.update(_timeline_context(self.request, profile))
        context["can_view_events"] = self.request.user.has_perm("profiles.view_event")
        return context


class ProfileTimelineView(CDPPageView):
    """The timeline of the 360° page: htmx gets the filtered timeline (``#timeline``) or, with a cursor, the next
    events and the next "load more" button (``#timeline-more``). Without htmx it is the page itself."""

    template_name = TEMPLATE
    permission_required = ("profiles.view_profile", "profiles.view_event")

    def get(self, request, *args, **kwargs):
        if not request.htmx:
            query = request.GET.urlencode()
            return redirect(reverse("profiles:detail", args=[kwargs["pk"]]) + (f"?{query}" if query else ""))
        self.partial = "timeline-more" if request.GET.get("cursor") else "timeline"
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        profile = _live_profile(self.kwargs["pk"])
        context.update(profile=profile, can_view_events=True, **_timeline_context(self.request, profile))
        return context


class ProfileSectionView(CDPPageView):
    """One section of the 360° page, reloaded by htmx after a note or an undo changed the profile."""

    template_name = TEMPLATE
    permission_required = "profiles.view_profile"

    def get(self, request, *args, **kwargs):
        if kwargs["section"] not in SECTIONS:
            raise Http404("no such section")
        if not request.htmx:
            return redirect("profiles:detail", pk=kwargs["pk"])
        self.partial = kwargs["section"]
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        profile = _live_profile(self.kwargs["pk"])
        context.update(_section_context(self.request, profile, names={self.kwargs["section"]}))
        return context


class NoteCreateView(CDPViewMixin, View):
    """POST: an agent adds a note or interaction. htmx gets the notes section back (with the form's errors when
    it is not valid) and a toast; the timeline and the golden record reload on ``profileChanged``."""

    permission_required = ("profiles.view_profile", "profiles.add_note")
    http_method_names = ["post"]

    def post(self, request, pk):
        profile = _live_profile(pk)
        form = NoteForm(request.POST)
        if not form.is_valid():
            if not request.htmx:
                messages.error(request, "The note was not saved: " + " ".join(
                    str(error) for errors in form.errors.values() for error in errors))
                return redirect("profiles:detail", pk=pk)
            context = _section_context(request, profile, names={"notes"})
            context["note_form"] = form
            return render_page(request, TEMPLATE, context, partial="notes")
        note = note_add(profile=profile, author=request.user, **form.cleaned_data)
        message = f"{note.get_kind_display()} noted."
        if not request.htmx:
            return notify(request, redirect("profiles:detail", pk=pk), message)
        response = render_page(request, TEMPLATE, _section_context(request, profile, names={"notes"}),
                               partial="notes")
        return notify(request, response, message, events={"profileChanged": {"id": profile.pk}})


class MergeUndoView(CDPViewMixin, View):
    """POST: undo a merge from the journal; both profiles are restored."""

    permission_required = "profiles.change_merge"
    http_method_names = ["post"]

    def post(self, request, pk):
        merge = get_object_or_404(Merge, pk=pk)
        back = request.POST.get("profile") or merge.winner_id or merge.loser_id
        target = reverse("profiles:detail", args=[back]) if str(back).isdigit() else reverse("profiles:list")
        response = HttpResponse(status=204) if request.htmx else redirect(target)
        if merge.undone_at:
            return notify(request, response, "This merge was undone already.", level="warning")
        try:
            winner, loser = merge_undo(merge=merge, actor=request.user)
        except ValueError as error:  # the service says why it cannot undo (undone already, a profile erased)
            return notify(request, response, f"The merge could not be undone: {error}", level="error")
        return notify(request, response, f"Merge undone: profile #{loser.pk} is separate again.",
                      events={"profileChanged": {"id": winner.pk if winner else None}})
