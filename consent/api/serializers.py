from rest_framework import serializers

from consent.models import ConsentRecord, Purpose


class PurposeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Purpose
        fields = ["id", "key", "name", "description", "legal_basis"]


class ConsentRecordSerializer(serializers.ModelSerializer):
    purpose = serializers.SlugRelatedField(slug_field="key", queryset=Purpose.objects.all())

    class Meta:
        model = ConsentRecord
        fields = ["id", "profile", "purpose", "status", "source", "proof", "recorded_at"]
