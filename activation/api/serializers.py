from rest_framework import serializers

from activation.models import Activation, Destination


class DestinationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Destination
        fields = ["id", "name", "kind", "config", "enabled", "created_at"]


class ActivationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Activation
        fields = ["id", "name", "segment", "destination", "purpose", "schedule", "mapping", "enabled", "created_at"]
