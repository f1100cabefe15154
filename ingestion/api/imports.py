"""The imports API: upload a file, preview it, set the mapping, start, follow the status, download the error
report, delete (with the file). Database pulls are imports too (kind "database"), read-only here.

    POST   /api/v1/imports/                 multipart: source (slug), file, [format, encoding, delimiter]
                                            (400 naming the problem for an empty file, no header, duplicate
                                            column names, or a file that is not UTF-8 without an encoding)
    GET    /api/v1/imports/?source=&status=&kind=
    GET    /api/v1/imports/{id}/            status and progress (rows read/stored/failed, percent, eta_seconds)
    GET    /api/v1/imports/{id}/preview/    the first rows, parsed, with their errors (?rows=, at most 100)
    PUT    /api/v1/imports/{id}/mapping/    {"mapping": {...}, "encoding"?, "delimiter"?}
    POST   /api/v1/imports/{id}/start/
    POST   /api/v1/imports/{id}/cancel/
    GET    /api/v1/imports/{id}/errors/     the error report (CSV; core.view_pii)
    DELETE /api/v1/imports/{id}/
"""

from __future__ import annotations

from typing import NoReturn

import django_filters
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from cdp.core.masking import can_view_pii
from cdp.core.permissions import PermissionMixin
from ingestion import readers
from ingestion.models import Import, Source
from ingestion.services import imports as services
from ingestion.views_imports import masked

MAX_PREVIEW_ROWS = 100


class ImportFilter(django_filters.FilterSet):
    source = django_filters.CharFilter(field_name="source__slug")

    class Meta:
        model = Import
        fields = ["source", "kind", "status"]


class ImportSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    percent = serializers.IntegerField(read_only=True, allow_null=True)
    eta_seconds = serializers.FloatField(read_only=True, allow_null=True)
    blocking = serializers.SerializerMethodField()
    error_report_url = serializers.SerializerMethodField()

    class Meta:
        model = Import
        fields = ["id", "source", "kind", "status", "error", "original_name", "size_bytes", "format", "encoding",
                  "delimiter", "columns", "problems", "blocking", "mapping", "rows_read", "rows_stored",
                  "rows_duplicate", "rows_failed", "rows_partial", "bytes_read", "percent", "eta_seconds",
                  "error_report_url",
                  "cursor_column", "cursor_start", "cursor_end", "file_erased_at", "created_by", "created_at",
                  "started_at", "finished_at"]
        read_only_fields = fields

    def get_blocking(self, imp) -> bool:
        return bool(imp.blocking_problems)

    def get_error_report_url(self, imp) -> str | None:
        if not imp.error_report:
            return None
        request = self.context.get("request")
        path = f"/api/v1/imports/{imp.pk}/errors/"
        return request.build_absolute_uri(path) if request else path


class ImportCreateSerializer(serializers.Serializer):
    source = serializers.SlugRelatedField(slug_field="slug", queryset=Source.objects.all())
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=["", *readers.FORMATS], required=False, default="")
    encoding = serializers.ChoiceField(choices=["", *readers.ENCODINGS], required=False, default="")
    delimiter = serializers.ChoiceField(choices=["", *readers.DELIMITERS], required=False, default="")


class ImportMappingSerializer(serializers.Serializer):
    mapping = serializers.JSONField()
    encoding = serializers.ChoiceField(choices=["", *readers.ENCODINGS], required=False, default="")
    delimiter = serializers.ChoiceField(choices=["", *readers.DELIMITERS], required=False, default="")


def _raise(problem: services.ImportProblem) -> NoReturn:
    raise ValidationError(problem.fields or {"non_field_errors": [problem.message]})


