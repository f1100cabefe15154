"""API conventions: token and session auth, the django-filter backend, pagination, one JSON error format, the
OpenAPI schema and its docs pages from our own static files, and the health checks."""

import io
import json
import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from profiles.services import Observation, observations_apply
from tests.core.helpers import manage, project_env, python

pytestmark = pytest.mark.django_db


def make_profiles(count: int) -> list[int]:
    return observations_apply(observations=[
        Observation(identities=[("email", f"person{n}@example.org")], timestamp=timezone.now(),
                    traits={"email": f"person{n}@example.org"}, source="shop")
        for n in range(count)])


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"error"}
    error = body["error"]
    assert error["status"] == status
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    return error


# --- authentication ------------------------------------------------------------------------------------------


def test_drf_create_token_gives_a_working_token(make_user):
    make_user("Sales", username="sam")
    out = io.StringIO()
    call_command("drf_create_token", "sam", stdout=out)
    key = re.search(r"Generated token (\w+) for user sam", out.getvalue()).group(1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/profiles/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(client.get("/api/v1/profiles/"), 401)


def test_drf_create_token_refuses_an_unknown_user(roles):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("drf_create_token", "nobody-of-that-name")


def test_session_auth_works_and_writes_need_the_csrf_token(make_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user("Admin"))
    assert client.get("/api/v1/profiles/").status_code == 200
    error = assert_error(client.post("/api/v1/purposes/", {"key": "x", "name": "X"}, format="json"), 403)
    assert "CSRF" in error["message"]


def test_no_credentials_is_401_with_a_challenge():
    response = APIClient().get("/api/v1/profiles/")
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Token")


# --- filters and pagination ----------------------------------------------------------------------------------


def test_the_django_filter_backend_filters_api_lists(api_as):
    assert "django_filters.rest_framework.DjangoFilterBackend" in settings.REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"]
    make_profiles(2)
    observations_apply(observations=[Observation(identities=[("phone", "+4930123456")],
                                                 timestamp=timezone.now(), source="call_center")])
    client = api_as("Sales")
    assert client.get("/api/v1/identities/").json()["count"] == 3
    phones = client.get("/api/v1/identities/", {"type": "phone"}).json()
    assert [row["value"] for row in phones["results"]] == ["+4930123456"]
    assert client.get("/api/v1/identities/", {"source": "shop"}).json()["count"] == 2
    error = assert_error(client.get("/api/v1/identities/", {"type": "fax"}), 400)
    assert "type" in error["fields"]


def test_api_lists_are_paginated(api_as):
    ids = make_profiles(5)
    client = api_as("Sales")
    first = client.get("/api/v1/profiles/", {"page_size": 2, "ordering": "id"}).json()
    assert first["count"] == 5
    assert [row["id"] for row in first["results"]] == sorted(ids)[:2]
    assert first["previous"] is None
    assert "page=2" in first["next"]
    last = client.get("/api/v1/profiles/", {"page_size": 2, "page": 3, "ordering": "id"}).json()
    assert [row["id"] for row in last["results"]] == sorted(ids)[4:]
    assert last["next"] is None
    assert_error(client.get("/api/v1/profiles/", {"page": 99}), 404)
    default = client.get("/api/v1/profiles/").json()
    assert len(default["results"]) == 5


def test_the_page_size_is_capped():
    from cdp.core.pagination import PageNumberPagination

    assert PageNumberPagination.max_page_size == 500
    assert settings.REST_FRAMEWORK["PAGE_SIZE"] == PageNumberPagination.page_size


# --- one error format ----------------------------------------------------------------------------------------


def test_a_400_names_each_wrong_field(api_as):
    error = assert_error(api_as("Admin").post("/api/v1/purposes/", {"name": "", "legal_basis": "whim"},
                                              format="json"), 400)
    assert error["code"] == "invalid"
    assert set(error["fields"]) >= {"key", "name", "legal_basis"}
    assert all(isinstance(messages, list) and messages for messages in error["fields"].values())


def test_malformed_json_is_a_400_in_the_same_format(api_as):
    response = api_as("Admin").post("/api/v1/purposes/", data="{not json", content_type="application/json")
    assert_error(response, 400)


def test_401_403_404_and_405_share_the_format(api_as):
    assert_error(APIClient().get("/api/v1/audit-entries/"), 401)
    assert_error(api_as("Marketing").get("/api/v1/audit-entries/"), 403)
    admin = api_as("Admin")
    assert_error(admin.get("/api/v1/profiles/999999/"), 404)
    assert_error(admin.get("/api/v1/no-such-endpoint/"), 404)
    error = assert_error(admin.post("/api/v1/profiles/", {}, format="json"), 405)
    assert "POST" in error["message"]


def test_a_server_error_under_the_api_is_json(rf):
    from cdp.core.views import server_error

    response = server_error(rf.get("/api/v1/profiles/"))
    assert_error(response, 500)
    assert server_error(rf.get("/profiles/")).status_code == 500


# --- OpenAPI -------------------------------------------------------------------------------------------------


def test_the_schema_is_openapi_3(api_as):
    response = APIClient().get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/profiles/" in schema["paths"]
    assert "/api/v1/audit-entries/" in schema["paths"]
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_the_schema_validates_without_warnings(tmp_path):
    result = manage("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"),
                    env=project_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "schema.yml").read_text().startswith("openapi: 3")


