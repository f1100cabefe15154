"""Forms of the activation UI: a destination's configuration (built from its kind's fields, secrets never shown
again) and an activation (segment, destination, purpose, schedule, mapping as lines, email options). They check
the shape of the input; the services check the rest and their errors land on the fields here."""

from django import forms

from activation.destinations import KINDS, kind_module
from activation.destinations.email import MODES
from activation.models import Activation, Destination
from consent.models import Purpose
from segments.models import Segment


class ServiceErrorsMixin:
    """Puts a service's {"config.url": [...]} errors on the form's fields (or on the form when no field fits)."""

    field_for_error: dict[str, str] = {}

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        for key, messages in errors.items():
            name = self.field_for_error.get(key) or key.replace(".", "_")
            if name not in self.fields:
                name = key.split(".", 1)[0]
            for message in messages:
                self.add_error(name if name in self.fields else None,
                               message if name in self.fields or "." not in key else f"{key}: {message}")


class DestinationForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(max_length=120)
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, kind: str, destination: Destination | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.specs = kind_module(kind).FIELDS
        if destination is not None and not self.is_bound:
            self.initial.update(name=destination.name, enabled=destination.enabled)
            self.initial.update({f"config_{k}": v for k, v in destination.config.items()})
        for spec in self.specs:
            name = f"config_{spec.name}"
            if spec.generated:
                if destination is not None:
                    self.fields[name] = forms.BooleanField(
                        label=f"Make a new {spec.label.lower()}", required=False,
                        help_text="The new one is shown once; the receiver must be told.")
                continue
            if spec.secret:
                is_set = bool(destination and destination.secrets.get(spec.name))
                self.fields[name] = forms.CharField(
                    label=spec.label, required=False, widget=forms.PasswordInput(render_value=False),
                    help_text=("Set; leave empty to keep it. " if is_set else "") + spec.help)
            elif spec.type == "choice":
                self.fields[name] = forms.ChoiceField(label=spec.label, choices=spec.choices, help_text=spec.help,
                                                      required=spec.required)
            elif spec.type == "bool":
                self.fields[name] = forms.BooleanField(label=spec.label, required=False, help_text=spec.help)
            else:
                self.fields[name] = forms.CharField(label=spec.label, required=False, help_text=spec.help,
                                                    widget=forms.URLInput if spec.type == "url" else None)
            if destination is None and spec.default is not None and not spec.secret:
                self.initial.setdefault(name, spec.default)

    def config(self) -> dict:
        out = {}
        for spec in self.specs:
            if spec.secret:
                continue
            value = self.cleaned_data.get(f"config_{spec.name}")
            if spec.type == "bool":
                out[spec.name] = bool(value)
            elif value not in (None, ""):
                out[spec.name] = value
        return out

    def secrets(self) -> dict:
        out = {}
        for spec in self.specs:
            if spec.generated:
                if self.cleaned_data.get(f"config_{spec.name}"):
                    out[spec.name] = "rotate"
            elif spec.secret and self.cleaned_data.get(f"config_{spec.name}"):
                out[spec.name] = self.cleaned_data[f"config_{spec.name}"]
        return out

    def add_service_errors(self, errors):
        super().add_service_errors({(f"config_{k.split('.', 1)[1]}" if k.startswith("config.") else k): v
                                    for k, v in errors.items()})


class KindForm(forms.Form):
    kind = forms.ChoiceField(choices=Destination.Kind.choices, label="Kind")

    def clean_kind(self):
        if self.cleaned_data["kind"] not in KINDS:
            raise forms.ValidationError("Unknown kind.")
        return self.cleaned_data["kind"]


def mapping_lines(mapping: dict) -> str:
    return "\n".join(f"{name} = {source}" for name, source in mapping.items())


class ActivationForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(max_length=120)
    segment = forms.ModelChoiceField(queryset=Segment.objects.all())
    destination = forms.ModelChoiceField(queryset=Destination.objects.all())
    purpose = forms.ModelChoiceField(queryset=Purpose.objects.all(),
                                     help_text="Members without consent for this purpose are not sent.")
    schedule = forms.ChoiceField(choices=Activation.Schedule.choices)
    mapping = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="One field per line: out_name = traits.<name> | computed.<key> | profile.id. Only these leave "
                  "the CDP.")
    mode = forms.ChoiceField(choices=MODES, required=False, label="Email: mode",
                             help_text="Email destinations only")
    subject = forms.CharField(required=False, label="Email: subject", max_length=500,
                              help_text="Django template; the mapped fields by name, e.g. {{ first_name }}")
    body = forms.CharField(required=False, label="Email: body", widget=forms.Textarea(attrs={"rows": 6}))
    enabled = forms.BooleanField(required=False, initial=True)

    field_for_error = {"options.mode": "mode", "options.subject": "subject", "options.body": "body",
                       "options": "mode"}

    def __init__(self, *args, activation: Activation | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if activation is not None and not self.is_bound:
            self.initial.update(name=activation.name, segment=activation.segment_id,
                                destination=activation.destination_id, purpose=activation.purpose_id,
                                schedule=activation.schedule, mapping=mapping_lines(activation.mapping),
                                enabled=activation.enabled, **{k: v for k, v in activation.options.items()
                                                               if k in ("mode", "subject", "body")})

    def clean_mapping(self):
        mapping = {}
        for number, line in enumerate(self.cleaned_data["mapping"].splitlines(), start=1):
            if not line.strip():
                continue
            if "=" not in line:
                raise forms.ValidationError(f"Line {number}: write out_name = source.")
            name, source = (part.strip() for part in line.split("=", 1))
            if name in mapping:
                raise forms.ValidationError(f"Line {number}: “{name}” is mapped twice.")
            mapping[name] = source
        return mapping

    def add_service_errors(self, errors):
        mapping_errors = {k: v for k, v in errors.items() if k.startswith("mapping.")}
        for key, messages in mapping_errors.items():
            self.add_error("mapping", f"{key.split('.', 1)[1]}: {' '.join(messages)}")
        super().add_service_errors({k: v for k, v in errors.items() if k not in mapping_errors})

    def activation_fields(self) -> dict:
        data = self.cleaned_data
        options = {}
        if data["destination"].kind == Destination.Kind.EMAIL:
            options = {"mode": data.get("mode") or "message", "subject": data.get("subject", ""),
                       "body": data.get("body", "")}
        return {"name": data["name"], "segment": data["segment"], "destination": data["destination"],
                "purpose": data["purpose"], "schedule": data["schedule"], "mapping": data["mapping"],
                "options": options, "enabled": data["enabled"]}
