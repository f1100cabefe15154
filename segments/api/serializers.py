from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cdp.core.api.serializers import PIITraitsField
from segments import rules as rule_tree
from segments.models import Membership, Segment, SegmentSize


@extend_schema_field({"type": "object", "description": "A rule tree (see docs/segments.md and "
                                                       "GET /api/v1/segments/rules-schema/)"})
class RulesField(serializers.JSONField):
    pass


def rules_checked(rules, *, segment_id=None) -> dict:
    """The tree checked by segments.rules; a wrong tree is a 400 naming each wrong node (``rules.<path>``)."""
    try:
        return rule_tree.rules_validate(rules, segment_id=segment_id)
    except rule_tree.RuleError as error:
        raise serializers.ValidationError(
            {(f"rules.{path}" if path else "rules"): messages for path, messages in error.errors.items()}
        ) from error


class SegmentSerializer(serializers.ModelSerializer):
    rules = RulesField(required=False, default=dict)
    size = serializers.IntegerField(read_only=True)

    class Meta:
        model = Segment
        fields = ["id", "name", "slug", "description", "kind", "rules", "size", "last_refreshed_at",
                  "last_refresh_ms", "created_at", "updated_at"]
        read_only_fields = ["slug", "last_refreshed_at", "last_refresh_ms"]

    def validate(self, attrs):
        kind = attrs.get("kind", getattr(self.instance, "kind", Segment.Kind.DYNAMIC))
        rules = attrs.get("rules", getattr(self.instance, "rules", {}))
        if "rules" in attrs or self.instance is None:
            if not rules and kind == Segment.Kind.DYNAMIC:
                raise serializers.ValidationError({"rules": ["A dynamic segment needs rules."]})
            if rules:
                rules_checked(rules, segment_id=getattr(self.instance, "pk", None))
        return attrs


class RulesSerializer(serializers.Serializer):
    rules = RulesField()

    def validate(self, attrs):
        rules_checked(attrs["rules"])
        return attrs


class EstimateSerializer(serializers.Serializer):
    size = serializers.IntegerField()


class MembershipSerializer(serializers.ModelSerializer):
    class Meta:
        model = Membership
        fields = ["id", "segment", "profile", "entered_at", "exited_at"]


class MemberSerializer(serializers.Serializer):
    """A current member: its profile id, when it entered, and (when asked with ``fields``) chosen traits, masked
    for roles without ``core.view_pii``."""

    id = serializers.IntegerField(source="profile_id")
    entered_at = serializers.DateTimeField()
    traits = PIITraitsField(source="chosen_traits")

    def to_representation(self, membership):
        data = super().to_representation(membership)
        if not self.context.get("fields"):
            data.pop("traits", None)
        return data


class SegmentSizeSerializer(serializers.ModelSerializer):
    class Meta:
        model = SegmentSize
        fields = ["day", "size", "entered", "exited"]


class SizeSerializer(serializers.Serializer):
    size = serializers.IntegerField()
    last_refreshed_at = serializers.DateTimeField(allow_null=True)
    history = SegmentSizeSerializer(many=True)


class ExplainEntrySerializer(serializers.Serializer):
    path = serializers.CharField(allow_blank=True)
    depth = serializers.IntegerField()
    type = serializers.CharField()
    label = serializers.CharField()
    matched = serializers.BooleanField()


class ExplainSerializer(serializers.Serializer):
    segment = serializers.IntegerField()
    profile = serializers.IntegerField()
    member = serializers.BooleanField()
    entered_at = serializers.DateTimeField(allow_null=True)
    conditions = ExplainEntrySerializer(many=True)


class OverlapSerializer(serializers.Serializer):
    a_only = serializers.IntegerField()
    both = serializers.IntegerField()
    b_only = serializers.IntegerField()


class RefreshSerializer(serializers.Serializer):
    segment = serializers.IntegerField()
    entered = serializers.IntegerField()
    exited = serializers.IntegerField()
    size = serializers.IntegerField()
    ms = serializers.IntegerField()
