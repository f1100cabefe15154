"""/api/v1/offers/: the offers the personalization API chooses from (Marketing and Admin change them)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers

from activation.models import Offer
from activation.selectors import personalization
from activation.services import offers as offer_services
from cdp.core.api.views import CDPModelViewSet
from consent.models import Purpose
from segments.models import Segment


class OfferSerializer(serializers.ModelSerializer):
    segment = serializers.SlugRelatedField(slug_field="slug", queryset=Segment.objects.all(),
                                           help_text="The slug of the segment whose members qualify")
    purpose = serializers.SlugRelatedField(slug_field="key", queryset=Purpose.objects.all(),
                                           help_text="The key of the consent purpose the person must have granted")
    content = serializers.JSONField(help_text='{"headline": "...", "body": "...", "cta_url": "https://... or /path", '
                                              '"image_url": "..."}; headline and cta_url are required')

    class Meta:
        model = Offer
        fields = ["id", "name", "segment", "purpose", "priority", "goal", "expected_value", "product_ids",
                  "min_churn_risk", "max_churn_risk", "content", "valid_from", "valid_until", "enabled",
                  "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


def _saved(call, **kwargs) -> Offer:
    try:
        return call(**kwargs)
    except offer_services.OfferInvalid as error:
        raise serializers.ValidationError(error.errors) from error


@extend_schema(responses={200: OfferSerializer, 400: OpenApiResponse(description="A field is wrong (named in "
                                                                                 "error.fields)")})
class OfferViewSet(CDPModelViewSet):
    """Offers: a segment (who qualifies), a consent purpose, a priority (lower first), content and a validity;
    for the next best action a goal, an expected value (EUR), the promoted product ids and churn-risk bounds.
    The personalization API shows changes within a few seconds."""

    queryset = personalization.offer_list()
    serializer_class = OfferSerializer
    ordering_fields = ["priority", "name", "created_at"]

    def perform_create(self, serializer):
        serializer.instance = _saved(offer_services.offer_create, actor=self.request.user,
                                     **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = _saved(offer_services.offer_update, offer=serializer.instance, actor=self.request.user,
                                     **serializer.validated_data)

    def perform_destroy(self, instance):
        offer_services.offer_delete(offer=instance, actor=self.request.user)
