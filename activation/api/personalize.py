"""GET /api/v1/personalize: the traits a person allows to be shared, their segments, the next best offer with its
reason and, when asked for, recommended products, for websites (through their backend), apps and call centers.
See docs/api.md, "Personalization"."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from activation.models import Offer
from activation.selectors import personalization
from cdp.core.api.views import CDPAPIView
from cdp.core.services import audit_record


class PersonalizeQuerySerializer(serializers.Serializer):
    anonymous_id = serializers.CharField(required=False, max_length=255)
    user_id = serializers.CharField(required=False, max_length=255)
    email = serializers.CharField(required=False, max_length=255)
    recommendations = serializers.IntegerField(
        required=False, min_value=0, max_value=personalization.MAX_RECOMMENDATIONS, default=0,
        help_text="How many recommended products to add (0, the default: no `recommendations` in the answer)")

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
    goal = serializers.ChoiceField(choices=Offer.Goal.choices, help_text="What the offer is for")
    reason = serializers.CharField(help_text="Why this offer: how the next best action chose it, without the "
                                             "person's values (\"retention: the value at risk ...\", \"recommended: "
                                             "<product>\", \"priority 10\")")


class RecommendedProductSerializer(serializers.Serializer):
    product_id = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    category = serializers.CharField(allow_null=True)


class PersonalizedSegmentSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class PersonalizationSerializer(serializers.Serializer):
    traits = serializers.DictField(help_text="Shared traits; personal ones masked without core.view_pii")
    computed_traits = serializers.DictField(help_text="Shared computed traits (rfm_segment, ...)")
    segments = PersonalizedSegmentSerializer(many=True)
    offer = PersonalizedOfferSerializer(allow_null=True)
    recommendations = RecommendedProductSerializer(
        many=True, required=False,
        help_text="Only when asked for (?recommendations=N): the products recommended for the person, best first; "
                  "empty unless the personalization purpose is granted")


class PersonalizeView(CDPAPIView):
    """The personalization of one person, found by exactly one identifier. Traits and segments only with the
    personalization purpose granted; the offer only with its own purpose granted; nothing while processing is
    restricted. An unknown person gets the same empty answer as one who shares nothing (200)."""

    permission_required = "activation.personalize"

    @extend_schema(
        operation_id="personalize",
        parameters=[*(OpenApiParameter(name, str, description=f"The person's {name} (give exactly one)")
                      for name in personalization.IDENTIFIER_TYPES),
                    OpenApiParameter("recommendations", int, description=(
                        f"0 to {personalization.MAX_RECOMMENDATIONS}: add up to this many recommended products"))],
        responses=PersonalizationSerializer)
    def get(self, request):
        query = PersonalizeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        identity_type, value = next((name, value) for name, value in query.validated_data.items()
                                    if name in personalization.IDENTIFIER_TYPES)
        answer = personalization.personalization_for(identity_type=identity_type, value=value, user=request.user,
                                                     recommendations=query.validated_data["recommendations"])
        if request.auth is None and answer.traits:
            # A person (signed in to the UI) looking at someone's traits is a view; a system integration calling
            # with its token is not (it would write an entry for every page a website shows).
            audit_record(actor=request.user, action="view", object_type="profiles.profile",
                         object_id=answer.profile_id, profile_id=answer.profile_id,
                         summary=f"Personalization by {identity_type}", fields=sorted(answer.traits),
                         request=request)
        return Response(answer.as_data())
