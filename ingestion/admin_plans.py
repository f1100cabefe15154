"""Admin of tracking plans, violations and transformations. Saves go through the services, which check the
schemas and steps and bump the version."""

from django import forms
from django.contrib import admin

from ingestion.models import PlanViolation, SourceTransformation, TrackingPlan
from ingestion.services import plans as plan_services
from ingestion.services import transforms as transform_services


class TrackingPlanAdminForm(forms.ModelForm):
    class Meta:
        model = TrackingPlan
        fields = ["source", "mode", "unplanned", "events", "identify_schema"]

    def clean(self):
        data = super().clean()
        try:
            plan_services.plan_validate(mode=data.get("mode"), unplanned=data.get("unplanned"),
                                        events=data.get("events") or {}, identify_schema=data.get("identify_schema"))
        except plan_services.PlanError as error:
            field = error.field.partition(".")[0]
            self.add_error(field if field in self.fields else None, str(error))
        return data


@admin.register(TrackingPlan)
class TrackingPlanAdmin(admin.ModelAdmin):
    form = TrackingPlanAdminForm
    list_display = ["source", "mode", "unplanned", "version", "updated_at"]
    list_filter = ["mode", "unplanned"]
    search_fields = ["source__name", "source__slug"]

    def save_model(self, request, obj, form, change):
        saved = plan_services.tracking_plan_save(
            source=obj.source, mode=obj.mode, unplanned=obj.unplanned, events=obj.events or {},
            identify_schema=obj.identify_schema, actor=request.user)
        obj.pk, obj.version, obj.updated_at = saved.pk, saved.version, saved.updated_at


@admin.register(PlanViolation)
class PlanViolationAdmin(admin.ModelAdmin):
    list_display = ["source", "schema", "path", "message", "count", "blocked", "last_seen"]
    list_filter = ["source"]
    search_fields = ["schema", "path", "message"]
    readonly_fields = ["source", "schema", "path", "message", "count", "blocked", "first_seen", "last_seen",
                       "examples"]

    def has_add_permission(self, request):
        return False


class SourceTransformationAdminForm(forms.ModelForm):
    class Meta:
        model = SourceTransformation
        fields = ["source", "steps", "enabled"]

    def clean_steps(self):
        steps = self.cleaned_data["steps"]
        try:
            transform_services.transforms_validate(steps)
        except transform_services.TransformError as error:
            raise forms.ValidationError(str(error)) from None
        return steps


@admin.register(SourceTransformation)
class SourceTransformationAdmin(admin.ModelAdmin):
    form = SourceTransformationAdminForm
    list_display = ["source", "enabled", "version", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["source__name", "source__slug"]

    def save_model(self, request, obj, form, change):
        saved = transform_services.transformation_save(source=obj.source, steps=obj.steps, enabled=obj.enabled,
                                                       actor=request.user)
        obj.pk, obj.version, obj.updated_at = saved.pk, saved.version, saved.updated_at
