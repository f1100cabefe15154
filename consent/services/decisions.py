"""Purposes and consent decisions: recorded one by one (UI, API) or taken from the tracking API's
``context.consent.categoryPreferences`` (Segment's consent spec), a record per changed decision only."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from consent.models import ConsentCategory, ConsentRecord, DataSubjectRequest, Purpose
from profiles.signals import profile_changed_on_commit

# The purposes every installation starts with.
STOCK_PURPOSES = [
    ("email_marketing", "Email marketing", Purpose.LegalBasis.CONSENT),
    ("personalization", "Personalization", Purpose.LegalBasis.CONSENT),
    ("analytics", "Analytics", Purpose.LegalBasis.LEGITIMATE_INTEREST),
    ("profiling", "Profiling", Purpose.LegalBasis.CONSENT),
    ("third_party_sharing", "Sharing with third parties", Purpose.LegalBasis.CONSENT),
]

# Consent-manager categories that map to a stock purpose under another name (a category named like a purpose key
# needs no mapping). Administrators change or add mappings (ConsentCategory) in the UI and the admin.
STOCK_CATEGORIES = {"marketing": "email_marketing", "advertising": "third_party_sharing"}


@transaction.atomic
def purposes_install() -> list[Purpose]:
    purposes = [Purpose.objects.get_or_create(key=key, defaults={"name": name, "legal_basis": basis})[0]
                for key, name, basis in STOCK_PURPOSES]
    by_key = {purpose.key: purpose for purpose in purposes}
    for category, key in STOCK_CATEGORIES.items():
        ConsentCategory.objects.get_or_create(category=category, defaults={"purpose": by_key[key]})
    return purposes


class PurposeUnknown(ValueError):
    """A decision about a purpose that does not exist."""


@transaction.atomic
def consent_record(*, profile, purpose: Purpose, status: str, source: str = "", proof: dict | None = None,
                   at: datetime | None = None) -> ConsentRecord:
    if status not in ConsentRecord.Status.values:
        raise ValueError(f"Unknown consent status {status!r}")
    record = ConsentRecord.objects.create(profile=profile, purpose=purpose, status=status, source=source[:64],
                                          proof=proof or {}, recorded_at=at or timezone.now())
    # A decision changes what may be done with the profile: segments that require consent re-check it.
    profile_changed_on_commit([profile.pk])
    return record


@dataclass
class ConsentContext:
    """The consent preferences one message carried for one profile."""

    profile_id: int
    preferences: dict
    at: datetime
    source: str = ""
    proof: dict = field(default_factory=dict)


def category_purposes() -> dict[str, Purpose]:
    """Consent-manager category -> purpose: every purpose under its own key, then the configured mappings."""
    purposes = {purpose.key: purpose for purpose in Purpose.objects.all()}
    by_id = {purpose.pk: purpose for purpose in purposes.values()}
    return {**purposes, **{c.category: by_id[c.purpose_id] for c in ConsentCategory.objects.all()}}


def _latest(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, datetime]]:
    """The current (status, recorded_at) of each (profile id, purpose id) pair that has a decision."""
    if not pairs:
        return {}
    profile_ids = {profile_id for profile_id, _ in pairs}
    purpose_ids = {purpose_id for _, purpose_id in pairs}
    latest: dict[tuple[int, int], tuple[str, datetime]] = {}
    rows = (ConsentRecord.objects.filter(profile_id__in=profile_ids, purpose_id__in=purpose_ids)
            .order_by("profile_id", "purpose_id", "-recorded_at", "-id")
            .values_list("profile_id", "purpose_id", "status", "recorded_at"))
    for profile_id, purpose_id, status, recorded_at in rows:
        latest.setdefault((profile_id, purpose_id), (status, recorded_at))
    return latest


@transaction.atomic
def consent_contexts_apply(*, items: list[ConsentContext]) -> list[ConsentRecord]:
    """Record the decisions of many messages at once (the pipeline's batch): one query for the current state,
    one INSERT. A decision is recorded only when it changes the profile's current one (a ``true`` after a grant
    records nothing) and is not older than it; ``false`` after a grant is a withdrawal, otherwise a denial.
    Categories that map to no purpose and values that are not booleans are ignored."""
    if not items:
        return []
    purposes = category_purposes()
    wanted: list[tuple[ConsentContext, Purpose, bool]] = []
    for item in sorted(items, key=lambda item: item.at):
        for category, value in (item.preferences or {}).items():
            purpose = purposes.get(str(category))
            if purpose is not None and isinstance(value, bool):
                wanted.append((item, purpose, value))
    state = _latest({(item.profile_id, purpose.pk) for item, purpose, _ in wanted})
    records = []
    for item, purpose, granted in wanted:
        pair = (item.profile_id, purpose.pk)
        current, current_at = state.get(pair, ("", None))
        if current_at is not None and item.at < current_at:
            continue
        if current and (current == ConsentRecord.Status.GRANTED) == granted:
            continue  # the same decision again (a denial after a withdrawal is no change either)
        if granted:
            status = ConsentRecord.Status.GRANTED
        elif current == ConsentRecord.Status.GRANTED:
            status = ConsentRecord.Status.WITHDRAWN
        else:
            status = ConsentRecord.Status.DENIED
        records.append(ConsentRecord(profile_id=item.profile_id, purpose=purpose, status=status,
                                     source=item.source[:64], proof=item.proof, recorded_at=item.at))
        state[pair] = (status, item.at)
    if records:
        ConsentRecord.objects.bulk_create(records)
        profile_changed_on_commit(sorted({record.profile_id for record in records}))
    return records


def consent_from_context(*, profile_id: int, preferences: dict, source: str, at: datetime,
                         proof: dict | None = None) -> list[ConsentRecord]:
    """The decisions of one message's ``context.consent.categoryPreferences`` (see ``consent_contexts_apply``)."""
    return consent_contexts_apply(items=[ConsentContext(profile_id=profile_id, preferences=preferences, at=at,
                                                        source=source, proof=proof or {})])


