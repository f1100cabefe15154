from django.contrib import admin

from activation.models import Activation, Delivery, DeliveryItem, Destination, Offer, Sync, SyncMember


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    """``secrets`` is not editable and not listed: a secret is shown once, when it is made, and never again."""

    list_display = ["name", "kind", "enabled", "last_test_ok", "created_at"]
    list_filter = ["kind", "enabled"]
    readonly_fields = ["last_tested_at", "last_test_ok", "last_test_message"]


@admin.register(Activation)
class ActivationAdmin(admin.ModelAdmin):
    list_display = ["name", "segment", "destination", "purpose", "schedule", "enabled", "last_sync_at"]
    list_filter = ["schedule", "enabled", "destination"]
    readonly_fields = ["last_sync_at", "last_good_sync_at"]


@admin.register(Sync)
class SyncAdmin(admin.ModelAdmin):
    list_display = ["id", "activation", "trigger", "status", "started_at", "added", "changed", "removed",
                    "skipped_consent", "sent", "failed"]
    list_filter = ["status", "trigger"]
    raw_id_fields = ["activation", "started_by"]


@admin.register(SyncMember)
class SyncMemberAdmin(admin.ModelAdmin):
    list_display = ["activation", "profile", "sent_at"]
    raw_id_fields = ["activation", "profile"]


class DeliveryItemInline(admin.TabularInline):
    model = DeliveryItem
    raw_id_fields = ["profile"]
    extra = 0


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "destination", "activation", "action", "status", "item_count", "attempts", "created_at"]
    list_filter = ["status", "action", "destination"]
    raw_id_fields = ["activation", "sync"]
    readonly_fields = ["idempotency_key"]
    inlines = [DeliveryItemInline]


@admin.register(DeliveryItem)
class DeliveryItemAdmin(admin.ModelAdmin):
    list_display = ["id", "delivery", "profile", "change", "delivered_at"]
    list_filter = ["change"]
    raw_id_fields = ["delivery", "profile"]


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    list_display = ["name", "segment", "purpose", "priority", "valid_from", "valid_until", "enabled"]
    list_filter = ["enabled", "purpose"]
    raw_id_fields = ["created_by"]
