"""The offers UI: the list, the form to define or change an offer, and the preview of what the personalization API
answers for a person. Marketing and Admin change offers; the views are thin (services check, selectors read)."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.shortcuts import get_object_or_404, redirect
from django.views import View

from activation.filters import OfferFilter
from activation.forms_offers import OfferForm, PreviewForm
from activation.models import Offer
from activation.selectors import personalization
from activation.services.offers import OfferInvalid, offer_create, offer_delete, offer_update
from cdp.core.htmx import notify
from cdp.core.services import audit_record
from cdp.core.views import CDPPageView, CDPViewMixin, FilteredListView


class OfferListView(FilteredListView):
    template_name = "activation/offer_list.html"
    filterset_class = OfferFilter
    permission_required = "activation.view_offer"

    def get_queryset(self):
        return personalization.offer_list()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context.update(can_add=user.has_perm("activation.add_offer"),
                       can_preview=user.has_perm("activation.personalize"))
        return context


class OfferCreateView(CDPPageView):
    """GET: the form. POST: create or change through the services; their errors land on the fields."""

    template_name = "activation/offer_form.html"
    permission_required = "activation.add_offer"

    def get_offer(self) -> Offer | None:
        return None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        offer = self.get_offer()
        context.setdefault("form", OfferForm(offer=offer))
        context.update(offer=offer, can_delete=offer is not None and self.request.user.has_perm(
            "activation.delete_offer"))
        return context

    def post(self, request, *args, **kwargs):
        offer = self.get_offer()
        form = OfferForm(request.POST, offer=offer)
        if form.is_valid():
            try:
                if offer is None:
                    offer = offer_create(actor=request.user, **form.offer_fields())
                    message = f"{offer.name} is saved; the personalization API shows it within seconds."
                else:
                    offer = offer_update(offer=offer, actor=request.user, **form.offer_fields())
                    message = f"{offer.name} is saved."
            except OfferInvalid as error:
                form.add_service_errors(error.errors)
            else:
                return notify(request, redirect("activation:offer-list"), message,
                              events={"offersChanged": {"id": offer.pk}})
        return self.render_to_response(self.get_context_data(form=form), status=400)


class OfferEditView(OfferCreateView):
    permission_required = "activation.change_offer"

    def get_offer(self) -> Offer:
        return get_object_or_404(Offer, pk=self.kwargs["pk"])


class OfferDeleteView(CDPViewMixin, View):
    permission_required = "activation.delete_offer"
    http_method_names = ["post"]

    def post(self, request, pk):
        offer = get_object_or_404(Offer, pk=pk)
        name = offer.name
        offer_delete(offer=offer, actor=request.user)
        return notify(request, redirect("activation:offer-list"), f"{name} is deleted.",
                      events={"offersChanged": {"id": pk}})


class OfferPreviewView(CDPPageView):
    """What the personalization API answers for a person, as this user would get it (masked for roles without
    core.view_pii), and the next best action's ranking behind the offer (scores and reasons with the person's
    numbers, which the API does not return). htmx gets the ``answer`` partial. A person viewing someone's traits is
    audited."""

    template_name = "activation/offer_preview.html"
    permission_required = ("activation.view_offer", "activation.personalize")
    partial = "answer"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = PreviewForm(self.request.GET or None)
        answer = None
        if form.is_bound and form.is_valid():
            identity_type, value = form.cleaned_data["identifier_type"], form.cleaned_data["value"]
            recommendations = form.cleaned_data["recommendations"] or 0
            if identity_type == "profile":
                answer = personalization.personalization_for_profile(profile_id=int(value), user=self.request.user,
                                                                     recommendations=recommendations, complete=True)
            else:
                answer = personalization.personalization_for(identity_type=identity_type, value=value,
                                                             user=self.request.user, recommendations=recommendations,
                                                             complete=True)
            if answer.traits:
                audit_record(actor=self.request.user, action="view", object_type="profiles.profile",
                             object_id=answer.profile_id, profile_id=answer.profile_id,
                             summary=f"Personalization preview by {identity_type}", fields=sorted(answer.traits),
                             request=self.request)
        context.update(form=form, answer=answer,
                       answer_json=json.dumps(answer.as_data(), cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
                       if answer else "")
        return context
