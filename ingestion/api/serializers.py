from rest_framework import serializers

from ingestion.models import InboxMessage, Source


class SourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Source
        fields = ["id", "name", "slug", "kind", "channel", "enabled", "write_key_prefix", "settings", "created_at"]
        read_only_fields = ["write_key_prefix", "created_at"]


class InboxMessageSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = InboxMessage
        fields = ["id", "source", "message_id", "type", "payload", "received_at", "status", "reason", "attempts",
                  "processed_at"]
