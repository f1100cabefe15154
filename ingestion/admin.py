import json

from django.contrib import admin
from django.utils.html import format_html

from ingestion.models import InboxCount, InboxMessage, Source
from ingestion.services.connectors import source_settings_public


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "channel", "enabled", "write_key_prefix", "created_at"]
    list_filter = ["kind", "enabled"]
    # Settings may hold a database URL with its password: the admin shows them masked and never edits them
    # (the source pages and the sources API do, keeping a masked password as it was).
    exclude = ["settings"]
    readonly_fields = ["write_key_hash", "write_key_prefix", "settings_masked"]
    search_fields = ["name", "slug"]

    @admin.display(description="Settings")
    def settings_masked(self, source):
        return format_html("<pre>{}</pre>", json.dumps(source_settings_public(source.settings), indent=2))


@admin.register(InboxMessage)
class InboxMessageAdmin(admin.ModelAdmin):
    list_display = ["received_at", "source", "type", "message_id", "status", "attempts"]
    list_filter = ["status", "type", "source"]
    search_fields = ["message_id"]
    readonly_fields = ["received_at", "processed_at"]


@admin.register(InboxCount)
class InboxCountAdmin(admin.ModelAdmin):
    """The live counts behind the sources' stats: kept by the services, so shown read-only."""

    list_display = ["source", "day", "shard", "processed", "rejected"]
    list_filter = ["source"]
    readonly_fields = ["source", "day", "shard", "processed", "rejected"]

    def has_add_permission(self, request):
        return False


# Tracking plans, violations and transformations (ingestion/admin_plans.py) and imports (ingestion/admin_imports.py)
# register themselves.
from ingestion import admin_imports, admin_plans  # noqa: E402, F401
