"""Every write to profiles. Keyword-only arguments, <noun>_<verb>, atomic.

Identity resolution here is the minimal deterministic one (user id, email, phone, anonymous id, source record):
the first identity that is known decides the profile, and the others are attached to it. The unification issue
replaces the inside of ``identities_resolve`` (rules, limits, merges) behind the same interface.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from profiles.models import Event, Identity, Profile

# Which identity decides when a message carries several that point to different profiles.
IDENTITY_PRIORITY = [
    Identity.Type.USER_ID,
    Identity.Type.EMAIL,
    Identity.Type.PHONE,
    Identity.Type.RECORD,
    Identity.Type.ANONYMOUS_ID,
]


@dataclass
class Observation:
    """What one standardized message says about one person, as ingestion hands it over."""

    identities: list[tuple[str, str]]
    timestamp: datetime
    source: str = ""
    channel: str = ""
    traits: dict = field(default_factory=dict)
    event_type: str | None = None
    event_name: str = ""
    properties: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    message_id: str = ""


def _rank(identity_type: str) -> int:
    return IDENTITY_PRIORITY.index(identity_type) if identity_type in IDENTITY_PRIORITY else len(IDENTITY_PRIORITY)


@transaction.atomic
def identities_resolve(*, identities: list[tuple[str, str]], source: str = "", at: datetime | None = None) -> Profile:
    """The profile these identities belong to, created if none is known. Unknown identities are attached."""
    if not identities:
        raise ValueError("At least one identity is needed to resolve a profile.")
    at = at or timezone.now()
    query = Q()
    for identity_type, value in identities:
        query |= Q(type=identity_type, value=value)
    known = sorted(Identity.objects.filter(query).select_related("profile"), key=lambda i: _rank(i.type))
    profile = known[0].profile if known else Profile.objects.create(first_seen_at=at, last_seen_at=at)
    have = {(i.type, i.value) for i in known}
    for identity_type, value in identities:
        if (identity_type, value) in have:
            continue
        try:
            with transaction.atomic():
                Identity.objects.create(profile=profile, type=identity_type, value=value, source=source)
        except IntegrityError:
            # Another worker attached it meanwhile; the first one to arrive keeps it.
            pass
    return profile


@transaction.atomic
def profile_traits_update(*, profile: Profile, traits: dict, at: datetime | None = None) -> Profile:
    """Merge traits into the golden record (most recent wins); an explicit None removes a trait."""
    at = at or timezone.now()
    merged = dict(profile.traits or {})
    for key, value in traits.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    profile.traits = merged
    profile.first_seen_at = min(filter(None, [profile.first_seen_at, at]))
    profile.last_seen_at = max(filter(None, [profile.last_seen_at, at]))
    profile.save(update_fields=["traits", "first_seen_at", "last_seen_at", "updated_at"])
    return profile


@transaction.atomic
def observations_apply(*, observations: list[Observation]) -> list[int]:
    """Resolve, update traits and append events for a batch. Returns the id of the profile of each observation."""
    profile_ids = []
    events = []
    for obs in observations:
        profile = identities_resolve(identities=obs.identities, source=obs.source, at=obs.timestamp)
        profile_traits_update(profile=profile, traits=obs.traits, at=obs.timestamp)
        if obs.event_type:
            events.append(Event(profile=profile, type=obs.event_type, name=obs.event_name[:200],
                                channel=obs.channel, properties=obs.properties, context=obs.context,
                                timestamp=obs.timestamp, source=obs.source, message_id=obs.message_id))
        profile_ids.append(profile.pk)
    Event.objects.bulk_create(events, batch_size=1000)
    return profile_ids


# --- personal data (registered in the cdp.core registry) -----------------------------------------------------


def personal_data_export(profile: Profile) -> dict:
    return {
        "profile": {"id": profile.pk, "created_at": profile.created_at.isoformat(), "traits": profile.traits,
                    "first_seen_at": profile.first_seen_at and profile.first_seen_at.isoformat(),
                    "last_seen_at": profile.last_seen_at and profile.last_seen_at.isoformat()},
        "identities": [{"type": i.type, "value": i.value, "source": i.source,
                        "first_seen_at": i.first_seen_at.isoformat()} for i in profile.identities.all()],
        "events": [{"type": e.type, "name": e.name, "channel": e.channel, "timestamp": e.timestamp.isoformat(),
                    "properties": e.properties, "source": e.source} for e in profile.events.order_by("timestamp")],
    }


def personal_data_erase(profile: Profile) -> int:
    """Events and identities go with the profile (CASCADE); the profile row is deleted last, by consent's
    data-subject-request service, after every app has erased its part. Here: events and identities."""
    events, _ = profile.events.all().delete()
    identities, _ = profile.identities.all().delete()
    return events + identities
