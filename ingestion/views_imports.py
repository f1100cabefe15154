"""The connectors UI: file imports (upload, preview, mapping, progress, error report), and the settings pages of
database and webhook sources. Thin views: the services in ingestion/services/imports.py and connectors.py decide.

The source page includes templates/ingestion/_source_imports.html, which loads the imports list from
``SourceImportsView`` (and polls it while an import runs).
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views import View

from cdp.core.htmx import notify
from cdp.core.masking import can_view_pii, mask_text
from cdp.core.views import CDPPageView, CDPViewMixin
from ingestion.forms_connectors import ImportUploadForm, MappingEditor, ReadOptionsForm
from ingestion.models import Import, Source
from ingestion.services import imports as services

IMPORTS_ON_SOURCE_PAGE = 10
POLL_SECONDS = 1


def source_of(slug: str, kind: str | None = None) -> Source:
    source = get_object_or_404(Source, slug=slug)
    if kind and source.kind != kind:
        raise Http404(f"{source.slug} is not a {kind} source")
    return source


def import_of(source: Source, pk: int) -> Import:
    return get_object_or_404(Import.objects.select_related("source", "created_by"), pk=pk, source=source)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def progress_of(imp: Import) -> dict:
    rate = imp.rows_per_second
    return {"percent": imp.percent, "eta": duration(imp.eta_seconds), "elapsed": duration(imp.elapsed_seconds),
            "rate": int(rate) if rate else None}


def masked(user, value):
    """Values of a preview as this user may see them (masked without core.view_pii)."""
    if can_view_pii(user):
        return value
    if isinstance(value, dict):
        return {key: masked(user, item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(user, item) for item in value]
    if isinstance(value, str) and value:
        return mask_text(value)
    return value


def _json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def preview_items(user, records: list[tuple[str, dict | None, str]], spec: dict | None, source: Source,
                  collection: str) -> list[dict]:
    """Each record as the message it becomes (or the error it gets, and the values left out of it), for the
    mapping editor's preview."""
    from ingestion.mapping import MappingError, mapping_apply

    items = []
    for label, record, error in records:
        item = {"label": label, "message": "", "error": error, "warnings": []}
        if record is not None and spec and not error:
            problems: list[MappingError] = []
            try:
                item["message"] = _json(masked(user, mapping_apply(spec, record, source_slug=source.slug,
                                                                   collection=collection, problems=problems)))
            except MappingError as problem:
                item["error"] = services.problem_text(problem)
            item["warnings"] = [masked(user, services.problem_text(problem)) for problem in problems]
        items.append(item)
    return items


# --- the imports of a source -------------------------------------------------------------------------------------

class SourceImportsView(CDPPageView):
    """The imports of a source (file imports and database pulls), newest first. The source page loads the
    ``imports`` partial; it polls itself while an import is queued or running."""

    template_name = "ingestion/import_list.html"
    partial = "imports"
    permission_required = "ingestion.view_import"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        source = source_of(self.kwargs["slug"])
        recent = list(Import.objects.filter(source=source).select_related("created_by")[:IMPORTS_ON_SOURCE_PAGE])
        for imp in recent:
            imp.progress = progress_of(imp)
        context.update(source=source, imports=recent, total=Import.objects.filter(source=source).count(),
                       active=any(imp.is_active for imp in recent), poll_seconds=POLL_SECONDS * 2,
                       can_upload=source.kind == Source.Kind.FILE and self.request.user.has_perm(
                           "ingestion.add_import"),
                       can_download=can_view_pii(self.request.user))
        return context


