"""The Django admin covers every model of our apps, and every admin page renders for a superuser."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from cdp.core.services import audit_record
from consent.services import consent_record, purposes_install
from profiles.services import Observation, observations_apply

OUR_APPS = ["core", "profiles", "consent", "ingestion", "segments", "activation"]


def our_models():
    return [model for label in OUR_APPS for model in apps.get_app_config(label).get_models()]


def test_every_model_of_our_apps_is_in_the_admin():
    missing = [model._meta.label for model in our_models() if model not in admin.site._registry]
    assert not missing, f"not registered in the admin: {missing}"


@pytest.fixture
def superuser_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client, user


@pytest.fixture
def some_data(superuser_client):
    """A little of everything the platform layers make, so that list columns have rows to render."""
    _, user = superuser_client
    [profile_id] = observations_apply(observations=[Observation(
        identities=[("email", "lena@example.de"), ("anonymous_id", "anon-1")], timestamp=timezone.now(),
        traits={"first_name": "Lena", "email": "lena@example.de"}, event_type="track", event_name="Order Completed",
        properties={"total": 42.5}, source="shop", channel="shop")])
    [purpose, *_] = purposes_install()
    consent_record(profile=apps.get_model("profiles", "Profile").objects.get(pk=profile_id), purpose=purpose,
                   status="granted", source="web")
    audit_record(actor=user, action="view", object_type="profiles.profile", object_id=profile_id,
                 profile_id=profile_id, summary="Viewed in a test")
    return profile_id


@pytest.mark.django_db
@pytest.mark.parametrize("model", our_models(), ids=lambda m: m._meta.label)
def test_each_admin_page_of_each_model_renders(superuser_client, some_data, model):
    client, _ = superuser_client
    prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    model_admin = admin.site._registry.get(model)
    if model_admin is None:
        pytest.fail(f"{model._meta.label} is not registered in the admin")
    changelist = client.get(reverse(f"{prefix}_changelist"))
    assert changelist.status_code == 200
    if model_admin.search_fields:
        assert client.get(reverse(f"{prefix}_changelist"), {"q": "lena"}).status_code == 200
    request = changelist.wsgi_request
    if model_admin.has_add_permission(request):
        assert client.get(reverse(f"{prefix}_add")).status_code == 200
    first = model._default_manager.first()
    if first is not None:
        assert client.get(reverse(f"{prefix}_change", args=[first.pk])).status_code == 200
