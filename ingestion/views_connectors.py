"""Settings pages of database and webhook sources: connection and mapping, "test connection", "pull now", the
webhook URL to give to senders, and a sample body to try the mapping on. Thin views over
ingestion/services/connectors.py."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View

from cdp.core.htmx import notify
from cdp.core.views import CDPPageView, CDPViewMixin
from ingestion import readers
from ingestion.forms_connectors import DatabaseSettingsForm, MappingEditor, WebhookSampleForm, WebhookSettingsForm
from ingestion.models import Import, Source
from ingestion.services import connectors
from ingestion.services.imports import mapping_suggest, purpose_keys
from ingestion.views_imports import masked, preview_items, source_of

SETTINGS_PERMISSIONS = {"read": "ingestion.view_source", "write": "ingestion.change_source"}
EDITOR_EXTRA_ROWS = 2


def _editor_with_columns(editor: MappingEditor, columns: list[str], suggestion: dict) -> MappingEditor:
    """The posted editor, or the suggestion when nothing is mapped yet; columns not in the editor are added."""
    mapped = [row for row in editor.rows if row.target not in ("", "ignore") and row.source_field]
    if not mapped and suggestion.get("fields"):
        return MappingEditor.from_spec(suggestion, columns, fixed_fields=False, extra_rows=EDITOR_EXTRA_ROWS)
    spec, _ = editor.spec()
    spec["fields"] = spec["fields"] or []
    rebuilt = MappingEditor.from_spec(spec, columns, fixed_fields=False, extra_rows=EDITOR_EXTRA_ROWS)
    rebuilt.message_type, rebuilt.event, rebuilt.event_from = editor.message_type, editor.event, editor.event_from
    return rebuilt


# --- database sources --------------------------------------------------------------------------------------------

class DatabaseSettingsView(CDPPageView):
    template_name = "ingestion/database_settings.html"
    permission_required = SETTINGS_PERMISSIONS

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        source = kwargs.get("source") or source_of(self.kwargs["slug"], Source.Kind.DATABASE)
        config = connectors.DatabaseConfig.of(source)
        form = kwargs.get("form") or DatabaseSettingsForm(initial={
            "url": connectors.database_url_masked(config.url), "table": config.table, "query": config.query,
            "cursor_column": config.cursor_column, "interval_minutes": config.interval_minutes,
            "statement_timeout_seconds": config.statement_timeout_seconds})
        editor = kwargs.get("editor") or MappingEditor.from_spec(config.mapping, [], fixed_fields=False,
                                                                 extra_rows=EDITOR_EXTRA_ROWS)
        last = Import.objects.filter(source=source, kind=Import.Kind.DATABASE).first()
        context.update(
            source=source, config=config, form=form, editor=editor, editor_columns=kwargs.get("columns", []),
            probe=kwargs.get("probe"), mapped=kwargs.get("mapped", []),
            preview_url=reverse("ingestion:database-test", args=[source.slug]),
            last_run=last, last_cursor=connectors.cursor_display(connectors.database_last_cursor(source)),
            can_change=self.request.user.has_perm("ingestion.change_source"),
            configured=config.configured,
        )
        return context

    def post(self, request, slug):
        source = source_of(slug, Source.Kind.DATABASE)
        form = DatabaseSettingsForm(request.POST)
        editor = MappingEditor.from_post(request.POST, fixed_fields=False)
        spec = editor.validate()
        if not form.is_valid() or spec is None:
            messages.error(request, "The settings are not valid; see the marked fields.")
            return self.render_to_response(self.get_context_data(source=source, form=form, editor=editor),
                                           status=400)
        data = form.cleaned_data
        try:
            connectors.database_settings_save(
                source=source, url=data["url"], table=data["table"], query=data["query"],
                cursor_column=data["cursor_column"], interval_minutes=data["interval_minutes"],
                statement_timeout_seconds=data["statement_timeout_seconds"], mapping=spec, user=request.user)
        except connectors.ConnectorError as error:
            for name, problems in error.fields.items():
                if name in form.fields:
                    for problem in problems:
                        form.add_error(name, problem)
            editor.attach({k: v for k, v in error.fields.items() if k.startswith("mapping")})
            messages.error(request, error.message)
            return self.render_to_response(self.get_context_data(source=source, form=form, editor=editor),
                                           status=400)
        messages.success(request, "The database settings were saved. The URL's password is stored and not shown.")
        return redirect("ingestion:database-settings", slug=slug)


class DatabaseProbeView(DatabaseSettingsView):
    """POST (htmx): connect with the settings in the form, list the columns and first rows, suggest a mapping
    and show the messages those rows become. Nothing is saved."""

    permission_required = "ingestion.change_source"
    http_method_names = ["post"]
    partial = "workbench"

    def post(self, request, slug):
        source = source_of(slug, Source.Kind.DATABASE)
        form = DatabaseSettingsForm(request.POST)
        editor = MappingEditor.from_post(request.POST, fixed_fields=False)
        form.is_valid()
        data = {name: form.cleaned_data.get(name) for name in form.fields}
        config = connectors.DatabaseConfig(
            url=connectors.database_url_resolve(source, data.get("url") or ""), table=data.get("table") or "",
            query=connectors._clean_query(data.get("query") or ""), cursor_column=data.get("cursor_column") or "",
            interval_minutes=data.get("interval_minutes") or connectors.DEFAULT_INTERVAL_MINUTES,
            statement_timeout_seconds=min(data.get("statement_timeout_seconds") or 30, 30))
        probe = connectors.database_probe(config)
        if probe.columns and not request.POST.get("keep_editor"):
            editor = _editor_with_columns(editor, probe.columns, probe.mapping)
        spec = editor.validate()
        if "add_row" in request.POST:
            editor.errors = {}
        mapped = preview_items(request.user, [(f"Row {i + 1}", row, "") for i, row in enumerate(probe.rows)],
                               spec, source, config.collection)
        probe.rows = [masked(request.user, row) for row in probe.rows]
        return self.render_to_response(self.get_context_data(source=source, form=form, editor=editor, probe=probe,
                                                             columns=probe.columns, mapped=mapped))


class DatabasePullView(CDPViewMixin, View):
    """POST: pull now (queued on the ingestion queue; the imports list shows its progress)."""

    permission_required = "ingestion.change_source"
    http_method_names = ["post"]

    def post(self, request, slug):
        source = source_of(slug, Source.Kind.DATABASE)
        response = redirect("ingestion:database-settings", slug=slug)
        try:
            run = connectors.database_pull_enqueue(source=source, user=request.user)
        except connectors.ConnectorError as error:
            return notify(request, response, error.message, level="error")
        if request.htmx:  # the lists listen to importsChanged and reload themselves
            response = HttpResponse(status=204)
        if run.status == Import.Status.QUEUED:
            text = "A pull was queued; it shows below."
        else:
            text = f"The pull is {run.get_status_display().lower()}."
        return notify(request, response, text, events={"importsChanged": {"source": slug}})


class DatabaseResetView(CDPViewMixin, View):
    """POST: the next pull reads every row again (rows stored already are skipped as duplicates)."""

    permission_required = "ingestion.change_source"
    http_method_names = ["post"]

    def post(self, request, slug):
        source = source_of(slug, Source.Kind.DATABASE)
        connectors.database_cursor_reset(source=source, user=request.user)
        return notify(request, redirect("ingestion:database-settings", slug=slug),
                      "The next pull reads every row again; rows stored already are skipped.")


# --- webhook sources ---------------------------------------------------------------------------------------------

def webhook_url(request, source: Source) -> str:
    return request.build_absolute_uri(f"/v1/webhook/{source.slug}")


class WebhookSettingsView(CDPPageView):
    """The webhook URL to give to senders, the field mapping, and a sample body to try it on."""

    template_name = "ingestion/webhook_settings.html"
    permission_required = SETTINGS_PERMISSIONS

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        source = kwargs.get("source") or source_of(self.kwargs["slug"], Source.Kind.WEBHOOK)
        config = connectors.WebhookConfig.of(source)
        editor = kwargs.get("editor") or MappingEditor.from_spec(config.mapping, [], fixed_fields=False,
                                                                 extra_rows=EDITOR_EXTRA_ROWS)
        url = webhook_url(self.request, source)
        context.update(
            source=source, config=config, editor=editor, editor_columns=kwargs.get("columns", []),
            form=kwargs.get("form") or WebhookSettingsForm(initial={"records_path": config.records_path}),
            sample_form=kwargs.get("sample_form") or WebhookSampleForm(),
            mapped=kwargs.get("mapped", []), sample_error=kwargs.get("sample_error", ""),
            preview_url=reverse("ingestion:webhook-settings", args=[source.slug]),
            webhook_url=url, can_change=self.request.user.has_perm("ingestion.change_source"),
            rejected=source.messages.filter(status="rejected").count(),
            max_body_kb=connectors.WEBHOOK_MAX_BODY_BYTES // 1024, max_records=connectors.WEBHOOK_MAX_RECORDS,
        )
        return context

    def post(self, request, slug):
        source = source_of(slug, Source.Kind.WEBHOOK)
        form = WebhookSettingsForm(request.POST)
        sample_form = WebhookSampleForm(request.POST)
        editor = MappingEditor.from_post(request.POST, fixed_fields=False)
        action = request.POST.get("action", "")
        form.is_valid()
        records_path = form.cleaned_data.get("records_path", "") if form.is_valid() else ""
        if action != "save":
            return self._try(request, source, form, sample_form, editor, records_path)
        spec = editor.validate()
        if spec is None or not form.is_valid():
            messages.error(request, "The mapping is not valid; see the marked fields.")
            return self.render_to_response(self.get_context_data(source=source, form=form, editor=editor,
                                                                 sample_form=sample_form), status=400)
        try:
            connectors.webhook_settings_save(source=source, mapping=spec, records_path=records_path,
                                             user=request.user)
        except connectors.ConnectorError as error:
            editor.attach({k: v for k, v in error.fields.items() if k.startswith("mapping")})
            if "records_path" in error.fields:
                form.add_error("records_path", error.fields["records_path"][0])
            messages.error(request, error.message)
            return self.render_to_response(self.get_context_data(source=source, form=form, editor=editor,
                                                                 sample_form=sample_form), status=400)
        messages.success(request, "The webhook mapping was saved. Senders can post to the URL below.")
        return redirect("ingestion:webhook-settings", slug=slug)

    def _try(self, request, source, form, sample_form, editor, records_path):
        """htmx: the sample's fields (added to the editor) and the messages its records become; nothing saved."""
        self.partial = "workbench"
        sample_error, records, columns = "", [], []
        text = request.POST.get("sample", "").strip()
        if text:
            try:
                body = json.loads(text)
                records = connectors.webhook_records(body, records_path)
            except ValueError as error:
                sample_error = getattr(error, "message", None) or f"The sample is not valid JSON: {error}"
            for record in records[:20]:
                if isinstance(record, dict):
                    for path in readers.flatten_paths(record):
                        if path not in columns:
                            columns.append(path)
        columns = readers.leaf_paths(columns)
        if columns:
            dicts = [r for r in records[:20] if isinstance(r, dict)]
            editor = _editor_with_columns(editor, columns, mapping_suggest(columns, dicts, purposes=purpose_keys()))
        spec = editor.validate()
        if "add_row" in request.POST:
            editor.errors = {}
        mapped = preview_items(request.user, [
            (f"Record {i}", record if isinstance(record, dict) else None,
             "" if isinstance(record, dict) else f"a record is a JSON object, not a JSON {type(record).__name__}")
            for i, record in enumerate(records[:20])], spec, source, "webhook")
        return self.render_to_response(self.get_context_data(
            source=source, form=form, sample_form=sample_form, editor=editor, columns=columns, mapped=mapped,
            sample_error=sample_error))
