import pytest
from django.utils import timezone

from consent.services import purposes_install
from profiles.models import Profile
from profiles.services import Observation, observations_apply


@pytest.fixture
def purposes(db):
    return {purpose.key: purpose for purpose in purposes_install()}


@pytest.fixture
def person(db):
    """Jonas, known by email, phone, user id and a device, with a name and an event."""
    [profile_id] = observations_apply(observations=[Observation(
        identities=[("user_id", "u-4711"), ("email", "jonas.weber@example.de"), ("phone", "+491701234567"),
                    ("anonymous_id", "anon-jw-1")],
        timestamp=timezone.now(), source="web", channel="web",
        traits={"first_name": "Jonas", "last_name": "Weberknecht", "email": "jonas.weber@example.de",
                "phone": "+491701234567", "city": "Köln"},
        event_type="track", event_name="Order Completed", properties={"total": 42})])
    return Profile.objects.get(pk=profile_id)
