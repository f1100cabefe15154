"""Forms of the sources UI."""

from django import forms
from django.utils.text import slugify

from ingestion.models import Source
from ingestion.services.sources import RESERVED_SLUGS

CHANNEL_CHOICES = [("", "—"), ("web", "Web"), ("app", "App"), ("shop", "Shop"), ("crm", "CRM"),
                   ("call_center", "Call center"), ("email", "Email"), ("pos", "Point of sale"), ("other", "Other")]


class SourceCreateForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="What people call it: “Web shop”, “iOS app”, “CRM”.")
    kind = forms.ChoiceField(choices=Source.Kind.choices, initial=Source.Kind.HTTP,
                             help_text="Tracking API: websites, apps and servers send Segment-style calls.")
    channel = forms.ChoiceField(choices=CHANNEL_CHOICES, required=False,
                                help_text="The channel its events count for in profiles and segments.")
    slug = forms.SlugField(max_length=64, required=False,
                           help_text="A short unique name; taken from the name when left empty. It cannot change "
                                     "later.")

    def clean(self):
        data = super().clean()
        slug = data.get("slug") or slugify(data.get("name") or "")[:64]
        if "name" in data and not slug:
            self.add_error("name", "The name needs at least one letter or digit.")
        elif slug in RESERVED_SLUGS:
            self.add_error("slug" if data.get("slug") else "name", f"The slug “{slug}” is reserved; choose another.")
        elif slug and Source.objects.filter(slug=slug).exists():
            self.add_error("slug" if data.get("slug") else "name", f"A source with the slug “{slug}” exists already.")
        data["slug"] = slug
        return data
