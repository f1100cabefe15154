"""People with traits and events built through the real profiles service."""

from datetime import timedelta

import pytest
from django.utils import timezone

from profiles.models import Profile
from profiles.services import Observation, observations_apply


def shopper(email: str, *, traits: dict | None = None, events: list[tuple] = (), channel: str = "web") -> Profile:
    """A profile identified by ``email`` with ``traits``, and ``events`` given as (name, hours_ago, properties)."""
    now = timezone.now()
    identities = [("email", email)]
    observations = [Observation(identities=identities, timestamp=now - timedelta(days=400), source="crm",
                                channel="crm", traits={"email": email, **(traits or {})}, event_type="identify",
                                message_id=f"identify-{email}")]
    for i, (name, hours_ago, properties) in enumerate(events):
        observations.append(Observation(
            identities=identities, timestamp=now - timedelta(hours=hours_ago), source="web", channel=channel,
            event_type="track", event_name=name, properties=properties or {}, message_id=f"{email}-{i}-{name}"))
    ids = observations_apply(observations=observations)
    return Profile.objects.get(pk=ids[0])


@pytest.fixture
def make_shopper(db):
    return shopper