class ImportViewSet(PermissionMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                    GenericViewSet):
    """File imports and database pulls. Writes need ingestion.add_import / change_import / delete_import; the
    preview and the error report hold raw rows, so they also need core.view_pii (the preview is masked
    without it)."""

    queryset = Import.objects.select_related("source", "created_by")
    serializer_class = ImportSerializer
    filterset_class = ImportFilter
    ordering_fields = ["created_at", "id"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_permission_required(self, request):
        permissions = {
            "create": ("ingestion.add_import",),
            "mapping": ("ingestion.change_import",),
            "start": ("ingestion.change_import",),
            "cancel": ("ingestion.change_import",),
            "destroy": ("ingestion.delete_import",),
            "errors": ("ingestion.view_import", "core.view_pii"),
        }
        return permissions.get(getattr(self, "action", None), ("ingestion.view_import",))

    @extend_schema(request={"multipart/form-data": ImportCreateSerializer}, responses={201: ImportSerializer})
    def create(self, request):
        incoming = ImportCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            imp = services.import_create(source=data["source"], upload=data["file"], user=request.user,
                                         format=data["format"], encoding=data["encoding"],
                                         delimiter=data["delimiter"])
        except services.ImportProblem as problem:
            _raise(problem)
        if imp.blocking_problems:
            # Nothing can be done with such a file through the API: say why, and keep nothing.
            messages = [problem["message"] for problem in imp.blocking_problems]
            services.import_delete(imp=imp, user=request.user)
            raise ValidationError({"file": messages})
        return Response(ImportSerializer(imp, context={"request": request}).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.import_delete(imp=instance, user=self.request.user)

    @extend_schema(parameters=[OpenApiParameter("rows", int, description=f"How many rows (at most "
                                                                            f"{MAX_PREVIEW_ROWS}; 10 by default)")],
                   responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        """The first rows as read (with their errors) and, with a mapping set, the messages they become."""
        imp = self.get_object()
        try:
            rows = max(1, min(int(request.query_params.get("rows", services.PREVIEW_ROWS)), MAX_PREVIEW_ROWS))
        except ValueError:
            raise ValidationError({"rows": ["A whole number."]}) from None
        if imp.kind != Import.Kind.FILE:
            raise ValidationError({"kind": ["Only a file import has a preview."]})
        preview = services.import_preview(imp, rows=rows)
        user = request.user
        return Response({
            "columns": preview.columns,
            "problems": preview.problems,
            "masked": not can_view_pii(user),
            "rows": [{"row": row.line, "values": masked(user, row.values), "error": row.error,
                      "column": row.column, "message": masked(user, row.message),
                      "mapping_error": row.mapping_error, "warnings": masked(user, row.warnings)}
                     for row in preview.rows],
        })

    @extend_schema(request=ImportMappingSerializer, responses={200: ImportSerializer})
    @action(detail=True, methods=["put", "post"])
    def mapping(self, request, pk=None):
        """Set the mapping spec (and the encoding or delimiter, if the detected ones are wrong)."""
        imp = self.get_object()
        incoming = ImportMappingSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        if not isinstance(data["mapping"], dict):
            raise ValidationError({"mapping": ["A JSON object: {\"type\": ..., \"fields\": [...]}."]})
        try:
            imp = services.import_configure(imp=imp, mapping=data["mapping"], encoding=data["encoding"],
                                            delimiter=data["delimiter"], user=request.user)
        except services.ImportProblem as problem:
            _raise(problem)
        return Response(ImportSerializer(imp, context={"request": request}).data)

    @extend_schema(request=None, responses={202: ImportSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Queue the import; follow it with GET /imports/{id}/."""
        try:
            imp = services.import_start(imp=self.get_object(), user=request.user)
        except services.ImportProblem as problem:
            _raise(problem)
        imp.refresh_from_db()
        return Response(ImportSerializer(imp, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: ImportSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        try:
            imp = services.import_cancel(imp=self.get_object(), user=request.user)
        except services.ImportProblem as problem:
            _raise(problem)
        return Response(ImportSerializer(imp, context={"request": request}).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def errors(self, request, pk=None):
        """The per-row error report as CSV: row, column, message, raw."""
        imp = self.get_object()
        if not imp.error_report or not default_storage.exists(imp.error_report.name):
            raise Http404("This import has no error report.")
        return FileResponse(default_storage.open(imp.error_report.name, "rb"), as_attachment=True,
                            filename=f"import-{imp.pk}-errors.csv", content_type="text/csv; charset=utf-8")
