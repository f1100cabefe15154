from datetime import datetime

from django.db import transaction
from django.utils import timezone

from consent.models import ConsentRecord, Purpose
from profiles.signals import profile_changed_on_commit

# The purposes every installation starts with.
STOCK_PURPOSES = [
    ("email_marketing", "Email marketing", Purpose.LegalBasis.CONSENT),
    ("personalization", "Personalization", Purpose.LegalBasis.CONSENT),
    ("analytics", "Analytics", Purpose.LegalBasis.LEGITIMATE_INTEREST),
    ("profiling", "Profiling", Purpose.LegalBasis.CONSENT),
    ("third_party_sharing", "Sharing with third parties", Purpose.LegalBasis.CONSENT),
]


@transaction.atomic
def purposes_install() -> list[Purpose]:
    return [Purpose.objects.get_or_create(key=key, defaults={"name": name, "legal_basis": basis})[0]
            for key, name, basis in STOCK_PURPOSES]


@transaction.atomic
def consent_record(*, profile, purpose: Purpose, status: str, source: str = "", proof: dict | None = None,
                   at: datetime | None = None) -> ConsentRecord:
    if status not in ConsentRecord.Status.values:
        raise ValueError(f"Unknown consent status {status!r}")
    record = ConsentRecord.objects.create(profile=profile, purpose=purpose, status=status, source=source,
                                          proof=proof or {}, recorded_at=at or timezone.now())
    # A decision changes what may be done with the profile: segments that require consent re-check it.
    profile_changed_on_commit([profile.pk])
    return record


def personal_data_export(profile) -> dict:
    return {"consent_records": [
        {"purpose": r.purpose.key, "status": r.status, "source": r.source, "proof": r.proof,
         "recorded_at": r.recorded_at.isoformat()}
        for r in profile.consent_records.select_related("purpose").order_by("recorded_at")]}


def personal_data_erase(profile) -> int:
    deleted, _ = profile.consent_records.all().delete()
    return deleted
