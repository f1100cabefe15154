from django.contrib import admin

from profiles.models import Event, Identity, Profile


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0
    fields = ["type", "value", "source", "first_seen_at"]
    readonly_fields = ["first_seen_at"]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["id", "display_name", "first_seen_at", "last_seen_at"]
    date_hierarchy = "last_seen_at"
    inlines = [IdentityInline]


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ["type", "value", "profile", "source", "first_seen_at"]
    list_filter = ["type", "source"]
    search_fields = ["value"]
    raw_id_fields = ["profile"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "type", "name", "channel", "profile", "source"]
    list_filter = ["type", "channel", "source"]
    search_fields = ["name", "message_id"]
    raw_id_fields = ["profile"]
    date_hierarchy = "timestamp"
