import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from cdp.core.roles import ROLES
from cdp.core.services import roles_sync


@pytest.fixture
def roles(db):
    roles_sync()
    return {name: Group.objects.get(name=name) for name in ROLES}


@pytest.fixture
def make_user(roles):
    """A user with one role (or none): ``make_user("Marketing")``."""

    def make(role: str | None = None, username: str | None = None):
        user = get_user_model().objects.create_user(username=username or f"{(role or 'nobody').lower()}-user",
                                                    password="pw-for-tests-only")
        if role:
            user.groups.add(roles[role])
        return user

    return make


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def api_as(make_user):
    """An API client logged in (by token) as a user of the given role."""
    from rest_framework.authtoken.models import Token

    def client_for(role: str | None):
        user = make_user(role)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        client.user = user
        return client

    return client_for


@pytest.fixture(autouse=True)
def eager_tasks(request):
    """Celery tasks run in-process in the tests, also when the suite runs with a broker: the tests check what the
    tasks do, and the broker round trip itself is tested by the tests marked ``broker`` (tests/core/test_celery.py),
    which keep the real broker."""
    from celery.result import allow_join_result

    from cdp.celery import app

    # Celery keeps one process-wide "inside a task" flag; eager tasks run by a live-server thread while the test
    # thread ran its own can leave it set, and result.get() would then refuse to wait in every later test.
    with allow_join_result():
        if request.node.get_closest_marker("broker"):
            yield
            return
        before = app.conf.task_always_eager, app.conf.task_eager_propagates
        app.conf.task_always_eager = app.conf.task_eager_propagates = True
        yield
        app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Caches kept for a few seconds or minutes (the real-time re-check's compiled segments, the segment builder's
    catalog of trait and event names, which lives in the shared cache) must not carry one test's rolled-back rows
    into the next."""
    from segments.catalog import catalog_clear
    from segments.services import recheck_plan_clear

    for clear in (recheck_plan_clear, catalog_clear):
        clear()
    yield
    for clear in (recheck_plan_clear, catalog_clear):
        clear()


@pytest.fixture
def encryption_keys(settings):
    """Set CDP_ENCRYPTION_KEYS for a test: ``encryption_keys(new, old)``, newest first (cdp.core.crypto)."""
    from cdp.core import crypto

    def use(*values):
        settings.CDP_ENCRYPTION_KEYS = list(values)
        crypto.keys_changed()

    yield use
    crypto.keys_changed()
