import django_filters
from django.db import connection
from django.db.models import FloatField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from profiles.models import Event, Identity, Merge, Product, Profile
from profiles.search import MIN_FUZZY_LENGTH, query_normalize

# A search shows the best matches, not every profile that shares three letters with the query: each index gives
# at most SEARCH_LIMIT candidates, and the fuzzy (word similarity) pass runs only when the substring pass found
# fewer than FUZZY_BELOW profiles (a typo, a partial name), because it is the expensive one on a large table.
SEARCH_LIMIT = 500
FUZZY_BELOW = 50


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _ids(sql: str, params: list) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _search_postgresql(queryset, text: str, identifier: str):
    """pg_trgm search (GIN indexes on profiles_profile.search_text and profiles_identity.value). An exact
    identifier answers at once; otherwise substring matches, and word-similarity matches when those are few,
    ordered by similarity (the best of the search text and the profile's identifiers)."""
    from django.contrib.postgres.search import TrigramWordSimilarity

    exact = list(Identity.objects.filter(type__in=Identity.Type.values, value__in={identifier, text})
                 .values_list("profile_id", flat=True)[:SEARCH_LIMIT])
    if exact:
        return queryset.filter(pk__in=exact)
    if len(text) < MIN_FUZZY_LENGTH and len(identifier) < MIN_FUZZY_LENGTH:
        return queryset.none()  # too short for trigrams, and no identifier is exactly this
    ids = _ids("(SELECT p.id FROM profiles_profile p WHERE p.search_text LIKE %s LIMIT %s) UNION "
               "(SELECT i.profile_id FROM profiles_identity i WHERE i.value ILIKE %s LIMIT %s)",
               [_like(text), SEARCH_LIMIT, _like(identifier), SEARCH_LIMIT])
    if len(ids) < FUZZY_BELOW:
        # Typos: the search text holds names, email and phone, so one index is enough for this costly pass.
        ids += _ids("SELECT p.id FROM profiles_profile p WHERE p.search_text %%> %s "
                    "ORDER BY word_similarity(%s, p.search_text) DESC LIMIT %s", [text, text, SEARCH_LIMIT])
    best_identity = (Identity.objects.filter(profile=OuterRef("pk"))
                     .annotate(score=TrigramWordSimilarity(Value(identifier), "value"))
                     .order_by("-score").values("score")[:1])
    score = Greatest(TrigramWordSimilarity(Value(text), "search_text"),
                     Coalesce(Subquery(best_identity, output_field=FloatField()), Value(0.0)))
    return queryset.filter(pk__in=set(ids)).annotate(search_score=score).order_by("-search_score", "-id")


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
                                  help_text="Name, email, phone or any identifier")
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


class ProductFilter(django_filters.FilterSet):
    class Meta:
        model = Product
        fields = {"category": ["exact", "startswith"]}


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
