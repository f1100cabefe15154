from django.contrib import admin

from activation.models import Activation, Destination


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "enabled", "created_at"]
    list_filter = ["kind", "enabled"]


@admin.register(Activation)
class ActivationAdmin(admin.ModelAdmin):
    list_display = ["name", "segment", "destination", "purpose", "schedule", "enabled"]
    list_filter = ["schedule", "enabled", "destination"]
