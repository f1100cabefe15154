import django_filters
from django.db import connection
from django.db.models import FloatField, OuterRef, Q, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Greatest

from profiles.models import Event, Identity, Merge, Profile
from profiles.search import MIN_FUZZY_LENGTH, query_normalize

# How many of the best hits each index contributes to a fuzzy search on PostgreSQL (a search shows the best
# matches, not every profile that shares three letters with the query).
SEARCH_LIMIT = 500


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _search_postgresql(queryset, text: str, identifier: str):
    """Trigram search (pg_trgm, GIN indexes on profiles_profile.search_text and profiles_identity.value): word
    similarity or substring, the best SEARCH_LIMIT hits of each index, ordered by similarity."""
    from django.contrib.postgres.search import TrigramWordSimilarity

    if len(text) < MIN_FUZZY_LENGTH and len(identifier) < MIN_FUZZY_LENGTH:
        # Too short for trigrams: an exact identifier only.
        return queryset.filter(pk__in=Identity.objects.filter(value=identifier).values("profile_id"))
    hits = RawSQL(
        "SELECT hit.id FROM ("
        " (SELECT p.id, word_similarity(%s, p.search_text) AS score FROM profiles_profile p"
        "  WHERE p.search_text %%> %s OR p.search_text LIKE %s ORDER BY score DESC LIMIT %s)"
        " UNION ALL"
        " (SELECT i.profile_id, word_similarity(%s, i.value) AS score FROM profiles_identity i"
        "  WHERE i.value %%> %s OR i.value ILIKE %s ORDER BY score DESC LIMIT %s)"
        ") AS hit",
        [text, text, _like(text), SEARCH_LIMIT, identifier, identifier, _like(identifier), SEARCH_LIMIT],
    )
    best_identity = (Identity.objects.filter(profile=OuterRef("pk"))
                     .annotate(score=TrigramWordSimilarity(Value(identifier), "value"))
                     .order_by("-score").values("score")[:1])
    score = Greatest(TrigramWordSimilarity(Value(text), "search_text"),
                     Coalesce(Subquery(best_identity, output_field=FloatField()), Value(0.0)))
    return queryset.filter(pk__in=hits).annotate(search_score=score).order_by("-search_score", "-id")


def _search_plain(queryset, text: str, identifier: str):
    """SQLite (and any other database): substring matches on the search text and on identifier values."""
    by_identity = Identity.objects.filter(value__icontains=identifier).values("profile_id")
    return queryset.filter(Q(search_text__contains=text) | Q(pk__in=by_identity))


def profiles_search(queryset, query: str):
    """Profiles matching ``query`` by name, email, phone or any identifier (normalized first: see
    profiles.search.query_normalize); on PostgreSQL fuzzy and best first."""
    text, identifier = query_normalize(query)
    if not text and not identifier:
        return queryset
    if connection.vendor == "postgresql":
        return _search_postgresql(queryset, text, identifier)
    return _search_plain(queryset, text, identifier)


class ProfileFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search",
                                  help_text="Name, email, phone or any identifier; typos are forgiven")
    seen_since = django_filters.IsoDateTimeFilter(field_name="last_seen_at", lookup_expr="gte", label="Seen since")

    class Meta:
        model = Profile
        fields = ["q", "seen_since"]

    def search(self, queryset, name, value):
        return profiles_search(queryset, value)


class IdentityFilter(django_filters.FilterSet):
    flagged = django_filters.BooleanFilter(help_text="Values that failed normalization and are kept raw")

    class Meta:
        model = Identity
        fields = ["type", "source", "profile", "flagged"]


class EventFilter(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lte")

    class Meta:
        model = Event
        fields = ["type", "name", "channel", "source", "since", "until"]


class MergeFilter(django_filters.FilterSet):
    profile = django_filters.NumberFilter(method="for_profile", label="Profile",
                                          help_text="Merges this profile won or lost")
    undone = django_filters.BooleanFilter(field_name="undone_at", lookup_expr="isnull", exclude=True,
                                          label="Undone")

    class Meta:
        model = Merge
        fields = ["profile", "reason", "winner", "undone"]

    def for_profile(self, queryset, name, value):
        return queryset.filter(Q(winner_id=value) | Q(loser_id=value))