class ImportUploadView(CDPPageView):
    template_name = "ingestion/import_upload.html"
    permission_required = "ingestion.add_import"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["source"] = source_of(self.kwargs["slug"], Source.Kind.FILE)
        context.setdefault("form", ImportUploadForm())
        return context

    def post(self, request, slug):
        source = source_of(slug, Source.Kind.FILE)
        form = ImportUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        try:
            imp = services.import_create(source=source, upload=form.cleaned_data["file"], user=request.user,
                                         encoding=form.cleaned_data["encoding"], format=form.cleaned_data["format"])
        except services.ImportProblem as problem:
            form.add_error(None, problem.message)
            return self.render_to_response(self.get_context_data(form=form), status=400)
        if imp.blocking_problems:
            messages.warning(request, f"{imp.original_name} was uploaded, but it cannot be imported as it is. "
                                      "See the problems below.")
        else:
            messages.success(request, f"{imp.original_name} was uploaded. Check the preview and map the columns.")
        return redirect("ingestion:import-detail", slug=source.slug, pk=imp.pk)


class ImportDetailView(CDPPageView):
    """One import: its file's problems, a preview, the mapping editor, the progress (polled) and the result."""

    template_name = "ingestion/import_detail.html"
    permission_required = "ingestion.view_import"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        source = source_of(self.kwargs["slug"])
        imp = kwargs.get("imp") or import_of(source, self.kwargs["pk"])
        user = self.request.user
        can_change = user.has_perm("ingestion.change_import")
        editable = imp.kind == Import.Kind.FILE and imp.status in (Import.Status.UPLOADED, Import.Status.READY)
        context.update(source=source, imp=imp, progress=progress_of(imp), can_change=can_change,
                       can_delete=user.has_perm("ingestion.delete_import"), editable=editable and can_change,
                       can_download=can_view_pii(user), poll_seconds=POLL_SECONDS)
        if imp.kind == Import.Kind.FILE and imp.file and imp.status in (Import.Status.UPLOADED, Import.Status.READY):
            editor = kwargs.get("editor")
            if editor is None:
                editor = MappingEditor.from_spec(imp.mapping, imp.columns, fixed_fields=imp.format == "csv")
                spec = editor.validate() if imp.mapping else None
            else:
                spec = editor.spec()[0] if not editor.errors else None
            preview = services.import_preview(imp, mapping=spec or {})
            context.update(
                read_options=ReadOptionsForm(initial={"encoding": imp.encoding, "delimiter": imp.delimiter}),
                preview=preview,
                preview_rows=[{"line": row.line, "values": masked(user, row.values), "error": row.error,
                               "column": row.column} for row in preview.rows],
                editor=editor,
                editor_columns=imp.columns,
                preview_url=reverse("ingestion:import-mapping", args=[source.slug, imp.pk]),
                mapped=[{"label": f"Row {row.line}", "error": row.error or row.mapping_error,
                         "message": _json(masked(user, row.message)) if row.message else "",
                         "warnings": masked(user, row.warnings)}
                        for row in preview.rows] if spec else [],
            )
        if imp.error_report and imp.is_finished and can_view_pii(user):
            context["report_rows"] = services.error_report_rows(imp, limit=services.REPORT_PREVIEW_ROWS + 1)
            context["report_more"] = len(context["report_rows"]) > services.REPORT_PREVIEW_ROWS
            del context["report_rows"][services.REPORT_PREVIEW_ROWS:]
        return context


class ImportProgressView(ImportDetailView):
    """The progress partial alone (htmx polling every second while the import runs). The poll that sees the
    import finished reloads the page (HX-Refresh), which then shows the result and the error report."""

    partial = "progress"

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        if self.request.htmx and context["imp"].is_finished and self.request.GET.get("running"):
            response["HX-Refresh"] = "true"
        return response


class ImportReadOptionsView(CDPViewMixin, View):
    """POST: read the file again with the encoding and delimiter the user chose."""

    permission_required = "ingestion.change_import"
    http_method_names = ["post"]

    def post(self, request, slug, pk):
        source = source_of(slug, Source.Kind.FILE)
        imp = import_of(source, pk)
        form = ReadOptionsForm(request.POST)
        form.is_valid()
        try:
            services.import_reinspect(imp=imp, encoding=form.cleaned_data.get("encoding", ""),
                                      delimiter=form.cleaned_data.get("delimiter", ""))
        except services.ImportProblem as problem:
            messages.error(request, problem.message)
            return redirect("ingestion:import-detail", slug=slug, pk=pk)
        if imp.blocking_problems:
            messages.warning(request, "The file was read again; it still has problems.")
        else:
            messages.success(request, "The file was read again. Check the preview and the mapping.")
        return redirect("ingestion:import-detail", slug=slug, pk=pk)


