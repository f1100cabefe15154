"""The profiles API: profiles (list with search and filters, retrieve with lineage, identities, segments and
consent, the timeline, notes, lookup by any identifier), identities, and the merge journal with undo."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from cdp.core.api.views import CDPReadOnlyViewSet
from cdp.core.pagination import CursorPagination
from cdp.core.services import audit_record
from profiles import selectors
from profiles.api.serializers import (
    EventSerializer,
    IdentitySerializer,
    LookupQuerySerializer,
    MergeSerializer,
    NoteSerializer,
    ProductSerializer,
    ProfileDetailSerializer,
    ProfileSerializer,
    RecommendationQuerySerializer,
    RecommendationsSerializer,
)
from profiles.filters import EventFilter, IdentityFilter, MergeFilter, ProductFilter, ProfileFilter
from profiles.models import Identity, Merge, Product, Profile
from profiles.services import merge_undo
from profiles.services.notes import NoteInvalid, note_add


class TimelinePagination(CursorPagination):
    """The timeline newest first by when it happened (events may arrive late), stable under inserts."""

    ordering = ("-timestamp", "-id")


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


def _live(pk) -> Profile:
    profile = selectors.profile_resolve(profile_id=int(pk)) if str(pk).isdigit() else None
    if profile is None:
        raise Http404
    return profile


class ProfileViewSet(CDPReadOnlyViewSet):
    """Profiles. Merged profiles (tombstones) are not listed; retrieving one by its old id answers with the
    profile it was merged into (its ``id`` says which)."""

    queryset = Profile.objects.filter(merged_into__isnull=True)
    filterset_class = ProfileFilter
    ordering_fields = ["id", "last_seen_at", "first_seen_at"]

    def get_serializer_class(self):
        return ProfileDetailSerializer if self.action == "retrieve" else ProfileSerializer

    def get_object(self):
        profile = _live(self.kwargs["pk"])
        self.check_object_permissions(self.request, profile)
        return profile

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        profile_id = response.data["id"]
        audit_record(actor=request.user, action="view", object_type="profiles.profile", object_id=profile_id,
                     profile_id=profile_id, summary="Retrieved through the API",
                     fields=sorted(response.data["traits"]), request=request)
        return response

    @extend_schema(parameters=[OpenApiParameter("cursor", OpenApiTypes.STR, description="The page's cursor")])
    @action(detail=True, methods=["get"], filterset_class=EventFilter, pagination_class=TimelinePagination,
            serializer_class=EventSerializer, permission_required=("profiles.view_profile", "profiles.view_event"),
            ordering_fields=[])
    def timeline(self, request, pk=None):
        """Every event of the profile on every channel, newest first, filtered by type, channel, name, source and
        time (since/until), cursor-paged."""
        profile = _live(pk)
        events = self.filter_queryset(selectors.profile_timeline(profile=profile))
        page = self.paginate_queryset(events)
        return self.get_paginated_response(EventSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(methods=["GET"], responses=NoteSerializer(many=True))
    @extend_schema(methods=["POST"], request=NoteSerializer, responses={201: NoteSerializer})
    @action(detail=True, methods=["get", "post"], serializer_class=NoteSerializer, filterset_class=None,
            ordering_fields=[],
            permission_required={"read": ("profiles.view_profile", "profiles.view_note"),
                                 "write": ("profiles.view_profile", "profiles.add_note")})
    def notes(self, request, pk=None):
        """GET: the profile's notes and interactions, newest first. POST: an agent adds one (kind, channel,
        text); it becomes an event on the timeline (type note) and traits (last_note_at; intends_to_cancel and
        intends_to_cancel_at for kind intent_to_cancel) that segments can use."""
        profile = _live(pk)
        if request.method == "POST":
            serializer = NoteSerializer(data=request.data, context={"request": request})
            serializer.is_valid(raise_exception=True)
            try:
                note = note_add(profile=profile, author=request.user, **serializer.validated_data)
            except NoteInvalid as error:
                raise ValidationError({error.field: [error.message]}) from error
            return Response(NoteSerializer(note, context={"request": request}).data, status=status.HTTP_201_CREATED)
        page = self.paginate_queryset(selectors.profile_notes(profile=profile))
        return self.get_paginated_response(NoteSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(parameters=[LookupQuerySerializer],
                   responses={200: ProfileDetailSerializer,
                              400: OpenApiResponse(description="A missing value or an unknown type (names the "
                                                               "field)"),
                              404: OpenApiResponse(description="No profile carries this identifier")})
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None, ordering_fields=[],
            serializer_class=ProfileDetailSerializer)
    def lookup(self, request):
        """Find the profile by any identifier: ``?type=email&value=Anna@Example.com``. The value is normalized
        as the pipeline normalizes it (emails lowercased, phones in E.164); a merged profile leads to the profile
        it was merged into."""
        query = LookupQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        profile = selectors.profile_lookup(identity_type=query.validated_data["type"],
                                           value=query.validated_data["value"])
        if profile is None:
            raise Http404
        audit_record(actor=request.user, action="view", object_type="profiles.profile", object_id=profile.pk,
                     profile_id=profile.pk, summary=f"Looked up by {query.validated_data['type']}",
                     fields=sorted(profile.traits), request=request)
        return Response(ProfileDetailSerializer(profile, context={"request": request}).data)

    @extend_schema(parameters=[RecommendationQuerySerializer],
                   responses={200: RecommendationsSerializer,
                              400: OpenApiResponse(description="A limit that is not a whole number from 1 to 50 "
                                                               "(names the field)"),
                              404: OpenApiResponse(description="No such profile")})
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None, ordering_fields=[],
            serializer_class=RecommendationsSerializer,
            permission_required=("profiles.view_profile", "profiles.view_product"))
    def recommendations(self, request, pk=None):
        """The person's top ``limit`` products (default 10), computed now from their own product events and the
        item-to-item table of the last recommendations run, filled up with the most popular products; what they
        bought is left out. Each with its reason ("Bought together with X", "Viewed together with X", "Popular")."""
        profile = _live(pk)
        query = RecommendationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        results = selectors.recommendations_for(profile_id=profile.pk, limit=query.validated_data["limit"])
        return Response(RecommendationsSerializer({"profile": profile.pk, "results": results}).data)


class ProductViewSet(CDPReadOnlyViewSet):
    """The product catalog as the events describe it, the most bought first, with views, purchases and buyers
    (rebuilt by each recommendations run). ``?category=sports/shoes``, ``?category__startswith=sports``;
    ``?ordering=-views``. Retrieve by ``product_id``."""

    queryset = Product.objects.order_by("-buyers", "-views", "product_id")  # the popularity order
    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    ordering_fields = ["buyers", "purchases", "views", "price", "name", "product_id"]
    lookup_field = "product_id"
    lookup_value_regex = "[^/]+"


class IdentityViewSet(CDPReadOnlyViewSet):
    """Identities, each with its profile id; filter by type, source, profile and flagged."""

    queryset = Identity.objects.all().order_by("id")
    serializer_class = IdentitySerializer
    filterset_class = IdentityFilter


class UndoSerializer(serializers.Serializer):
    winner = serializers.IntegerField(allow_null=True)
    loser = serializers.IntegerField()
    merge = MergeSerializer()


class MergeViewSet(CDPReadOnlyViewSet):
    """The merge journal, newest first: ``?profile=<id>`` for the merges a profile won or lost."""

    queryset = Merge.objects.select_related("actor", "undone_by").order_by("-created_at", "-id")
    serializer_class = MergeSerializer
    filterset_class = MergeFilter
    ordering_fields = ["created_at"]

    @extend_schema(request=None, responses={200: UndoSerializer,
                                            409: OpenApiResponse(description="The merge was undone already")})
    @action(detail=True, methods=["post"], permission_required="profiles.change_merge", filterset_class=None,
            ordering_fields=[])
    def undo(self, request, pk=None):
        """Undo a merge: both profiles are restored (identities, events and traits move back)."""
        merge = get_object_or_404(Merge, pk=pk)
        if merge.undone_at:
            raise Conflict("This merge was undone already.")
        try:
            winner, loser = merge_undo(merge=merge, actor=request.user)
        except ValueError as error:  # undone meanwhile, or a profile of it was erased
            raise Conflict(str(error)) from error
        merge.refresh_from_db()
        return Response({"winner": winner.pk if winner else None, "loser": loser.pk,
                         "merge": MergeSerializer(merge, context={"request": request}).data})
