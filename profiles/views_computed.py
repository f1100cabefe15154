"""The computed traits UI: the list (type, coverage, last run, live while a recompute runs), the form to define
or change one, its page with the distribution, and "Recompute now". Marketing and Admin define them; everyone
with profiles.view_* sees them. Views are thin: the services check and compute, the selectors read."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views import View

from cdp.core.htmx import notify
from cdp.core.views import CDPPageView, CDPViewMixin
from profiles import selectors
from profiles.forms import ComputedTraitForm
from profiles.models import ComputedTrait
from profiles.services import (
    ComputedTraitInvalid,
    computed_trait_create,
    computed_trait_delete,
    computed_trait_update,
    computed_traits_recompute_enqueue,
)

LIST_TEMPLATE = "profiles/computed_list.html"
FORM_TEMPLATE = "profiles/computed_form.html"
DETAIL_TEMPLATE = "profiles/computed_detail.html"


def _can_change(user) -> bool:
    return user.has_perm("profiles.change_computedtrait")


class ComputedTraitListView(CDPPageView):
    """Every computed trait. htmx reloads the rows (``rows``) after a change, and every few seconds while a
    recompute runs."""

    template_name = LIST_TEMPLATE
    permission_required = "profiles.view_computedtrait"

    def get(self, request, *args, **kwargs):
        if request.htmx and request.GET.get("part") == "rows":
            self.partial = "rows"
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        traits = list(selectors.computed_traits_with_coverage())
        context.update(traits=traits, running=any(t.running for t in traits),
                       can_add=self.request.user.has_perm("profiles.add_computedtrait"),
                       can_change=_can_change(self.request.user))
        return context


class ComputedTraitCreateView(CDPPageView):
    """GET: the form (empty, or the trait's definition). POST: create or change through the services, which
    check the definition; their errors land on the fields they name."""

    template_name = FORM_TEMPLATE
    permission_required = "profiles.add_computedtrait"

    def get_trait(self) -> ComputedTrait | None:
        return None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        trait = self.get_trait()
        context.setdefault("form", ComputedTraitForm(trait=trait))
        context["trait"] = trait
        return context

    def post(self, request, *args, **kwargs):
        trait = self.get_trait()
        form = ComputedTraitForm(request.POST, trait=trait)
        if form.is_valid():
            data = form.cleaned_data
            fields = {"key": data["key"], "name": data["name"], "description": data["description"],
                      "enabled": data["enabled"], **form.definition()}
            try:
                if trait is None:
                    trait = computed_trait_create(**fields)
                    message = f"{trait.name} is defined; its values are being computed."
                else:
                    trait = computed_trait_update(trait=trait, **fields)
                    message = f"{trait.name} is saved."
            except ComputedTraitInvalid as error:
                form.add_service_errors(error.errors)
            else:
                return notify(request, redirect("profiles:computed-detail", key=trait.key), message)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class ComputedTraitEditView(ComputedTraitCreateView):
    permission_required = "profiles.change_computedtrait"

    def get_trait(self) -> ComputedTrait:
        return get_object_or_404(ComputedTrait, key=self.kwargs["key"])


class ComputedTraitDetailView(CDPPageView):
    """A trait: its definition, coverage, last run and how its values are spread (a histogram for numbers,
    times and days; the most frequent values for text). htmx polls ``status`` while a recompute runs."""

    template_name = DETAIL_TEMPLATE
    permission_required = "profiles.view_computedtrait"

    def get(self, request, *args, **kwargs):
        if request.htmx and request.GET.get("part") == "status":
            self.partial = "status"
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        trait = get_object_or_404(selectors.computed_traits_with_coverage(), key=self.kwargs["key"])
        distribution = selectors.computed_trait_distribution(trait=trait)
        chart = None
        if distribution["kind"] == "histogram" and distribution["total"]:
            chart = {"labels": distribution["labels"],
                     "series": [{"key": "profiles", "label": "Profiles", "values": distribution["counts"]}]}
        context.update(trait=trait, distribution=distribution, chart=chart,
                       filters=[ComputedTraitForm.filter_line(item) for item in trait.filters],
                       can_change=_can_change(self.request.user),
                       can_delete=self.request.user.has_perm("profiles.delete_computedtrait"))
        return context


class ComputedTraitRecomputeView(CDPViewMixin, View):
    """POST: "Recompute now" for one trait (``key``) or every enabled trait: queues the task."""

    permission_required = "profiles.change_computedtrait"
    http_method_names = ["post"]

    def post(self, request, key=None):
        trait = get_object_or_404(ComputedTrait, key=key) if key else None
        computed_traits_recompute_enqueue(trait=trait)
        if request.htmx:  # the page stays; its status reloads on the event
            response = HttpResponse(status=204)
        else:
            response = redirect("profiles:computed-detail", key=key) if key else redirect("profiles:computed-list")
        message = (f"{trait.name} is being recomputed." if trait else "Every computed trait is being recomputed.")
        return notify(request, response, message, events={"computedTraitsChanged": {"key": key}})


class ComputedTraitDeleteView(CDPViewMixin, View):
    """POST: delete a trait and its values."""

    permission_required = "profiles.delete_computedtrait"
    http_method_names = ["post"]

    def post(self, request, key):
        trait = get_object_or_404(ComputedTrait, key=key)
        name = trait.name
        computed_trait_delete(trait=trait)
        messages.success(request, f"{name} is deleted.")
        if request.htmx:  # asked to confirm by htmx (hx-confirm): the browser goes to the list
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("profiles:computed-list")
            return response
        return redirect("profiles:computed-list")


def computed_panel_context(profile, user) -> dict:
    """The 360° page's computed traits panel (registered in ProfilesConfig.ready())."""
    return {"rows": selectors.profile_computed_values(profile=profile, user=user), "profile": profile,
            "can_view_traits": user.has_perm("profiles.view_computedtrait")}