class ImportMappingView(ImportDetailView):
    """POST from the mapping editor. htmx on every change: the editor again, with its errors and the messages the
    first rows become (nothing saved). A submit: save the mapping ("save") and start the import ("start")."""

    permission_required = "ingestion.change_import"
    http_method_names = ["post"]
    partial = "workbench"

    def post(self, request, slug, pk):
        source = source_of(slug, Source.Kind.FILE)
        imp = import_of(source, pk)
        editor = MappingEditor.from_post(request.POST, fixed_fields=imp.format == "csv", columns=imp.columns)
        spec = editor.validate()
        action = request.POST.get("action", "")
        if action not in ("save", "start") or spec is None:
            if action and spec is None:
                messages.error(request, "The mapping is not valid; see the marked fields.")
                self.partial = None
            return self.render_to_response(self.get_context_data(imp=imp, editor=editor),
                                           status=400 if action and spec is None else 200)
        try:
            imp = services.import_configure(imp=imp, mapping=spec, user=request.user)
            if action == "start":
                imp = services.import_start(imp=imp, user=request.user)
        except services.ImportProblem as problem:
            editor.attach(problem.fields)
            messages.error(request, problem.message)
            self.partial = None
            return self.render_to_response(self.get_context_data(imp=imp, editor=editor), status=400)
        messages.success(request, "The import has started." if action == "start" else "The mapping was saved.")
        return redirect("ingestion:import-detail", slug=slug, pk=pk)


class ImportActionView(CDPViewMixin, View):
    """POST: start, cancel or delete an import."""

    http_method_names = ["post"]
    action = ""
    permission_required = "ingestion.change_import"

    def post(self, request, slug, pk):
        source = source_of(slug)
        imp = import_of(source, pk)
        try:
            if self.action == "start":
                services.import_start(imp=imp, user=request.user)
                text = f"The import of {imp.original_name} has started."
            elif self.action == "cancel":
                services.import_cancel(imp=imp, user=request.user)
                text = f"The import of {imp.original_name} was cancelled; the rows stored so far stay."
            else:
                services.import_delete(imp=imp, user=request.user)
                text = f"The import {imp} and its files were deleted."
        except services.ImportProblem as problem:
            messages.error(request, problem.message)
            return redirect("ingestion:import-detail", slug=slug, pk=pk)
        if self.action == "delete":
            response = redirect("ingestion:source-detail", slug=slug)
        else:
            response = redirect("ingestion:import-detail", slug=slug, pk=pk)
        return notify(request, response, text, events={"importsChanged": {"source": slug}})


class ImportDeleteView(ImportActionView):
    action = "delete"
    permission_required = "ingestion.delete_import"


class ImportErrorReportView(CDPViewMixin, View):
    """GET: the error report as a CSV download (the raw rows are personal data: core.view_pii is needed)."""

    permission_required = ("ingestion.view_import", "core.view_pii")

    def get(self, request, slug, pk):
        imp = import_of(source_of(slug), pk)
        if not imp.error_report or not default_storage.exists(imp.error_report.name):
            raise Http404("This import has no error report.")
        if not can_view_pii(request.user):
            raise PermissionDenied
        stem = (imp.original_name.rsplit(".", 1)[0] or f"import-{imp.pk}")[:80]
        return FileResponse(default_storage.open(imp.error_report.name, "rb"), as_attachment=True,
                             filename=f"{stem}-errors.csv", content_type="text/csv; charset=utf-8")
