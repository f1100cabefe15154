from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cdp.core import profile_panels
from cdp.core.api.serializers import PIIDataField, PIIField, PIITraitsField
from cdp.core.masking import can_view_pii, mask_for
from profiles.models import Event, Identity, Merge, Note, Product, Profile

IDENTITY_MASK = {"email": "email", "phone": "phone"}


def _user(serializer):
    request = serializer.context.get("request")
    return getattr(request, "user", None)


class IdentitySerializer(serializers.ModelSerializer):
    value = serializers.SerializerMethodField()
    raw_value = serializers.SerializerMethodField()

    class Meta:
        model = Identity
        fields = ["id", "profile", "type", "value", "flagged", "raw_value", "source", "first_seen_at",
                  "last_seen_at"]

    def get_value(self, identity) -> str:
        return mask_for(_user(self), identity.value, IDENTITY_MASK.get(identity.type, "text"))

    def get_raw_value(self, identity) -> str:
        return mask_for(_user(self), identity.raw_value, IDENTITY_MASK.get(identity.type, "text"))


class ProfileSerializer(serializers.ModelSerializer):
    traits = PIITraitsField()
    display_name = PIIField(kind="name")

    class Meta:
        model = Profile
        fields = ["id", "display_name", "traits", "first_seen_at", "last_seen_at", "created_at", "updated_at"]


class SegmentMembershipSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    entered_at = serializers.DateTimeField()


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "Why each trait won: name -> {source, observed_at, strategy, why}."})
class TraitSourcesField(serializers.Field):
    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return value or {}


class ProfileDetailSerializer(ProfileSerializer):
    """A profile with its golden record's lineage, identities, segments and consent. Segments and consent come
    from the apps above profiles through cdp.core.profile_panels (profiles imports neither): ``null`` when the
    app is not installed or the user may not see it."""

    identities = IdentitySerializer(many=True, read_only=True)
    trait_sources = TraitSourcesField()
    segments = serializers.SerializerMethodField()
    consent = serializers.SerializerMethodField()
    computed = serializers.SerializerMethodField()
    insights = serializers.SerializerMethodField()
    timeline_url = serializers.SerializerMethodField()

    class Meta(ProfileSerializer.Meta):
        fields = [*ProfileSerializer.Meta.fields, "trait_sources", "identities", "segments", "consent", "computed",
                  "insights", "timeline_url"]

    @extend_schema_field(SegmentMembershipSerializer(many=True, allow_null=True))
    def get_segments(self, profile):
        data = profile_panels.panel_data("segments", profile, _user(self))
        return None if data is None else SegmentMembershipSerializer(data, many=True).data

    @extend_schema_field({"type": "object", "nullable": True, "additionalProperties": {"type": "string"},
                          "description": "The current consent status per purpose key."})
    def get_consent(self, profile):
        return profile_panels.panel_data("consent", profile, _user(self))

    @extend_schema_field({"type": "object", "nullable": True, "additionalProperties": True,
                          "description": "The value of each enabled computed trait by key (null: no value): numbers, "
                                         "text, ISO times, and whole days for days_since traits."})
    def get_computed(self, profile):
        return profile_panels.panel_data("computed", profile, _user(self))

    @extend_schema_field({"type": "object", "nullable": True, "additionalProperties": True,
                          "description": "Churn risk (risk, level, top factors), predicted 12-month value (value, "
                                         "orders, detail) and service sentiment (score), each with the run that "
                                         "scored it; a part is null when the profile has no value (no customer, no "
                                         "run yet). The same as /api/v1/profiles/{id}/insights/."})
    def get_insights(self, profile):
        return profile_panels.panel_data("insights", profile, _user(self))

    @extend_schema_field(OpenApiTypes.URI)
    def get_timeline_url(self, profile) -> str:
        request = self.context.get("request")
        path = f"/api/v1/profiles/{profile.pk}/timeline/"
        return request.build_absolute_uri(path) if request else path


class EventSerializer(serializers.ModelSerializer):
    properties = PIIDataField()
    context = PIIDataField()

    class Meta:
        model = Event
        fields = ["id", "profile", "type", "name", "channel", "properties", "context", "timestamp", "received_at",
                  "source", "message_id"]


class NoteSerializer(serializers.ModelSerializer):
    """A note or interaction. The text is personal data: masked for users who may not see it."""

    text = serializers.CharField(max_length=5000, trim_whitespace=True)
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Note
        fields = ["id", "profile", "kind", "channel", "text", "sentiment", "sentiment_label", "author", "created_at"]
        read_only_fields = ["id", "profile", "sentiment", "sentiment_label", "author", "created_at"]
        extra_kwargs = {"channel": {"required": True}}

    def to_representation(self, note):
        data = super().to_representation(note)
        data["text"] = mask_for(_user(self), data["text"], "text")
        return data


class LookupQuerySerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=Identity.Type.choices, help_text="The identifier's type")
    value = serializers.CharField(max_length=255, help_text="The identifier, as sent or normalized")
    source = serializers.SlugField(max_length=64, required=False,
                                   help_text="For type=record: the source whose key ``value`` is (the record "
                                             "identity is stored as source:key)")

    def validate(self, attrs):
        source = attrs.pop("source", "")
        if source and attrs["type"] == Identity.Type.RECORD and not attrs["value"].startswith(f"{source}:"):
            attrs["value"] = f"{source}:{attrs['value']}"
        return attrs


class MergeSerializer(serializers.ModelSerializer):
    """A merge journal entry. ``evidence`` and ``moved`` hold personal data (compared values, a traits snapshot):
    null for users who may not see personal data."""

    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)
    undone_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Merge
        fields = ["id", "winner", "loser_id", "reason", "rule", "score", "evidence", "moved", "actor", "created_at",
                  "undone_at", "undone_by"]

    def to_representation(self, merge):
        data = super().to_representation(merge)
        if not can_view_pii(_user(self)):
            data["evidence"] = data["moved"] = None
        return data


class ProductSerializer(serializers.ModelSerializer):
    """A product of the catalog the recommendations run builds from the events, with its popularity."""

    class Meta:
        model = Product
        fields = ["product_id", "name", "category", "price", "views", "purchases", "buyers", "updated_at"]


class RecommendationQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=50, default=10, help_text="How many products (1 to 50)")


class RecommendationSerializer(serializers.Serializer):
    product_id = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    price = serializers.FloatField(allow_null=True)
    score = serializers.FloatField(help_text="Item-to-item score; 0 for a popularity fill")
    reason = serializers.CharField(help_text='Why: "Bought together with X", "Viewed together with X" or "Popular"')


class RecommendationsSerializer(serializers.Serializer):
    profile = serializers.IntegerField(help_text="The profile's id (a merged profile's id leads to its winner)")
    results = RecommendationSerializer(many=True)
