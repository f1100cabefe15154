"""Forms of the offers UI: an offer as people type it (its content as separate fields), and the preview's
identifier."""

import re

from django import forms

from activation.models import Offer
from activation.selectors.personalization import IDENTIFIER_TYPES, MAX_RECOMMENDATIONS
from consent.models import Purpose
from segments.models import Segment

CONTENT_KEYS = ("headline", "body", "cta_url", "image_url")
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def _when(label: str, help_text: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        required=False, label=label, help_text=help_text, input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL))


class OfferForm(forms.Form):
    """The service checks the offer (OfferInvalid names the field, ``content.headline`` lands on headline)."""

    name = forms.CharField(max_length=120)
    segment = forms.ModelChoiceField(queryset=Segment.objects.all(), help_text="Who qualifies: its current members.")
    purpose = forms.ModelChoiceField(queryset=Purpose.objects.all(), label="Consent purpose",
                                     help_text="Shown only to people who granted it.")
    priority = forms.IntegerField(min_value=0, max_value=1_000_000, initial=100,
                                  help_text="Lower comes first among the offers the next best action does not score "
                                            "for the person (no goal, or no insights for it), and between equal "
                                            "scores.")
    goal = forms.ChoiceField(choices=Offer.Goal.choices, initial=Offer.Goal.NONE, required=False,
                             help_text="How the next best action scores the offer for a person: retention by the "
                                       "value at risk (churn risk × predicted 12-month value), cross-sell by how "
                                       "high its products rank in the person's recommendations × its value, "
                                       "win-back by the time since the last order × its value, acquisition by its "
                                       "value for people without orders. Scored offers come before the others.")
    expected_value = forms.FloatField(required=False, min_value=0, max_value=1_000_000, label="Expected value (EUR)",
                                      help_text="What a conversion is worth (e.g. its margin). Cross-sell uses the "
                                                "product's price and win-back the person's average order without it.")
    product_ids = forms.CharField(required=False, max_length=5000, label="Promoted product ids",
                                  help_text="For cross-sell: product ids as the events carry them, separated by "
                                            "commas.")
    min_churn_risk = forms.FloatField(required=False, min_value=0, max_value=1, label="Minimum churn risk",
                                      help_text="0-1; empty: no bound. Only people with a churn risk in the bounds "
                                                "qualify (read only with personalization granted).")
    max_churn_risk = forms.FloatField(required=False, min_value=0, max_value=1, label="Maximum churn risk",
                                      help_text="0-1; empty: no bound.")
    headline = forms.CharField(max_length=200)
    body = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    cta_url = forms.CharField(max_length=2000, label="Call-to-action URL",
                              help_text="https://… or a path on the site (/stay).")
    image_url = forms.CharField(required=False, max_length=2000, label="Image URL")
    valid_from = _when("Valid from", "Empty: from now on.")
    valid_until = _when("Valid until", "Empty: until switched off.")
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, offer: Offer | None = None, **kwargs):
        if offer is not None and "initial" not in kwargs and not args:
            kwargs["initial"] = {
                "name": offer.name, "segment": offer.segment_id, "purpose": offer.purpose_id,
                "priority": offer.priority, "valid_from": offer.valid_from, "valid_until": offer.valid_until,
                "enabled": offer.enabled, "goal": offer.goal, "expected_value": offer.expected_value,
                "product_ids": ", ".join(offer.product_ids or ()), "min_churn_risk": offer.min_churn_risk,
                "max_churn_risk": offer.max_churn_risk, **{key: offer.content.get(key, "") for key in CONTENT_KEYS}}
        super().__init__(*args, **kwargs)

    def offer_fields(self) -> dict:
        data = self.cleaned_data
        return {"name": data["name"], "segment": data["segment"], "purpose": data["purpose"],
                "priority": data["priority"], "valid_from": data["valid_from"], "valid_until": data["valid_until"],
                "enabled": data["enabled"], "goal": data["goal"] or Offer.Goal.NONE,
                "expected_value": data["expected_value"],
                "product_ids": [pid.strip() for pid in re.split(r"[,\n]", data["product_ids"] or "")
                                if pid.strip()],
                "min_churn_risk": data["min_churn_risk"], "max_churn_risk": data["max_churn_risk"],
                "content": {key: data[key] for key in CONTENT_KEYS if data.get(key)}}

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        for path, messages in errors.items():
            name = path.removeprefix("content.")
            self.add_error(name if name in self.fields else None, messages)


class PreviewForm(forms.Form):
    identifier_type = forms.ChoiceField(
        choices=[*((name, name) for name in IDENTIFIER_TYPES), ("profile", "profile id")], label="Identifier")
    value = forms.CharField(max_length=255, label="Value", help_text="As a website or the call center would send it.")
    recommendations = forms.IntegerField(required=False, min_value=0, max_value=MAX_RECOMMENDATIONS, initial=0,
                                         label="Recommendations",
                                         help_text="As the API's ?recommendations=N: add up to N recommended "
                                                   "products (0: none).")

    def clean(self):
        data = super().clean()
        if data.get("identifier_type") == "profile" and not str(data.get("value", "")).isdigit():
            self.add_error("value", "A profile id is a number.")
        return data
