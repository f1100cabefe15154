from django.contrib import admin

from segments.models import Membership, Segment, SegmentSize


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "size", "last_refreshed_at", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["size", "last_refreshed_at", "last_refresh_ms"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["segment", "profile", "entered_at", "exited_at"]
    list_filter = ["segment"]
    raw_id_fields = ["profile"]


@admin.register(SegmentSize)
class SegmentSizeAdmin(admin.ModelAdmin):
    """The daily sizes are written by refreshes and re-checks; the admin only shows them."""

    list_display = ["segment", "day", "size", "entered", "exited"]
    list_filter = ["segment"]
    date_hierarchy = "day"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
