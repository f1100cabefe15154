"""Forms of the profiles UI. The list page's search form is ProfileFilter's own form (profiles.filters)."""

from django import forms

from profiles.models import ComputedTrait, Note
from profiles.services.computed import FILTER_OPS

NOTE_MAX_LENGTH = 5000


class NoteForm(forms.Form):
    kind = forms.ChoiceField(choices=Note.Kind.choices, initial=Note.Kind.NOTE, label="Kind")
    channel = forms.ChoiceField(choices=Note.Channel.choices, initial=Note.Channel.CALL_CENTER, label="Channel")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=NOTE_MAX_LENGTH, label="Note",
                           help_text="What the customer said or wants; visible to colleagues who may see "
                                     "personal data.")

    def clean_text(self):
        text = self.cleaned_data["text"].strip()
        if not text:
            raise forms.ValidationError("Write what happened.")
        return text


# --- computed traits -----------------------------------------------------------------------------------------------


def _filter_value(text: str):
    """A filter value as typed: a number, true/false, or text."""
    if text in ("true", "false"):
        return text == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number


class ComputedTraitForm(forms.Form):
    """A computed trait's definition as people type it. The service checks it (ComputedTraitInvalid names the
    field); ``definition()`` turns the typed filters and event names into the service's shape."""

    key = forms.SlugField(max_length=64, help_text="Segments refer to the trait by it, e.g. orders_last_90_days. "
                                                   "Lowercase letters, digits, _ and -.")
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    aggregation = forms.ChoiceField(choices=ComputedTrait.Aggregation.choices)
    event_names = forms.CharField(
        required=False, label="Events", widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Event names, one per line (Order Completed). Empty: every event.")
    field = forms.CharField(
        required=False, max_length=200, label="Field",
        help_text="What is aggregated: a property (revenue, product.sku) or the event's channel, name or timestamp. "
                  "Sums and averages skip values that are not numbers.")
    field_type = forms.ChoiceField(choices=ComputedTrait.FieldType.choices, label="Read the property as",
                                   help_text="For first, last and most frequent of a property.")
    as_days_since = forms.BooleanField(required=False, label="Show a time as days since",
                                       help_text="For min, max, first or last of timestamp.")
    filters = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: property operator value, e.g. revenue gt 50, coupon in SPRING, SUMMER, "
                  "channel equals shop. Operators: " + ", ".join(FILTER_OPS) + ".")
    window_days = forms.IntegerField(required=False, min_value=1, label="Last N days",
                                     help_text="Only events of the last N days (or give a range of days below).")
    window_start = forms.DateField(required=False, label="From day", widget=forms.DateInput(attrs={"type": "date"}))
    window_end = forms.DateField(required=False, label="To day (inclusive)",
                                 widget=forms.DateInput(attrs={"type": "date"}))
    rfm_part = forms.ChoiceField(choices=[("", "—"), *ComputedTrait.RFMPart.choices], required=False,
                                 label="RFM part", help_text="For the RFM aggregation.")
    enabled = forms.BooleanField(required=False, initial=True, help_text="Off: the trait has no values.")

    def __init__(self, *args, trait: ComputedTrait | None = None, **kwargs):
        if trait is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "key": trait.key, "name": trait.name, "description": trait.description,
                "aggregation": trait.aggregation, "event_names": "\n".join(trait.event_names),
                "field": trait.field, "field_type": trait.field_type, "as_days_since": trait.as_days_since,
                "filters": "\n".join(self.filter_line(item) for item in trait.filters),
                "window_days": trait.window_days, "window_start": trait.window_start,
                "window_end": trait.window_end, "rfm_part": trait.rfm_part, "enabled": trait.enabled}
        super().__init__(*args, **kwargs)
        if trait is not None and trait.stock:
            self.fields["key"].disabled = True
            self.fields["key"].help_text = "A stock trait keeps its key (segments refer to it)."

    @staticmethod
    def filter_line(item: dict) -> str:
        value = item.get("value")
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        return f"{item.get('property')} {item.get('op')} {value}"

    def clean_event_names(self):
        return [line.strip() for line in self.cleaned_data["event_names"].splitlines() if line.strip()]

    def clean_filters(self):
        filters, errors = [], []
        for number, line in enumerate(self.cleaned_data["filters"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.strip().split(None, 2)
            if len(parts) < 3:
                errors.append(f"Line {number}: write property, operator and value.")
                continue
            prop, op, text = parts
            value = [_filter_value(v.strip()) for v in text.split(",") if v.strip()] if op == "in" \
                else _filter_value(text.strip())
            filters.append({"property": prop, "op": op, "value": value})
        if errors:
            raise forms.ValidationError(errors)
        return filters

    def definition(self) -> dict:
        data = self.cleaned_data
        return {name: data[name] for name in ("aggregation", "event_names", "filters", "field", "field_type",
                                              "as_days_since", "window_days", "window_start", "window_end",
                                              "rfm_part")}

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """The service's errors on the fields they name (``filters.1.op`` on the filters, as line 2)."""
        for path, messages in errors.items():
            name, _, rest = path.partition(".")
            if name == "filters" and rest:
                index, _, part = rest.partition(".")
                messages = [f"Line {int(index) + 1}{f' ({part})' if part else ''}: {m}" for m in messages]
            self.add_error(name if name in self.fields else None, messages)
