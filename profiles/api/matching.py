"""API for probabilistic matching: match rules (CRUD, validated by the engine) and the review queue."""

import re

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from cdp.core.api.serializers import PIIField, PIITraitsField
from cdp.core.api.views import CDPModelViewSet, CDPReadOnlyViewSet
from profiles.models import MatchCandidate, MatchRule, Profile
from profiles.services import matching


def _field_path(path: str) -> str:
    """The engine's path (``rules.fields[1].m[2]``) in the API's error format (``rules.fields.1.m.2``)."""
    return re.sub(r"\[(\d+)\]", r".\1", path) or "rules"


class MatchRuleSerializer(serializers.ModelSerializer):
    rules = serializers.JSONField(help_text="Match rules in profiles.matching's format (fields, comparators, m/u or "
                                            "weights, blocking keys). Defaults to the default people rules.",
                                  required=False)

    class Meta:
        model = MatchRule
        fields = ["id", "name", "enabled", "rules", "auto_merge_threshold", "review_threshold", "created_at",
                  "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs):
        instance = self.instance
        rules = attrs.get("rules", instance.rules if instance else None)
        if rules is None:
            rules = matching.DEFAULT_PEOPLE_RULES
        auto = attrs.get("auto_merge_threshold", instance.auto_merge_threshold if instance else 0.99)
        review = attrs.get("review_threshold", instance.review_threshold if instance else 0.8)
        try:
            compiled = matching.match_rule_validate(rules=rules, auto_merge_threshold=auto, review_threshold=review)
        except matching.MatchRuleInvalid as exc:
            raise ValidationError({_field_path(exc.path): [exc.message]}) from exc
        attrs["rules"] = compiled.to_dict()
        attrs["auto_merge_threshold"], attrs["review_threshold"] = float(auto), float(review)
        return attrs

    def create(self, validated_data):
        return matching.match_rule_save(actor=self.context["request"].user, **validated_data)

    def update(self, instance, validated_data):
        data = {"name": instance.name, "enabled": instance.enabled, **validated_data}
        return matching.match_rule_save(rule=instance, actor=self.context["request"].user, **data)


class MatchRuleViewSet(CDPModelViewSet):
    """Match rules: read with profiles.view_matchrule, write with add/change/delete_matchrule (Admin)."""

    queryset = MatchRule.objects.all()
    serializer_class = MatchRuleSerializer
    ordering_fields = ["name", "id"]

    def perform_destroy(self, instance):
        matching.match_rule_delete(rule=instance, actor=self.request.user)


class CandidateProfileSerializer(serializers.ModelSerializer):
    display_name = PIIField(kind="name")
    traits = PIITraitsField()

    class Meta:
        model = Profile
        fields = ["id", "display_name", "traits"]


class MatchCandidateSerializer(serializers.ModelSerializer):
    profile_a = CandidateProfileSerializer(read_only=True)
    profile_b = CandidateProfileSerializer(read_only=True)
    rule = serializers.SlugRelatedField(slug_field="name", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = MatchCandidate
        fields = ["id", "profile_a", "profile_b", "score", "evidence", "rule", "status", "decided_by", "decided_at",
                  "created_at"]


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=matching.DECISIONS)


class MatchCandidateViewSet(CDPReadOnlyViewSet):
    """The review queue: pending pairs (``?status=`` for decided ones), and a decision per pair."""

    serializer_class = MatchCandidateSerializer
    queryset = MatchCandidate.objects.all()
    ordering_fields = ["score", "created_at", "id"]
    filterset_fields = ["status"]

    def get_queryset(self):
        if self.action == "list" and not self.request.query_params.get("status"):
            return matching.review_queue()
        return MatchCandidate.objects.select_related("profile_a", "profile_b", "rule", "decided_by")

    @extend_schema(request=DecisionSerializer, responses=MatchCandidateSerializer)
    @action(detail=True, methods=["post"], permission_required="profiles.change_matchcandidate")
    def decide(self, request, pk=None):
        """Decide a pending pair: ``{"decision": "merge" | "never_merge" | "dismiss"}``."""
        candidate = get_object_or_404(MatchCandidate, pk=pk)
        form = DecisionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            candidate = matching.candidate_decide(candidate=candidate, decision=form.validated_data["decision"],
                                                  actor=request.user, request=request)
        except matching.CandidateDecisionError as exc:
            return Response({"error": {"status": 409, "code": "conflict", "message": str(exc)}},
                            status=status.HTTP_409_CONFLICT)
        return Response(MatchCandidateSerializer(candidate, context={"request": request}).data)
