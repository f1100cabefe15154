from django import forms
from django.contrib import admin, messages

from profiles.models import (
    ComputedTrait,
    ComputedValue,
    Event,
    Identity,
    IdentityRule,
    InsightModel,
    MatchCandidate,
    MatchKey,
    MatchRule,
    Merge,
    MergeRefusal,
    NeverMerge,
    Note,
    Product,
    ProductAffinity,
    Profile,
    TraitPolicy,
    TraitValue,
)
from profiles.services.sensitive import (
    ClassificationInvalid,
    trait_classification_check,
    trait_policy_delete,
    trait_policy_save,
)


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0
    fields = ["type", "value", "flagged", "raw_value", "source", "first_seen_at"]
    readonly_fields = ["first_seen_at"]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["id", "display_name", "merged_into", "first_seen_at", "last_seen_at"]
    date_hierarchy = "last_seen_at"
    raw_id_fields = ["merged_into"]
    readonly_fields = ["trait_sources"]
    inlines = [IdentityInline]


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ["type", "value", "flagged", "profile", "source", "first_seen_at"]
    list_filter = ["type", "flagged", "source"]
    search_fields = ["value", "raw_value"]
    raw_id_fields = ["profile"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "type", "name", "channel", "profile", "source"]
    list_filter = ["type", "channel", "source"]
    search_fields = ["name", "message_id"]
    raw_id_fields = ["profile"]
    date_hierarchy = "timestamp"


@admin.register(IdentityRule)
class IdentityRuleAdmin(admin.ModelAdmin):
    list_display = ["type", "priority", "max_per_profile", "unique_per_profile"]
    list_editable = ["priority", "max_per_profile", "unique_per_profile"]


class TraitPolicyForm(forms.ModelForm):
    """Checks the classification through the service (an identifier cannot be sensitive, ...), at its field."""

    class Meta:
        model = TraitPolicy
        fields = ["trait", "strategy", "source_priority", "classification"]

    def clean(self):
        data = super().clean()
        if "trait" in data:
            try:
                trait_classification_check(trait=data["trait"], classification=data.get("classification") or "",
                                           strategy=data.get("strategy"))
            except ClassificationInvalid as error:
                self.add_error(error.field, error.message)
        return data


@admin.register(TraitPolicy)
class TraitPolicyAdmin(admin.ModelAdmin):
    """Survivorship and classification per trait. Classifying a trait as sensitive (or no longer) encrypts (or
    decrypts) its stored values in the background (profiles.services.sensitive)."""

    form = TraitPolicyForm
    list_display = ["trait", "strategy", "classification", "source_priority"]
    list_filter = ["strategy", "classification"]
    search_fields = ["trait"]

    def save_model(self, request, obj, form, change):
        sensitive_before = change and form.initial.get("classification") == TraitPolicy.Classification.SENSITIVE
        trait_policy_save(policy=obj)
        if sensitive_before != (obj.classification == TraitPolicy.Classification.SENSITIVE):
            messages.info(request, f"The stored values of {obj.trait!r} are being "
                                   f"{'encrypted' if not sensitive_before else 'decrypted'} in the background.")

    def delete_model(self, request, obj):
        trait_policy_delete(policy=obj)

    def delete_queryset(self, request, queryset):
        for policy in queryset:
            trait_policy_delete(policy=policy)


@admin.register(TraitValue)
class TraitValueAdmin(admin.ModelAdmin):
    list_display = ["profile", "name", "source", "observed_at", "seen_count"]
    list_filter = ["source"]
    search_fields = ["name"]
    raw_id_fields = ["profile"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Journals are written by services only (merges are undone from the merge list, not edited here)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Merge)
class MergeAdmin(ReadOnlyAdmin):
    list_display = ["id", "winner", "loser_id", "reason", "rule", "score", "created_at", "undone_at"]
    list_filter = ["reason", "created_at"]
    search_fields = ["rule"]


@admin.register(MergeRefusal)
class MergeRefusalAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "profile_a_id", "profile_b_id", "rule", "reason"]
    list_filter = ["rule"]


@admin.register(NeverMerge)
class NeverMergeAdmin(admin.ModelAdmin):
    list_display = ["profile_a", "profile_b", "created_by", "created_at"]
    raw_id_fields = ["profile_a", "profile_b"]
    readonly_fields = ["created_by"]


@admin.register(MatchRule)
class MatchRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "enabled", "auto_merge_threshold", "review_threshold", "updated_at"]
    list_filter = ["enabled"]


@admin.register(MatchCandidate)
class MatchCandidateAdmin(admin.ModelAdmin):
    list_display = ["profile_a", "profile_b", "score", "status", "rule", "decided_by", "created_at"]
    list_filter = ["status", "rule"]
    raw_id_fields = ["profile_a", "profile_b"]
    readonly_fields = ["decided_by", "decided_at"]


@admin.register(MatchKey)
class MatchKeyAdmin(admin.ModelAdmin):
    list_display = ["profile", "key"]
    search_fields = ["key"]
    raw_id_fields = ["profile"]


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["created_at", "profile", "kind", "channel", "author"]
    list_filter = ["kind", "channel"]
    raw_id_fields = ["profile"]
    readonly_fields = ["author"]


@admin.register(ComputedTrait)
class ComputedTraitAdmin(ReadOnlyAdmin):
    """Computed traits are defined at /profiles/computed-traits/ and in the API, which check a definition and
    derive its value type; the admin shows them."""

    list_display = ["key", "name", "aggregation", "value_type", "enabled", "stock", "last_run_at", "last_run_rows"]
    list_filter = ["aggregation", "value_type", "enabled", "stock"]
    search_fields = ["key", "name"]


@admin.register(ComputedValue)
class ComputedValueAdmin(ReadOnlyAdmin):
    """Values are written by the recompute and refresh services only."""

    list_display = ["trait", "profile", "value_number", "value_text", "value_time", "computed_at"]
    list_filter = ["trait"]
    raw_id_fields = ["profile"]


@admin.register(InsightModel)
class InsightModelAdmin(ReadOnlyAdmin):
    """Runs are made by the insight services (nightly, on profile changes, "Run now"); the admin shows them."""

    list_display = ["started_at", "kind", "status", "method", "training_rows", "scored_rows", "train_seconds",
                    "score_seconds"]
    list_filter = ["kind", "status"]


@admin.register(Product)
class ProductAdmin(ReadOnlyAdmin):
    """The catalog as the events describe it, rebuilt by the recommendations run."""

    list_display = ["product_id", "name", "category", "price", "views", "purchases", "buyers"]
    list_filter = ["category"]
    search_fields = ["product_id", "name"]


@admin.register(ProductAffinity)
class ProductAffinityAdmin(ReadOnlyAdmin):
    """Item-to-item similarities, rebuilt by the recommendations run."""

    list_display = ["product", "other", "score", "co_purchases", "co_views"]
    search_fields = ["product", "other"]
