"""The personal-data registry: every model that holds personal data is covered by a registered handler, and every
handler answers for a real profile."""

import json

import pytest
from django.apps import apps
from django.db import models
from django.utils import timezone

from cdp.core import registry
from profiles.services import Observation, observations_apply

OUR_APPS = ["core", "profiles", "consent", "ingestion", "segments", "activation"]


def holds_personal_data(model) -> bool:
    """The profile itself, a model with a foreign key (or one-to-one) to it, or one that says so."""
    if model._meta.label_lower == "profiles.profile" or getattr(model, "personal_data", False):
        return True
    return any(isinstance(field, models.ForeignKey) and field.related_model._meta.label_lower == "profiles.profile"
               for field in model._meta.get_fields())


def test_every_model_holding_personal_data_has_a_registered_handler():
    covered = registry.covered_models()
    uncovered = [model._meta.label for label in OUR_APPS for model in apps.get_app_config(label).get_models()
                 if holds_personal_data(model) and model._meta.label_lower not in covered]
    assert not uncovered, (
        f"these models hold personal data but no export/erase handler covers them: {uncovered}. Register them "
        "with cdp.core.registry.register(..., models=[...]) from the app's AppConfig.ready().")


def test_the_rule_sees_the_models_we_know_hold_personal_data():
    for label in ["profiles.Profile", "profiles.Identity", "profiles.Event", "consent.ConsentRecord"]:
        assert holds_personal_data(apps.get_model(label)), label
    assert not holds_personal_data(apps.get_model("consent.Purpose"))


def test_every_covered_model_exists():
    for label in registry.covered_models():
        assert apps.get_model(label), label


@pytest.mark.django_db
def test_every_export_handler_answers_with_json_for_a_real_profile():
    [profile_id] = observations_apply(observations=[Observation(
        identities=[("email", "jonas@example.de")], timestamp=timezone.now(), traits={"email": "jonas@example.de"},
        event_type="track", event_name="Product Viewed", source="web", channel="web")])
    profile = apps.get_model("profiles", "Profile").objects.get(pk=profile_id)
    exported = registry.export_all(profile)
    assert set(exported) == {handler.app_label for handler in registry.handlers()}
    text = json.dumps(exported)
    assert "jonas@example.de" in text
    assert "Product Viewed" in text
