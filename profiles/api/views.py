from django.shortcuts import get_object_or_404
from rest_framework.decorators import action

from cdp.core.api.views import CDPReadOnlyViewSet
from cdp.core.pagination import CursorPagination
from cdp.core.services import audit_record
from profiles import selectors
from profiles.api.serializers import EventSerializer, IdentitySerializer, ProfileDetailSerializer, ProfileSerializer
from profiles.filters import EventFilter, IdentityFilter, ProfileFilter
from profiles.models import Identity, Profile


class ProfileViewSet(CDPReadOnlyViewSet):
    queryset = Profile.objects.all()
    filterset_class = ProfileFilter
    ordering_fields = ["id", "last_seen_at", "first_seen_at"]

    def get_serializer_class(self):
        return ProfileDetailSerializer if self.action == "retrieve" else ProfileSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.prefetch_related("identities") if self.action == "retrieve" else queryset

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        profile_id = response.data["id"]
        audit_record(actor=request.user, action="view", object_type="profiles.profile", object_id=profile_id,
                     profile_id=profile_id, summary="Retrieved through the API",
                     fields=sorted(response.data["traits"]), request=request)
        return response

    @action(detail=True, methods=["get"], filterset_class=EventFilter, pagination_class=CursorPagination,
            serializer_class=EventSerializer, permission_required="profiles.view_event")
    def timeline(self, request, pk=None):
        profile = get_object_or_404(Profile, pk=pk)
        events = EventFilter(request.query_params, queryset=selectors.profile_timeline(profile=profile)).qs
        page = self.paginate_queryset(events)
        return self.get_paginated_response(EventSerializer(page, many=True, context={"request": request}).data)


class IdentityViewSet(CDPReadOnlyViewSet):
    queryset = Identity.objects.all().order_by("id")
    serializer_class = IdentitySerializer
    filterset_class = IdentityFilter

