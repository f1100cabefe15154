"""People built through the real pipeline service (observations_apply), for the 360° page, search, notes and
API tests."""

from datetime import timedelta

from django.utils import timezone

from profiles.models import Profile
from profiles.services import Observation, observations_apply


def person(email: str, *, first_name: str = "", last_name: str = "", phone: str = "", source: str = "crm",
           channel: str = "crm", traits: dict | None = None, events: int = 0, event_channel: str = "web",
           days_ago: int = 0, extra_identities: list[tuple[str, str]] | None = None) -> Profile:
    """A profile identified by ``email`` (and ``phone``), with name traits and ``events`` track events."""
    at = timezone.now() - timedelta(days=days_ago)
    all_traits = {"email": email, **({"first_name": first_name} if first_name else {}),
                  **({"last_name": last_name} if last_name else {}), **({"phone": phone} if phone else {}),
                  **(traits or {})}
    identities = [("email", email.lower()), *([("phone", phone)] if phone else []), *(extra_identities or [])]
    observations = [Observation(identities=identities, timestamp=at, source=source, channel=channel,
                                traits=all_traits, event_type="identify", message_id=f"identify-{email}")]
    for i in range(events):
        observations.append(Observation(
            identities=identities[:1], timestamp=at - timedelta(minutes=i + 1), source="web", channel=event_channel,
            event_type="track" if i % 3 else "page", event_name="Product Viewed" if i % 3 else "",
            properties={"sku": f"SKU-{i}"}, message_id=f"event-{email}-{i}"))
    ids = observations_apply(observations=observations)
    return Profile.objects.get(pk=ids[0])
