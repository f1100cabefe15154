"""GET /api/v1/personalize: the traits a person allows to be shared, their segments and the best offer, for
websites (through their backend), apps and call centers. See docs/api.md, "Personalization"."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from activation.selectors import personalization
from cdp.core.api.views import CDPAPIView
from cdp.core.services import audit_record


class PersonalizeQuerySerializer(serializers.Serializer):
    anonymous_id = serializers.CharField(required=False, max_length=255)
    user_id = serializers.CharField(required=False, max_length=255)
    email = serializers.CharField(required=False, max_length=255)

    def validate(self, attrs):
        given = [name for name in personalization.IDENTIFIER_TYPES if name in attrs]
        blank = [name for name in personalization.IDENTIFIER_TYPES if name in self.initial_data and name not in attrs]
        if blank:  # DRF drops a blank optional query parameter; name it rather than ask for any identifier
            raise serializers.ValidationError({name: ["This field may not be blank."] for name in blank})
        if not given:
            raise serializers.ValidationError(
                {name: ["Give one of anonymous_id, user_id or email."] for name in personalization.IDENTIFIER_TYPES})
        if len(given) > 1:
            raise serializers.ValidationError({name: ["Give only one of anonymous_id, user_id or email."]
                                               for name in given})
        return attrs


class OfferContentSerializer(serializers.Serializer):
    headline = serializers.CharField()
    body = serializers.CharField(required=False)
    cta_url = serializers.CharField()
    image_url = serializers.CharField(required=False)


class PersonalizedOfferSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    segment = serializers.CharField(help_text="The slug of the segment that qualified the person")
    priority = serializers.IntegerField()
    content = OfferContentSerializer()
    valid_until = serializers.DateTimeField(allow_null=True)


class PersonalizedSegmentSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class PersonalizationSerializer(serializers.Serializer):
    traits = serializers.DictField(help_text="Shared traits; personal ones masked without core.view_pii")
    computed_traits = serializers.DictField(help_text="Shared computed traits (rfm_segment, ...)")
    segments = PersonalizedSegmentSerializer(many=True)
    offer = PersonalizedOfferSerializer(allow_null=True)


class PersonalizeView(CDPAPIView):
    """The personalization of one person, found by exactly one identifier. Traits and segments only with the
    personalization purpose granted; the offer only with its own purpose granted; nothing while processing is
    restricted. An unknown person gets the same empty answer as one who shares nothing (200)."""

    permission_required = "activation.personalize"

    @extend_schema(
        operation_id="personalize",
        parameters=[OpenApiParameter(name, str, description=f"The person's {name} (give exactly one)")
                    for name in personalization.IDENTIFIER_TYPES],
        responses=PersonalizationSerializer)
    def get(self, request):
        query = PersonalizeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        identity_type, value = next(iter(query.validated_data.items()))
        answer = personalization.personalization_for(identity_type=identity_type, value=value, user=request.user)
        if request.auth is None and answer.traits:
            # A person (signed in to the UI) looking at someone's traits is a view; a system integration calling
            # with its token is not (it would write an entry for every page a website shows).
            audit_record(actor=request.user, action="view", object_type="profiles.profile",
                         object_id=answer.profile_id, profile_id=answer.profile_id,
                         summary=f"Personalization by {identity_type}", fields=sorted(answer.traits),
                         request=request)
        return Response(answer.as_data())
