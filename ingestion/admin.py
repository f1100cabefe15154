from django.contrib import admin

from ingestion.models import InboxMessage, Source


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "channel", "enabled", "write_key_prefix", "created_at"]
    list_filter = ["kind", "enabled"]
    readonly_fields = ["write_key_hash", "write_key_prefix"]
    search_fields = ["name", "slug"]


@admin.register(InboxMessage)
class InboxMessageAdmin(admin.ModelAdmin):
    list_display = ["received_at", "source", "type", "message_id", "status", "attempts"]
    list_filter = ["status", "type", "source"]
    search_fields = ["message_id"]
    readonly_fields = ["received_at", "processed_at"]


# Tracking plans, violations and transformations (ingestion/admin_plans.py) and imports (ingestion/admin_imports.py)
# register themselves.
from ingestion import admin_imports, admin_plans  # noqa: E402, F401
