"""Personal data of profiles for the cdp.core registry: export and erase handlers."""

from datetime import datetime

from django.db.models import Q

from cdp.core.masking import reveal
from profiles.models import (
    ComputedValue,
    Event,
    Identity,
    MatchCandidate,
    MatchKey,
    Merge,
    MergeRefusal,
    NeverMerge,
    Note,
    Profile,
    TraitValue,
)
from profiles.services.golden import Policies

# The models these handlers answer for (registered in ProfilesConfig.ready()).
PERSONAL_DATA_MODELS = ["profiles.Profile", "profiles.Identity", "profiles.Event", "profiles.TraitValue",
                        "profiles.Note", "profiles.Merge", "profiles.NeverMerge", "profiles.MatchCandidate",
                        "profiles.MatchKey", "profiles.ComputedValue"]


def _iso(value):
    return value.isoformat() if value else None


def personal_data_export(profile: Profile) -> dict:
    """Everything profiles holds about the person, sensitive traits decrypted (the person gets their data, not
    ciphertext). Raises ``cdp.core.crypto.DecryptionError`` rather than leave out a sensitive trait's value that no
    key decrypts; elsewhere, text that only looks encrypted (anyone can send it) is exported as it is."""
    data = _export(profile)
    sensitive = Policies.cached().sensitive
    for name, value in data["profile"]["traits"].items():
        if name in sensitive:
            reveal(value, strict=True)
    for row in data["trait_values"]:
        if row["name"] in sensitive:
            reveal(row["value"], strict=True)
    return reveal(data, as_sent=True)


def _export(profile: Profile) -> dict:
    return {
        "profile": {"id": profile.pk, "created_at": profile.created_at.isoformat(), "traits": profile.traits,
                    "trait_sources": profile.trait_sources,
                    "first_seen_at": _iso(profile.first_seen_at), "last_seen_at": _iso(profile.last_seen_at),
                    "merged_profile_ids": list(profile.merged_profiles.values_list("id", flat=True))},
        "identities": [{"type": i.type, "value": i.value, "raw_value": i.raw_value, "flagged": i.flagged,
                        "source": i.source, "first_seen_at": i.first_seen_at.isoformat()}
                       for i in profile.identities.all()],
        "trait_values": [{"name": t.name, "value": t.value, "source": t.source,
                          "first_observed_at": t.first_observed_at.isoformat(),
                          "observed_at": t.observed_at.isoformat(), "seen_count": t.seen_count}
                         for t in profile.trait_values.order_by("name", "first_observed_at")],
        "notes": [{"kind": n.kind, "channel": n.channel, "text": n.text, "created_at": n.created_at.isoformat()}
                  for n in profile.notes.all()],
        "events": [{"type": e.type, "name": e.name, "channel": e.channel, "timestamp": e.timestamp.isoformat(),
                    "properties": e.properties, "source": e.source} for e in profile.events.order_by("timestamp")],
        "computed": {v.trait.key: _iso(v.value) if isinstance(v.value, datetime) else v.value
                     for v in ComputedValue.objects.filter(profile=profile).select_related("trait")},
        "merges": [{"id": m.pk, "merged_profile_id": m.loser_id, "reason": m.reason, "rule": m.rule,
                    "score": m.score, "evidence": m.evidence, "created_at": m.created_at.isoformat(),
                    "undone_at": _iso(m.undone_at)} for m in Merge.objects.filter(winner=profile)],
    }


def personal_data_erase(profile: Profile) -> int:
    """Everything profiles holds about the person except the profile row itself, which consent's data-subject
    request service deletes last, after every app has erased its part. Profiles merged into this one are
    tombstones of the same person: they are erased too, and so is the merge journal (it snapshots traits)."""
    ids = [profile.pk, *Profile.objects.filter(merged_into=profile).values_list("id", flat=True)]
    total = 0
    for model in (Event, Identity, TraitValue, Note, MatchKey, ComputedValue):
        deleted, _ = model.objects.filter(profile_id__in=ids).delete()
        total += deleted
    for query in (Q(profile_a_id__in=ids) | Q(profile_b_id__in=ids),):
        total += NeverMerge.objects.filter(query).delete()[0]
        total += MatchCandidate.objects.filter(query).delete()[0]
        total += MergeRefusal.objects.filter(query).delete()[0]
    total += Merge.objects.filter(Q(winner_id__in=ids) | Q(loser_id__in=ids)).delete()[0]
    tombstones = [pk for pk in ids if pk != profile.pk]
    if tombstones:
        total += Profile.objects.filter(pk__in=tombstones).delete()[0]
    return total
