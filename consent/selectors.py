from datetime import datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, Subquery, Sum
from django.utils import timezone

from consent import suppression
from consent.models import (
    ConsentRecord,
    DataSubjectRequest,
    Purpose,
    RetentionRun,
    SuppressedIdentifier,
    SuppressionHit,
)


def purposes_with_rates():
    """Each purpose with the number of profiles whose latest decision grants it."""
    latest = (ConsentRecord.objects.filter(profile=OuterRef("profile"), purpose=OuterRef("purpose"))
              .order_by("-recorded_at", "-id").values("id")[:1])
    current = ConsentRecord.objects.filter(id=Subquery(latest))
    granted = dict(current.filter(status=ConsentRecord.Status.GRANTED).values("purpose")
                   .annotate(n=Count("id")).values_list("purpose", "n"))
    decided = dict(current.values("purpose").annotate(n=Count("id")).values_list("purpose", "n"))
    return [{"purpose": p, "granted": granted.get(p.pk, 0), "decided": decided.get(p.pk, 0)}
            for p in Purpose.objects.all()]


def consent_state(*, profile) -> dict[str, str]:
    """The current status per purpose key, from the latest record of each."""
    state: dict[str, str] = {}
    for key, status in (profile.consent_records.order_by("purpose__key", "-recorded_at", "-id")
                        .values_list("purpose__key", "status")):
        state.setdefault(key, status)
    return state


def purpose_exists(key: str) -> bool:
    return Purpose.objects.filter(key=key).exists()


def consent_granted_exists(*, purpose_key: str, profile_ref) -> Exists:
    """An ``EXISTS`` that is true when the profile's latest decision about the purpose grants it. ``profile_ref``
    names the profile in the outer query (``OuterRef("pk")`` from a profile query). Segments and activation use
    it to keep people without consent out of one SQL query."""
    later = ConsentRecord.objects.filter(profile=OuterRef("profile"), purpose=OuterRef("purpose"),
                                         recorded_at__gt=OuterRef("recorded_at"))
    return Exists(ConsentRecord.objects.filter(profile=profile_ref, purpose__key=purpose_key,
                                               status=ConsentRecord.Status.GRANTED).exclude(Exists(later)))


# --- data-subject requests, restriction and suppression ----------------------------------------------------------


def processing_restricted_exists(*, profile_ref) -> Exists:
    """An ``EXISTS`` that is true while a restriction or objection request freezes the profile out of activation
    (completed and not lifted). ``profile_ref`` names the profile in the outer query (``OuterRef("pk")``)."""
    return Exists(DataSubjectRequest.objects.filter(
        profile=profile_ref, kind__in=DataSubjectRequest.FREEZING, status=DataSubjectRequest.Status.COMPLETED,
        lifted_at__isnull=True))


def frozen_profile_ids() -> set[int]:
    """The profiles a restriction or objection in force freezes (registered with cdp.core.processing, so the
    insight models in profiles leave them out)."""
    return set(DataSubjectRequest.objects.filter(
        kind__in=DataSubjectRequest.FREEZING, status=DataSubjectRequest.Status.COMPLETED, lifted_at__isnull=True,
        profile__isnull=False).values_list("profile_id", flat=True))


def profile_may_activate(*, profile, purpose_key: str) -> bool:
    """Whether the profile may be used for the purpose: its latest decision grants it and no restriction or
    objection freezes it."""
    from profiles.models import Profile

    return (Profile.objects.filter(pk=profile.pk)
            .filter(consent_granted_exists(purpose_key=purpose_key, profile_ref=OuterRef("pk")))
            .exclude(processing_restricted_exists(profile_ref=OuterRef("pk"))).exists())


