from django.contrib import admin

from consent.models import (
    ConsentCategory,
    ConsentRecord,
    DataSubjectRequest,
    Purpose,
    RequestStep,
    RetentionPolicy,
    RetentionRun,
    SuppressedIdentifier,
    SuppressionHit,
)


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


@admin.register(ConsentCategory)
class ConsentCategoryAdmin(admin.ModelAdmin):
    list_display = ["category", "purpose"]
    search_fields = ["category"]


class RequestStepInline(admin.TabularInline):
    model = RequestStep
    extra = 0
    can_delete = False
    fields = ["at", "actor_name", "action", "detail"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(admin.ModelAdmin):
    """Read-only: requests are handled in the privacy UI and API, where every step is on the request's trail."""

    list_display = ["id", "kind", "status", "identifier_type", "received_at", "due_at", "completed_at", "reference"]
    list_filter = ["kind", "status"]
    search_fields = ["reference"]
    inlines = [RequestStepInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SuppressedIdentifier)
class SuppressedIdentifierAdmin(admin.ModelAdmin):
    list_display = ["created_at", "identity_type", "request"]
    list_filter = ["identity_type"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SuppressionHit)
class SuppressionHitAdmin(admin.ModelAdmin):
    list_display = ["day", "source", "count"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ["category", "scope", "days", "enabled", "updated_at"]
    list_filter = ["category", "enabled"]


@admin.register(RetentionRun)
class RetentionRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "finished_at", "status", "trigger", "total"]
    list_filter = ["status"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RequestStep)
class RequestStepAdmin(admin.ModelAdmin):
    list_display = ["at", "request", "actor_name", "action"]
    list_filter = ["action"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
