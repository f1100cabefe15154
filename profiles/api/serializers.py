from rest_framework import serializers

from cdp.core.api.serializers import PIIField, PIITraitsField
from cdp.core.masking import mask_for
from profiles.models import Event, Identity, Profile

IDENTITY_MASK = {"email": "email", "phone": "phone"}


class IdentitySerializer(serializers.ModelSerializer):
    value = serializers.SerializerMethodField()

    class Meta:
        model = Identity
        fields = ["id", "profile", "type", "value", "source", "first_seen_at", "last_seen_at"]

    def get_value(self, identity) -> str:
        request = self.context.get("request")
        return mask_for(getattr(request, "user", None), identity.value, IDENTITY_MASK.get(identity.type, "text"))


class ProfileSerializer(serializers.ModelSerializer):
    traits = PIITraitsField()
    display_name = PIIField(kind="name")

    class Meta:
        model = Profile
        fields = ["id", "display_name", "traits", "first_seen_at", "last_seen_at", "created_at", "updated_at"]


class ProfileDetailSerializer(ProfileSerializer):
    identities = IdentitySerializer(many=True, read_only=True)

    class Meta(ProfileSerializer.Meta):
        fields = [*ProfileSerializer.Meta.fields, "identities"]


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "profile", "type", "name", "channel", "properties", "context", "timestamp", "received_at",
                  "source", "message_id"]
