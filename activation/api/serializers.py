from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from activation.models import Activation, Delivery, Destination, Sync
from consent.models import Purpose
from segments.models import Segment


class DestinationSerializer(serializers.ModelSerializer):
    """``secrets`` is write-only: a secret is never shown again. ``new_secrets`` holds a secret the CDP made (a
    webhook's signing secret), in the answer that made it and nowhere else."""

    config = serializers.JSONField(help_text="The settings of the kind (e.g. a webhook's url, read_timeout)")
    secrets = serializers.JSONField(write_only=True, required=False,
                                    help_text='Tokens, keys and passwords, e.g. {"token": "..."}; '
                                              '{"signing_secret": "rotate"} makes a new signing secret')
    secrets_set = serializers.SerializerMethodField(help_text="The names of the secrets that are set")
    new_secrets = serializers.SerializerMethodField(help_text="Secrets made now: shown this once")

    class Meta:
        model = Destination
        fields = ["id", "name", "kind", "config", "secrets", "secrets_set", "new_secrets", "enabled", "created_at",
                  "updated_at", "last_tested_at", "last_test_ok", "last_test_message"]
        read_only_fields = ["created_at", "updated_at", "last_tested_at", "last_test_ok", "last_test_message"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_secrets_set(self, destination) -> list[str]:
        return sorted(name for name, value in destination.secrets.items() if value)

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_new_secrets(self, destination) -> dict:
        return self.context.get("new_secrets") or {}

    def validate(self, attrs):
        if self.instance is not None and "kind" in attrs and attrs["kind"] != self.instance.kind:
            raise serializers.ValidationError({"kind": ["The kind of a destination cannot change."]})
        return attrs


class ActivationSerializer(serializers.ModelSerializer):
    segment = serializers.SlugRelatedField(slug_field="slug", queryset=Segment.objects.all(),
                                           help_text="The slug of the segment to send")
    purpose = serializers.SlugRelatedField(slug_field="key", queryset=Purpose.objects.all(),
                                           help_text="The consent purpose a member must have granted to be sent")
    mapping = serializers.JSONField(help_text='{"out_name": "traits.<name>" | "computed.<key>" | "profile.id"}')
    options = serializers.JSONField(required=False, help_text='Email: {"mode": "message" | "contacts", "subject", '
                                                              '"body"} (Django templates of the mapped fields)')
    last_sync_status = serializers.SerializerMethodField()

    class Meta:
        model = Activation
        fields = ["id", "name", "segment", "destination", "purpose", "schedule", "mapping", "options", "enabled",
                  "created_at", "updated_at", "last_sync_at", "last_good_sync_at", "last_sync_status"]
        read_only_fields = ["created_at", "updated_at", "last_sync_at", "last_good_sync_at"]

    def get_last_sync_status(self, activation) -> str | None:
        if hasattr(activation, "last_sync_status"):
            return activation.last_sync_status
        return activation.syncs.order_by("-started_at", "-id").values_list("status", flat=True).first()


class SyncSerializer(serializers.ModelSerializer):
    class Meta:
        model = Sync
        fields = ["id", "activation", "trigger", "status", "full", "started_at", "finished_at", "members", "added",
                  "changed", "removed", "skipped_consent", "sent", "failed", "deliveries_total", "deliveries_done",
                  "error"]


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = ["id", "destination", "activation", "sync", "action", "idempotency_key", "status", "item_count",
                  "attempts", "max_attempts", "next_attempt_at", "last_error", "response_status", "created_at",
                  "sent_at", "delivered_at"]


class SyncStartedSerializer(serializers.Serializer):
    activation = serializers.IntegerField()
    queued = serializers.BooleanField()
