from django.contrib import admin

from consent.models import ConsentRecord, Purpose


@admin.register(Purpose)
class PurposeAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "legal_basis"]
    search_fields = ["key", "name"]


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    """Consent records are append-only: they can be added, never edited."""

    list_display = ["recorded_at", "profile", "purpose", "status", "source"]
    list_filter = ["purpose", "status", "source"]
    raw_id_fields = ["profile"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
