"""Admin of imports (file imports and database pulls): read-only; uploads, mapping and runs go through the UI, the
API or manage.py import_file, whose services keep the files and the error reports in step."""

from django.contrib import admin

from ingestion.models import Import


@admin.register(Import)
class ImportAdmin(admin.ModelAdmin):
    list_display = ["created_at", "source", "kind", "original_name", "status", "rows_read", "rows_stored",
                    "rows_failed"]
    list_filter = ["kind", "status", "source"]
    search_fields = ["original_name"]
    readonly_fields = [field.name for field in Import._meta.get_fields() if field.concrete]

    def has_add_permission(self, request):
        return False