def suppressed_identities(identities: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The identities (type, value) of the list that belong to an erased person. One query."""
    if not identities:
        return set()
    by_digest: dict[str, set[tuple[str, str]]] = {}
    for identity_type, value in set(identities):
        for form in suppression.forms(identity_type, str(value)):
            by_digest.setdefault(suppression.digest(identity_type, form), set()).add((identity_type, value))
    found = SuppressedIdentifier.objects.filter(digest__in=list(by_digest)).values_list("digest", flat=True)
    return {identity for hit in found for identity in by_digest[hit]}


def suppressed_count() -> int:
    return SuppressedIdentifier.objects.count()


def suppression_hits_total() -> int:
    return SuppressionHit.objects.aggregate(total=Sum("count"))["total"] or 0


def observations_suppressed(observations) -> set[int]:
    """The positions of the observations (``profiles.services.Observation``) that name an erased person by any of
    their identifiers (an alias's previousId counts as a user id and an anonymous id). One query for the batch:
    the ingestion pipeline drops these messages and counts them (``suppression_hits_record``)."""
    if not SuppressedIdentifier.objects.exists():  # nobody erased yet: no hashing for the batch
        return set()
    keyed: list[tuple[int, tuple[str, str]]] = []
    for index, obs in enumerate(observations):
        for identity in [*obs.identities, *obs.flagged_identities]:
            keyed.append((index, (identity[0], str(identity[1]))))
        if obs.previous_id:
            keyed += [(index, ("user_id", obs.previous_id)), (index, ("anonymous_id", obs.previous_id))]
    suppressed = suppressed_identities([identity for _, identity in keyed])
    return {index for index, identity in keyed if identity in suppressed}


def requests_open():
    """Open data-subject requests, the nearest deadline first."""
    return DataSubjectRequest.objects.filter(status__in=DataSubjectRequest.OPEN).order_by("due_at", "id")


def requests_overdue_count() -> int:
    return requests_open().filter(due_at__lt=timezone.now()).count()


def retention_runs_recent(*, limit: int = 20):
    return RetentionRun.objects.order_by("-started_at", "-id")[:limit]


def consent_history(*, profile, limit: int = 50):
    return profile.consent_records.select_related("purpose").order_by("-recorded_at", "-id")[:limit]


def consent_rates_per_day(*, days: int = 30) -> dict:
    """The share of decided people who grant each purpose at the end of each of the last ``days`` days, in percent,
    computed from the records (the state before the window from one aggregate, then the window's records in
    order): ``{"labels": [...], "series": [{"key", "label", "values"}]}`` for components/chart.html."""
    end = timezone.localdate()
    start = end - timedelta(days=days - 1)
    start_at = timezone.make_aware(datetime.combine(start, time.min))
    purposes = list(Purpose.objects.order_by("key"))
    granted_status = ConsentRecord.Status.GRANTED
    before = ConsentRecord.objects.filter(recorded_at__lt=start_at)
    latest = (before.filter(profile=OuterRef("profile"), purpose=OuterRef("purpose"))
              .order_by("-recorded_at", "-id").values("id")[:1])
    granted: dict[int, int] = {p.pk: 0 for p in purposes}
    decided: dict[int, int] = {p.pk: 0 for p in purposes}
    for purpose_id, status, n in (before.filter(id=Subquery(latest)).values("purpose", "status")
                                  .annotate(n=Count("id")).values_list("purpose", "status", "n")):
        decided[purpose_id] = decided.get(purpose_id, 0) + n
        if status == granted_status:
            granted[purpose_id] = granted.get(purpose_id, 0) + n
    window = list(ConsentRecord.objects.filter(recorded_at__gte=start_at).order_by("recorded_at", "id")
                  .values_list("profile_id", "purpose_id", "status", "recorded_at"))
    touched = {(profile_id, purpose_id) for profile_id, purpose_id, _, _ in window}
    state: dict[tuple[int, int], str] = {}
    if touched:
        for profile_id, purpose_id, status in (before.filter(profile_id__in={p for p, _ in touched})
                                               .order_by("profile_id", "purpose_id", "-recorded_at", "-id")
                                               .values_list("profile_id", "purpose_id", "status")):
            state.setdefault((profile_id, purpose_id), status)
    labels = [start + timedelta(days=offset) for offset in range(days)]
    values: dict[int, list] = {p.pk: [] for p in purposes}
    position = 0
    for day in labels:
        while position < len(window) and timezone.localdate(window[position][3]) <= day:
            profile_id, purpose_id, status, _ = window[position]
            previous = state.get((profile_id, purpose_id))
            if previous is None:
                decided[purpose_id] = decided.get(purpose_id, 0) + 1
            elif previous == granted_status:
                granted[purpose_id] -= 1
            if status == granted_status:
                granted[purpose_id] = granted.get(purpose_id, 0) + 1
            state[(profile_id, purpose_id)] = status
            position += 1
        for purpose in purposes:
            whole = decided.get(purpose.pk, 0)
            values[purpose.pk].append(round(100 * granted.get(purpose.pk, 0) / whole, 1) if whole else 0)
    return {"labels": [day.isoformat() for day in labels],
            "series": [{"key": p.key, "label": p.name, "values": values[p.pk]} for p in purposes]}


def profile_restricted(*, profile) -> bool:
    return DataSubjectRequest.objects.filter(profile=profile, kind__in=DataSubjectRequest.FREEZING,
                                             status=DataSubjectRequest.Status.COMPLETED,
                                             lifted_at__isnull=True).exists()
