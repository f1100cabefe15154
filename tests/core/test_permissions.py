"""One permission mixin for every UI and API view: the URL resolver is walked, and every view it reaches must be a
cdp.core.permissions.PermissionMixin, except the few public views below, each with its reason."""

import uuid

import pytest
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from cdp.core.permissions import PermissionMixin

# Views that do not go through the mixin, on purpose. Keyed by URL name ("namespace:*" for a whole namespace).
PUBLIC_VIEWS = {
    "login": "the login page must be reachable without a login",
    "logout": "logging out needs no permission",
    "healthz": "liveness probe for the process manager and load balancer",
    "readyz": "readiness probe for the load balancer; reports no data",
    "api-schema": "the OpenAPI schema describes the API and holds no data",
    "api-docs": "Swagger UI for the schema (static, from drf-spectacular-sidecar)",
    "api-redoc": "ReDoc for the schema (static, from drf-spectacular-sidecar)",
    "tracking:*": "the Segment-compatible tracking API authenticates each call by the source's write key",
}
# The Django admin checks is_staff and the model permissions itself.
SKIPPED_NAMESPACES = {"admin"}


def walk(patterns=None, namespace: str = ""):
    """(qualified url name, URLPattern) for every pattern the root URLconf reaches."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
            if inner.split(":")[0] in SKIPPED_NAMESPACES:
                continue
            yield from walk(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else (pattern.name or "")
            yield name, pattern


def is_public(name: str) -> bool:
    return name in PUBLIC_VIEWS or any(
        key.endswith(":*") and name.startswith(key[:-1]) for key in PUBLIC_VIEWS)


def view_class(pattern: URLPattern):
    callback = pattern.callback
    return getattr(callback, "view_class", None) or getattr(callback, "cls", None)


def guarded():
    return [(name, pattern) for name, pattern in walk() if not is_public(name)]


def test_the_walk_sees_the_ui_and_the_api():
    names = {name for name, _ in walk()}
    assert {"dashboard", "audit-log", "profiles:list", "profile-list", "auditentry-list", "healthz"} <= names


def test_every_view_is_a_permission_mixin_except_the_public_ones():
    offenders = []
    for name, pattern in guarded():
        cls = view_class(pattern)
        if cls is None or not issubclass(cls, PermissionMixin):
            callback = pattern.callback
            offenders.append(f"{name or pattern.pattern}: {cls or callback.__module__ + '.' + callback.__name__}")
    assert not offenders, (
        "These views bypass cdp.core.permissions.PermissionMixin (use CDPPageView / FilteredListView / "
        "CDP*ViewSet / CDPAPIView, or add them to PUBLIC_VIEWS with a reason):\n" + "\n".join(offenders))


def instance(pattern: URLPattern):
    """The view object as Django/DRF would build it for a request to this pattern."""
    callback = pattern.callback
    cls = view_class(pattern)
    initkwargs = dict(getattr(callback, "initkwargs", None) or getattr(callback, "view_initkwargs", None) or {})
    actions = getattr(callback, "actions", None)
    view = cls(**initkwargs)
    if actions:
        view.action_map = actions
        view.action = actions.get("get") or next(iter(actions.values()))
    return view


def test_every_guarded_view_can_tell_what_it_requires():
    request = RequestFactory().get("/")
    for name, pattern in guarded():
        view = instance(pattern)
        required = view.get_permission_required(request)
        assert isinstance(required, tuple), name
        assert all(isinstance(p, str) and "." in p for p in required), (name, required)


SAMPLES = {"int": "1", "path": "x", "slug": "x", "str": "x", "uuid": str(uuid.uuid4())}


def sample_url(name: str, pattern: URLPattern) -> str | None:
    """A URL that resolves to this pattern, or None for DRF's unnamed format-suffix variants."""
    if not name or "format" in pattern.pattern.regex.groupindex:
        return None
    converters = getattr(pattern.pattern, "converters", {})
    kwargs = {key: SAMPLES.get(type(conv).__name__.replace("Converter", "").lower(), "1")
              for key, conv in converters.items()}
    for group in pattern.pattern.regex.groupindex:
        kwargs.setdefault(group, "1")
    return reverse(name, kwargs=kwargs)


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_the_login_or_refused(client):
    checked = 0
    for name, pattern in guarded():
        url = sample_url(name, pattern)
        if url is None:
            continue
        response = client.get(url)
        if url.startswith("/api/"):
            assert response.status_code in (401, 403), (url, response.status_code)
            assert response.json()["error"]["status"] == response.status_code
        else:
            assert response.status_code == 302, (url, response.status_code)
            assert response["Location"].startswith(reverse("login")), url
        checked += 1
    assert checked >= 10


@pytest.mark.django_db
def test_a_signed_in_user_without_a_role_is_refused_wherever_a_permission_is_required(client, make_user):
    client.force_login(make_user(None))
    request = RequestFactory().get("/")
    refused = 0
    for name, pattern in guarded():
        url = sample_url(name, pattern)
        if url is None or not instance(pattern).get_permission_required(request):
            continue
        response = client.get(url)
        assert response.status_code == 403, (url, response.status_code)
        refused += 1
    assert refused >= 10
