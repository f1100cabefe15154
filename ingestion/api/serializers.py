from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ingestion import selectors
from ingestion.models import InboxMessage, Source
from ingestion.services.connectors import source_settings_public
from ingestion.services.sources import RESERVED_SLUGS


class SourceSerializer(serializers.ModelSerializer):
    """A source with its inbox counts. Kind and slug are set when it is created and stay."""

    pending = serializers.IntegerField(read_only=True, default=None)
    processed = serializers.IntegerField(read_only=True, default=None)
    rejected = serializers.IntegerField(read_only=True, default=None)
    total = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = Source
        fields = ["id", "name", "slug", "kind", "channel", "enabled", "write_key_prefix", "settings", "created_at",
                  "pending", "processed", "rejected", "total"]
        read_only_fields = ["slug", "kind", "write_key_prefix", "created_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # A database source's URL is shown with its password masked (helper "connectors").
        data["settings"] = source_settings_public(data.get("settings") or {})
        return data


class SourceCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    kind = serializers.ChoiceField(choices=Source.Kind.choices)
    slug = serializers.SlugField(max_length=64, required=False, allow_blank=True, default="")
    channel = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    settings = serializers.JSONField(required=False, default=dict)

    def validate_slug(self, value):
        if value in RESERVED_SLUGS:
            raise serializers.ValidationError(f"The slug {value!r} is reserved; choose another.")
        if value and Source.objects.filter(slug=value).exists():
            raise serializers.ValidationError(f"A source with the slug {value!r} exists already.")
        return value

    def validate_settings(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object.")
        return value


class SourceCreatedSerializer(SourceSerializer):
    """The answer to a create (and a key rotation): the only time the write key is shown."""

    write_key = serializers.CharField(read_only=True, help_text="Shown this once; only its hash is stored.")

    class Meta(SourceSerializer.Meta):
        fields = [*SourceSerializer.Meta.fields, "write_key"]


class SourceStatsSerializer(serializers.Serializer):
    received_today = serializers.IntegerField()
    pending = serializers.IntegerField()
    processed = serializers.IntegerField()
    rejected = serializers.IntegerField()
    total = serializers.IntegerField()
    last_received_at = serializers.DateTimeField(allow_null=True)


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "The Segment message; ids and personal traits are masked without view_pii."})
class PayloadField(serializers.Field):
    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        request = self.context.get("request")
        return selectors.payload_for(getattr(request, "user", None), value)


class InboxMessageSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    payload = PayloadField()

    class Meta:
        model = InboxMessage
        fields = ["id", "source", "message_id", "type", "payload", "received_at", "status", "reason", "attempts",
                  "processed_at"]
