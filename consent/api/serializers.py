from rest_framework import serializers

from consent.models import ConsentRecord, DataSubjectRequest, Purpose, RequestStep


class PurposeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Purpose
        fields = ["id", "key", "name", "description", "legal_basis"]


class ConsentRecordSerializer(serializers.ModelSerializer):
    purpose = serializers.SlugRelatedField(slug_field="key", queryset=Purpose.objects.all())

    class Meta:
        model = ConsentRecord
        fields = ["id", "profile", "purpose", "status", "source", "proof", "recorded_at"]


class IdentifierSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["email", "phone", "user_id", "anonymous_id", "record"])
    value = serializers.CharField(max_length=255)


class ConsentRecordCreateSerializer(serializers.Serializer):
    """A decision for a profile named by its id or by any identifier."""

    profile = serializers.IntegerField(required=False, help_text="The profile's id (or give identifier)")
    identifier = IdentifierSerializer(required=False, help_text="Any identifier of the person (or give profile)")
    purpose = serializers.SlugField(help_text="The purpose's key")
    status = serializers.ChoiceField(choices=ConsentRecord.Status.choices)
    source = serializers.CharField(max_length=64, required=False, allow_blank=True, default="api")
    proof = serializers.JSONField(required=False, default=dict, help_text="Form URL, text version, ...")
    recorded_at = serializers.DateTimeField(required=False, help_text="When it was decided (default: now)")

    def validate_proof(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object.")
        return value

    def validate(self, attrs):
        if ("profile" in attrs) == ("identifier" in attrs):
            raise serializers.ValidationError({"profile": ["Give either profile or identifier."]})
        return attrs


class RequestStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = RequestStep
        fields = ["at", "actor_name", "action", "detail"]


class PrivacyRequestSerializer(serializers.ModelSerializer):
    steps = RequestStepSerializer(many=True, read_only=True)
    in_force = serializers.BooleanField(source="freezes", read_only=True,
                                        help_text="A restriction or objection that keeps the profile out of "
                                                  "activation now")

    class Meta:
        model = DataSubjectRequest
        fields = ["id", "kind", "status", "identifier_type", "identifier", "profile", "verification_note", "changes",
                  "reference", "received_at", "due_at", "completed_at", "lifted_at", "in_force", "result", "steps"]
        read_only_fields = fields


class PrivacyRequestCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=DataSubjectRequest.Kind.choices)
    identifier_type = serializers.ChoiceField(choices=DataSubjectRequest.IdentifierType.choices)
    identifier = serializers.CharField(max_length=255, help_text="Email, phone, user id, anonymous id or profile id")
    verification_note = serializers.CharField(required=False, allow_blank=True, default="",
                                              help_text="How the requester's identity was verified; with it, the "
                                                        "request is verified at once")
    changes = serializers.JSONField(required=False, default=dict, help_text="Rectification: trait name -> value")
    reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="",
                                      help_text="The ticket in your system")
    received_at = serializers.DateTimeField(required=False, help_text="Default: now; the due date follows")


class VerifySerializer(serializers.Serializer):
    verification_note = serializers.CharField()


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class RequestNoteSerializer(serializers.Serializer):
    text = serializers.CharField()