@pytest.mark.parametrize("url", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_the_docs_pages_load_everything_from_our_static_files(client, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn" not in html.lower()
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "no asset from another host"
    assets = re.findall(r"(?:src|href)=\"(/static/[^\"]+)\"", html)
    assert assets
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not among our static files"
    # No inline script: the strict CSP would block it.
    assert not re.search(r"<script>(?!\s*</script>)", html)
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_the_swagger_page_script_is_served_by_us(client):
    html = client.get("/api/v1/docs/").content.decode()
    [script_url] = [u for u in re.findall(r"<script src=\"([^\"]+)\"", html) if not u.startswith("/static/")]
    script = client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


# --- health checks -------------------------------------------------------------------------------------------


def test_healthz_answers_without_a_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_the_database_and_the_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True, "detail": settings.DATABASES["default"]["ENGINE"].split(".")[-1]
                                          .replace("sqlite3", "sqlite").replace("postgresql", "postgresql")}
    assert body["checks"]["broker"]["ok"] is True


READYZ_PROBE = """
import json
import django
django.setup()
from django.test import Client
response = Client().get("/readyz")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def test_readyz_is_503_when_the_broker_is_unreachable(tmp_path):
    # Port 9 (discard) is closed on a test machine: nothing answers there.
    result = python(READYZ_PROBE, env=project_env(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:9/0"))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == 503
    assert seen["body"]["status"] == "unavailable"
    assert seen["body"]["checks"]["broker"]["ok"] is False
    assert seen["body"]["checks"]["database"]["ok"] is True


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path):
    result = python(READYZ_PROBE, env=project_env(
        tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:9/cdp_nowhere"))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == 503
    assert seen["body"]["checks"]["database"]["ok"] is False


# --- the token cache (cdp.core.api.authentication) ----------------------------------------------------------


def _token_client(make_user, role: str, username: str):
    from rest_framework.authtoken.models import Token

    user = make_user(role, username=username)
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return user, token, client


def test_a_cached_token_costs_no_query_and_a_deleted_token_stops_at_once(make_user, django_assert_num_queries):
    user, token, client = _token_client(make_user, "Sales", "sam-cached")
    assert client.get("/api/v1/purposes/").status_code == 200
    with django_assert_num_queries(2):  # the page's count and rows: no token, user or permission queries
        assert client.get("/api/v1/purposes/").status_code == 200
    token.delete()
    assert_error(client.get("/api/v1/purposes/"), 401)


def test_a_changed_role_or_a_deactivated_user_takes_effect_at_once(make_user):
    from django.contrib.auth.models import Group

    user, _, client = _token_client(make_user, "Sales", "sam-roles")
    assert client.get("/api/v1/audit-entries/").status_code == 403
    user.groups.add(Group.objects.get(name="Privacy"))
    assert client.get("/api/v1/audit-entries/").status_code == 200
    user.groups.clear()
    assert client.get("/api/v1/audit-entries/").status_code == 403
    user.is_active = False
    user.save()
    assert_error(client.get("/api/v1/purposes/"), 401)


def test_the_cached_user_expires(make_user, monkeypatch):
    from cdp.core.api import authentication

    user, _, client = _token_client(make_user, "Sales", "sam-expiry")
    assert client.get("/api/v1/purposes/").status_code == 200
    # Another process deactivated the user: this process has no signal, and learns it when the entry expires.
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert client.get("/api/v1/purposes/").status_code == 200
    monkeypatch.setattr(authentication, "TOKEN_CACHE_SECONDS", 0.0)
    authentication.tokens_forget()
    assert_error(client.get("/api/v1/purposes/"), 401)