# --- personal data (cdp.core registry) ---------------------------------------------------------------------------


def personal_data_export(profile) -> dict:
    return {
        "consent_records": [
            {"purpose": r.purpose.key, "status": r.status, "source": r.source, "proof": r.proof,
             "recorded_at": r.recorded_at.isoformat()}
            for r in profile.consent_records.select_related("purpose").order_by("recorded_at")],
        "privacy_requests": [
            {"id": r.pk, "kind": r.kind, "status": r.status, "received_at": r.received_at.isoformat(),
             "due_at": r.due_at.isoformat(), "completed_at": r.completed_at.isoformat() if r.completed_at else None}
            for r in profile.privacy_requests.order_by("received_at")],
    }


def personal_data_erase(profile) -> int:
    """Consent records go; the person's data-subject requests stay as evidence, unlinked and without the
    identifier (the erasure service also removes the subject's identifiers from their notes)."""
    deleted, _ = profile.consent_records.all().delete()
    unlinked = DataSubjectRequest.objects.filter(profile=profile).update(profile=None, identifier="")
    return deleted + unlinked


def _context_time(value) -> datetime | None:
    """``context.consent.timestamp`` as an aware datetime, never later than now; None when absent or unreadable."""
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well formed, but no such date
        moment = None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return min(moment, timezone.now())


def consent_observations_apply(*, observations, profile_ids: list[int]) -> list[ConsentRecord]:
    """The decisions in the observations' ``context.consent.categoryPreferences`` (``profiles.services.Observation``
    as the pipeline hands them to profiles, and the profile id ``observations_apply`` returned for each): one
    ``consent_contexts_apply`` for the batch. ``context.consent.proof`` (an object: a file and row, a text version,
    a form URL) is kept in the proof beside the messageId; ``context.consent.timestamp`` (ISO 8601, e.g. a file's
    consent-time column) is when the decisions were made, else the message's time."""
    items = []
    for obs, profile_id in zip(observations, profile_ids, strict=True):
        consent = (obs.context or {}).get("consent")
        preferences = consent.get("categoryPreferences") if isinstance(consent, dict) else None
        if isinstance(preferences, dict) and preferences:
            given = consent.get("proof")
            items.append(ConsentContext(profile_id=profile_id, preferences=preferences,
                                        at=_context_time(consent.get("timestamp")) or obs.timestamp,
                                        source=obs.source, proof={**(given if isinstance(given, dict) else {}),
                                                                  "messageId": obs.message_id,
                                                                  "categoryPreferences": preferences}))
    return consent_contexts_apply(items=items)
