"""Forms of the connectors UI: file upload, the mapping editor (shared by file imports, database and webhook
sources), database and webhook settings. Forms only check and convert input; the services decide."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms

from ingestion import readers
from ingestion.mapping import CONSENT_TIME, MESSAGE_TYPES, ROOT_TARGETS, TYPES, consent_purpose
from ingestion.services.connectors import DEFAULT_INTERVAL_MINUTES, DEFAULT_STATEMENT_TIMEOUT_SECONDS
from ingestion.services.imports import consent_purposes, mapping_errors

# What a record field can become, as the editor offers it: a root target, or a prefix with a name.
TARGET_CHOICES = [
    ("ignore", "Ignore"),
    ("userId", "userId"),
    ("anonymousId", "anonymousId"),
    ("externalId", "externalId (record key)"),
    ("traits", "traits. …"),
    ("properties", "properties. …"),
    ("context", "context. …"),
    ("timestamp", "timestamp"),
    ("event", "event name"),
    ("messageId", "messageId"),
    ("groupId", "groupId"),
    ("previousId", "previousId"),
]
PREFIXES = ("traits", "properties", "context")
TYPE_CHOICES = [("", "as it is"), *[(name, name) for name in TYPES]]
MESSAGE_TYPE_CHOICES = [(name, name) for name in MESSAGE_TYPES]
MAX_EDITOR_ROWS = 200


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text="CSV (with a header line) or JSON Lines (one JSON object per line), UTF-8. "
                                     "Large files are fine: they are read as a stream.")
    format = forms.ChoiceField(choices=[("", "Detect from the name"), ("csv", "CSV"), ("jsonl", "JSON Lines")],
                               required=False)
    encoding = forms.ChoiceField(choices=[("", "Detect (UTF-8)"), *readers.ENCODINGS.items()], required=False,
                                 help_text="Leave it to detection: a file that is not UTF-8 asks you to choose.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("format", "encoding"):
            self.fields[name].widget.attrs["class"] = "input"


class ReadOptionsForm(forms.Form):
    """How to read the file: the encoding and delimiter the user chose in the mapping step."""

    encoding = forms.ChoiceField(choices=[("", "Detect (UTF-8)"), *readers.ENCODINGS.items()], required=False)
    delimiter = forms.ChoiceField(choices=[("", "Detect"), *readers.DELIMITERS.items()], required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("encoding", "delimiter"):
            self.fields[name].widget.attrs["class"] = "input"


@dataclass
class EditorRow:
    index: int
    source_field: str = ""
    target: str = "ignore"
    name: str = ""
    type: str = ""
    format: str = ""
    errors: list[str] = field(default_factory=list)
    fixed: bool = False  # a file column: its name cannot be edited


@dataclass
class MappingEditor:
    """The mapping spec as rows of an editable table, and back."""

    rows: list[EditorRow] = field(default_factory=list)
    message_type: str = "identify"
    event: str = ""
    event_from: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    fixed_fields: bool = False
    # The consent proof of the records' decisions (the spec's consent_proof).
    consent_text_version: str = ""
    consent_form_url: str = ""

    @property
    def has_consent(self) -> bool:
        """A field is mapped to consent.<purpose>: the editor asks for the proof."""
        return any(consent_purpose(row.target) for row in self.rows)

    @property
    def general_errors(self) -> list[str]:
        return [f"{key.removeprefix('mapping.') or 'mapping'}: {message}" for key, messages in self.errors.items()
                if not key.startswith("mapping.fields.") or key == "mapping.fields"
                for message in messages]

    @classmethod
    def from_spec(cls, spec: dict | None, columns: list[str], *, fixed_fields: bool, extra_rows: int = 0
                  ) -> MappingEditor:
        spec = spec or {}
        proof = spec.get("consent_proof") if isinstance(spec.get("consent_proof"), dict) else {}
        editor = cls(message_type=spec.get("type") or "identify", event=spec.get("event") or "",
                     event_from=spec.get("event_from") or "", fixed_fields=fixed_fields,
                     consent_text_version=str(proof.get("text_version") or ""),
                     consent_form_url=str(proof.get("form_url") or ""))
        by_field: dict[str, list[dict]] = {}
        for item in spec.get("fields") or []:
            by_field.setdefault(item.get("from", ""), []).append(item)
        names = list(columns) + [name for name in by_field if name not in columns]
        for name in names:
            items = by_field.get(name) or [{}]
            for item in items:
                target = item.get("to") or "ignore"
                prefix, _, rest = target.partition(".")
                row = EditorRow(index=len(editor.rows), source_field=name, type=item.get("type") or "",
                                format=item.get("format") or "", fixed=fixed_fields and name in columns)
                if prefix in PREFIXES and rest:
                    row.target, row.name = prefix, rest
                else:
                    row.target = target
                editor.rows.append(row)
        for _ in range(extra_rows):
            editor.rows.append(EditorRow(index=len(editor.rows)))
        return editor

    @classmethod
    def from_post(cls, data, *, fixed_fields: bool, columns: list[str] = ()) -> MappingEditor:
        try:
            count = min(int(data.get("rows", "0")), MAX_EDITOR_ROWS)
        except ValueError:
            count = 0
        editor = cls(message_type=data.get("message_type", "identify"), event=data.get("event", "").strip(),
                     event_from=data.get("event_from", "").strip(), fixed_fields=fixed_fields,
                     consent_text_version=data.get("consent_text_version", "").strip(),
                     consent_form_url=data.get("consent_form_url", "").strip())
        for index in range(count):
            source_field = data.get(f"from_{index}", "").strip()
            target, type_name = data.get(f"to_{index}", "ignore"), data.get(f"type_{index}", "")
            # A column switched to a consent target keeps no name or type from before: decisions are read as
            # words, and the consent time is a date and time.
            if consent_purpose(target) and type_name != "boolean":
                type_name = ""
            elif target == CONSENT_TIME and type_name not in ("", "datetime"):
                type_name = "datetime"
            editor.rows.append(EditorRow(
                index=index, source_field=source_field, target=target,
                name="" if consent_purpose(target) or target == CONSENT_TIME else data.get(f"name_{index}", "").strip(),
                type=type_name,
                format=data.get(f"format_{index}", "").strip(), fixed=fixed_fields and source_field in columns))
        if data.get("add_row"):
            editor.rows.append(EditorRow(index=len(editor.rows)))
        return editor

    def spec(self) -> tuple[dict, dict[int, int]]:
        """The spec, and which editor row each spec field came from."""
        fields_: list[dict] = []
        origin: dict[int, int] = {}
        for row in self.rows:
            if row.target in ("ignore", "") or (not row.source_field and not row.name):
                continue
            target = f"{row.target}.{row.name}" if row.target in PREFIXES else row.target
            item = {"from": row.source_field, "to": target}
            if row.type:
                item["type"] = row.type
            if row.format:
                item["format"] = row.format
            origin[len(fields_)] = row.index
            fields_.append(item)
        spec = {"type": self.message_type, "event": self.event or None, "event_from": self.event_from or None,
                "fields": fields_}
        proof = {"text_version": self.consent_text_version, "form_url": self.consent_form_url}
        if self.has_consent and any(proof.values()):
            spec["consent_proof"] = {key: value for key, value in proof.items() if value}
        return spec, origin

    def validate(self) -> dict | None:
        """The spec when it is valid; else None, with the errors on the rows (and ``errors``)."""
        spec, origin = self.spec()
        self.errors = mapping_errors(spec)
        self.attach(self.errors, origin)
        return None if self.errors else spec

    def attach(self, errors: dict[str, list[str]], origin: dict[int, int] | None = None) -> None:
        """Put errors named mapping.fields.<n>... on their rows."""
        if origin is None:
            _, origin = self.spec()
        self.errors = errors
        for key, messages in errors.items():
            parts = key.split(".")
            if len(parts) >= 3 and parts[0] == "mapping" and parts[1] == "fields" and parts[2].isdigit():
                row_index = origin.get(int(parts[2]))
                if row_index is not None and row_index < len(self.rows):
                    self.rows[row_index].errors.extend(messages)

    @property
    def targets(self):
        """The targets the "Becomes" list offers: the fixed ones, the consent time and each consent purpose (and
        a consent target of the spec whose purpose does not exist, so that its error shows where it is)."""
        if not hasattr(self, "_targets"):
            purposes = [(f"consent.{key}", f"consent: {name}") for key, name in consent_purposes()]
            known = {value for value, _ in purposes}
            unknown = sorted({row.target for row in self.rows if consent_purpose(row.target)} - known)
            self._targets = [*TARGET_CHOICES, *purposes,
                             *[(target, f"consent: {consent_purpose(target)} (no such purpose)")
                               for target in unknown],
                             (CONSENT_TIME, "consent time")]
        return self._targets

    @property
    def types(self):
        return TYPE_CHOICES

    @property
    def message_types(self):
        return MESSAGE_TYPE_CHOICES

    @property
    def root_targets(self):
        return ROOT_TARGETS


def _input(widget: forms.Widget) -> forms.Widget:
    widget.attrs.setdefault("class", "input")
    return widget


class DatabaseSettingsForm(forms.Form):
    url = forms.CharField(label="Database URL", max_length=2000, widget=_input(forms.TextInput()),
                          help_text="postgres://user:password@host:5432/database. Use a user that may only read. "
                                    "The password is stored and never shown again: it appears as ****.")
    table = forms.CharField(required=False, max_length=200, widget=_input(forms.TextInput()),
                            help_text="A table (or schema.table) ...")
    query = forms.CharField(required=False, widget=_input(forms.Textarea(attrs={"rows": 4})),
                            help_text="... or a SELECT query. It runs in a read-only transaction.")
    cursor_column = forms.CharField(max_length=120, widget=_input(forms.TextInput()),
                                    help_text="A column that grows with every new or changed row: updated_at, or "
                                              "an increasing id. Each pull reads the rows at or after the last "
                                              "value it stored; rows whose cursor is empty are read by the first "
                                              "pull only.")
    interval_minutes = forms.IntegerField(min_value=1, initial=DEFAULT_INTERVAL_MINUTES,
                                          widget=_input(forms.NumberInput()),
                                          help_text="How often to pull, in minutes.")
    statement_timeout_seconds = forms.IntegerField(min_value=1, max_value=3600,
                                                   initial=DEFAULT_STATEMENT_TIMEOUT_SECONDS,
                                                   widget=_input(forms.NumberInput()),
                                                   help_text="A statement that runs longer is cancelled.")


class WebhookSettingsForm(forms.Form):
    records_path = forms.CharField(required=False, max_length=200, widget=_input(forms.TextInput()),
                                   help_text="Where the records are in the body, as a dotted path (data.items). "
                                             "Empty: the body is one record, or a JSON array of records.")


class WebhookSampleForm(forms.Form):
    sample = forms.CharField(widget=_input(forms.Textarea(attrs={"rows": 8})),
                             help_text="Paste a body a sender posts: its fields are listed for the mapping, and "
                                       "the messages it would become are shown. Nothing is stored.")
