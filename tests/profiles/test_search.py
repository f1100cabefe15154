"""Profile search: query normalization, the plain path (SQLite) and the trigram path (PostgreSQL), through
ProfileFilter, the UI list and the API list."""

import pytest
from django.db import connection

from profiles.filters import ProfileFilter
from profiles.models import Profile
from profiles.search import fold, identifier_candidates, query_normalize
from tests.profiles.people import person

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                     reason="pg_trgm trigram search runs on PostgreSQL only (DATABASE_URL)")
sqlite_only = pytest.mark.skipif(connection.vendor == "postgresql",
                                 reason="the plain substring path is the one SQLite uses")


def search(query: str) -> list[int]:
    filterset = ProfileFilter({"q": query}, queryset=Profile.objects.filter(merged_into__isnull=True))
    assert filterset.is_valid()
    return list(filterset.qs.values_list("pk", flat=True))


@pytest.fixture
def people():
    return {
        "anna": person("Anna.Mueller@Example.de", first_name="Anna", last_name="Müller", phone="+4930123456",
                       extra_identities=[("user_id", "CRM-000123")]),
        "jose": person("jose@example.es", first_name="José", last_name="García"),
        "bert": person("bert@example.de", first_name="Bert", last_name="Schmidt"),
    }


def test_query_normalization():
    assert query_normalize("  Anna.Mueller@Example.DE ") == ("anna.mueller@example.de", "anna.mueller@example.de")
    assert query_normalize("030 123456") == ("+4930123456", "+4930123456")
    assert query_normalize("+49 (30) 123-456") == ("+4930123456", "+4930123456")
    assert query_normalize("0049 30 123456") == ("+4930123456", "+4930123456")
    assert query_normalize("Müller") == ("mueller", "Müller")
    assert query_normalize("José  GARCÍA") == ("jose garcia", "José GARCÍA")
    assert query_normalize("   ") == ("", "")
    assert fold("Straße ÄÖÜ") == "strasse aeoeue"


def test_identifier_candidates_normalize_like_the_pipeline():
    assert identifier_candidates("email", " Anna@Example.DE ") == ["anna@example.de", "Anna@Example.DE"]
    assert identifier_candidates("phone", "030 123456")[0] == "+4930123456"
    assert identifier_candidates("user_id", "CRM-1") == ["CRM-1"]
    assert identifier_candidates("email", "  ") == []


def test_search_text_is_kept_by_the_database(people):
    anna = Profile.objects.get(pk=people["anna"].pk)
    assert "mueller" in anna.search_text and "anna.mueller@example.de" in anna.search_text
    assert "jose garcia" in Profile.objects.get(pk=people["jose"].pk).search_text


def test_search_by_name_email_phone_and_identifier_on_every_database(people):
    anna, jose, bert = people["anna"].pk, people["jose"].pk, people["bert"].pk
    assert search("Müller") == [anna]
    assert search("mueller") == [anna]
    assert search("ANNA.MUELLER@EXAMPLE.DE") == [anna]
    assert search("030 123456") == [anna]
    assert search("crm-000123") == [anna]
    assert search("garcia") == [jose]
    assert search("José") == [jose]
    assert search("schmidt") == [bert]
    assert search("") == sorted([anna, jose, bert], reverse=True)
    assert search("nobody-like-this") == []


@sqlite_only
def test_plain_path_is_substring_only(people):
    assert search("Schmitt") == []  # no fuzzy matching without trigrams


@postgresql_only
def test_trigram_path_forgives_typos_and_orders_by_similarity(people):
    bert = people["bert"].pk
    assert search("Schmitt") == [bert]
    close = person("bert.schmid@example.de", first_name="Bert", last_name="Schmid").pk
    assert search("Bert Schmidt")[:2] == [bert, close]
    assert people["anna"].pk in search("Anna Müler")


@postgresql_only
def test_trigram_indexes_exist():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
                       "('profiles_profile', 'profiles_identity') AND indexdef ILIKE '%gin_trgm_ops%'")
        rows = dict(cursor.fetchall())
    assert any("search_text" in d for d in rows.values()) and any("(value" in d for d in rows.values())


def test_ui_list_and_api_list_use_the_same_search(people, client, make_user, api_as):
    user = make_user("Sales", username="sales-in-the-browser")
    client.force_login(user)
    html = client.get("/profiles/", {"q": "garcia"}).content.decode()
    assert "José García" in html and "Anna" not in html
    response = api_as("Sales").get("/api/v1/profiles/", {"q": "garcia"})
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [people["jose"].pk]
