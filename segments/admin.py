from django.contrib import admin

from segments.models import Membership, Segment


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["segment", "profile", "entered_at", "exited_at"]
    list_filter = ["segment"]
    raw_id_fields = ["profile"]
