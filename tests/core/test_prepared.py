"""cdp.core.prepared: a values() queryset compiled once, run with other values in its slots."""

import pytest
from django.db.models import Count, F
from django.utils import timezone

from cdp.core.prepared import PreparedValues, slot
from profiles.models import Identity, Profile
from profiles.services import Observation, observations_apply

pytestmark = pytest.mark.django_db


def test_the_same_sql_answers_for_other_values_like_the_queryset_would():
    ids = observations_apply(observations=[
        Observation(identities=[("email", f"p{n}@example.org")], timestamp=timezone.now(),
                    traits={"email": f"p{n}@example.org", "tags": ["a", n]}, source="crm") for n in range(3)])
    prepared = PreparedValues(
        Profile.objects.filter(identities__type=slot(0), identities__value__in=[slot(1), slot(2)])
        .annotate(identity_count=Count("identities")).values("pk", "traits", "identity_count",
                                                             matched=F("identities__value")), 3)
    rows = prepared.rows("email", "p0@example.org", "p2@example.org")
    expected = list(Profile.objects.filter(identities__type="email",
                                           identities__value__in=["p0@example.org", "p2@example.org"])
                    .annotate(identity_count=Count("identities"))
                    .values("pk", "traits", "identity_count", matched=F("identities__value")))
    assert sorted(rows, key=lambda row: row["pk"]) == sorted(expected, key=lambda row: row["pk"])
    assert {row["pk"] for row in rows} == {ids[0], ids[2]}
    assert rows[0]["traits"]["tags"][0] == "a"  # the JSON field's converter ran
    assert prepared.rows("email", "nobody@example.org", "p1@example.org")[0]["pk"] == ids[1]
    assert prepared.rows("phone", "p0@example.org", "p1@example.org") == []


def test_a_slot_that_is_not_a_whole_parameter_is_refused():
    with pytest.raises(ValueError, match="whole parameter"):
        PreparedValues(Identity.objects.filter(value__contains=slot(0)).values("pk"), 1)
    with pytest.raises(ValueError, match="whole parameter"):
        PreparedValues(Identity.objects.filter(value=slot(0)).values("pk"), 2)


def test_postgresql_plans_the_statement_once_per_connection():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    prepared = PreparedValues(Identity.objects.filter(type=slot(0), value=slot(1)).values("pk", "profile_id"), 2)

    def statements() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                           ["%profiles_identity%"])
            return cursor.fetchone()[0]

    before = statements()
    for n in range(3):
        assert prepared.rows("email", f"nobody{n}@example.org") == []
    assert statements() == before + 1
