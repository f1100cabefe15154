"""Forms of the tracking-plan and transformation editors. They parse JSON; the services check the rest."""

import json

from django import forms

from ingestion.models import TrackingPlan

MODE_HELP = {
    "allow": "processed; nothing checked or recorded",
    "flag": "processed; the violation is recorded",
    "block": "rejected with the reason; replayable once the plan is fixed",
}


class PrettyJSONField(forms.JSONField):
    """A JSON textarea that shows its value indented."""

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


def _textarea(rows: int, placeholder: str = ""):
    return forms.Textarea(attrs={"rows": rows, "spellcheck": "false", "class": "input mono code-input",
                                 "placeholder": placeholder})


class TrackingPlanForm(forms.Form):
    mode = forms.ChoiceField(choices=TrackingPlan.Mode.choices, label="A planned message that breaks its schema",
                             help_text=" · ".join(f"{k}: {v}" for k, v in MODE_HELP.items()))
    unplanned = forms.ChoiceField(choices=TrackingPlan.Mode.choices, label="A track event the plan does not name")
    events = PrettyJSONField(
        required=False, label="Event schemas",
        help_text='An object of event name to the JSON Schema (Draft 2020-12) of its properties, e.g. '
                  '{"Order Completed": {"type": "object", "required": ["total"], '
                  '"properties": {"total": {"type": "number"}}}}',
        widget=_textarea(16, '{"Order Completed": {"type": "object", "required": ["total"], '
                             '"properties": {"total": {"type": "number", "minimum": 0}}}}'))
    identify_schema = PrettyJSONField(
        required=False, label="Identify traits schema",
        help_text="The JSON Schema of identify traits; empty for none.",
        widget=_textarea(8, '{"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}'))

    def clean_events(self):
        return self.cleaned_data["events"] or {}

    def add_service_error(self, error) -> None:
        head, _, rest = error.field.partition(".")
        if head in ("events", "identify_schema", "mode", "unplanned"):
            self.add_error(head, f"{rest}: {error.message}" if rest else error.message)
        else:
            self.add_error(None, str(error))


class TransformationForm(forms.Form):
    steps = PrettyJSONField(
        label="Steps", help_text="The ordered list of steps; each is an object with an op (see the list of ops).",
        widget=_textarea(22, '[{"op": "email", "fields": ["traits.email"]}, '
                             '{"op": "phone", "fields": ["traits.phone"]}]'))
    enabled = forms.BooleanField(required=False, initial=True, label="Apply these steps to incoming messages")

    def clean_steps(self):
        steps = self.cleaned_data["steps"]
        return [] if steps is None else steps

    def add_service_error(self, error) -> None:
        self.add_error("steps", step_error_text(error))


def step_error_text(error) -> str:
    parts = error.field.split(".")
    if len(parts) >= 2 and parts[0] == "steps" and parts[1].isdigit():
        where = f"Step {int(parts[1]) + 1}" + (f", {'.'.join(parts[2:])}" if len(parts) > 2 else "")
        return f"{where}: {error.message}"
    return str(error)


class PreviewForm(forms.Form):
    steps = forms.JSONField(required=False)
    message = PrettyJSONField(label="Sample message", error_messages={"required": "Paste a sample message."})

    def clean_message(self):
        message = self.cleaned_data["message"]
        if not isinstance(message, dict):
            raise forms.ValidationError("A message is a JSON object, e.g. {\"type\": \"identify\", ...}.")
        return message
