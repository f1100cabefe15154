from rest_framework import serializers

from segments.models import Membership, Segment


class SegmentSerializer(serializers.ModelSerializer):
    size = serializers.IntegerField(read_only=True)

    class Meta:
        model = Segment
        fields = ["id", "name", "slug", "description", "kind", "rules", "size", "created_at", "updated_at"]


class MembershipSerializer(serializers.ModelSerializer):
    class Meta:
        model = Membership
        fields = ["id", "segment", "profile", "entered_at", "exited_at"]
